"""CUCaNet's networks, degradation layers and losses (PyTorch; imported by ``fuse`` only).

Notation: Y_h the LR-HSI (1, L, h, w), Y_m the HR-MSI (1, l, H, W), s = H / h, K abundance
maps. Equation and section numbers are those of Yao et al., ECCV 2020 (arXiv:2007.05230).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmifbench.observation import BORDERS

#: LeakyReLU slope of every encoder layer.
SLOPE = 0.2


# --------------------------------------------------------------------------- degradation

class BlockPSF(nn.Module):
    """One learned s×s kernel, stride s, no padding, shared by all bands.

    LR(i, j) = Σ_{a,b<s} k[a, b] · X[s·i + a, s·j + b]: each LR pixel is a weighted sum of its
    own s×s block of HR pixels. Initialised to the block mean (1/s²).
    """

    def __init__(self, scale: int):
        super().__init__()
        self.scale = int(scale)
        self.weight = nn.Parameter(torch.full((1, 1, scale, scale), 1.0 / scale**2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, rows, cols = x.shape
        y = F.conv2d(x.reshape(n * c, 1, rows, cols), self.weight, stride=self.scale)
        return y.reshape(n, c, y.shape[-2], y.shape[-1])

    def as_centred_kernel(self, offset: int) -> np.ndarray:
        """The kernel in :mod:`hmifbench.observation`'s convention for decimation phase
        ``offset``: LR i = Σ_u h[u]·X[s·i + offset + u − c], c = (k − 1) // 2, so block tap a
        lands on u = a − offset + c; k = 2·max(offset, s − 1 − offset) + 1."""
        s = self.scale
        c = max(offset, s - 1 - offset)
        out = np.zeros((2 * c + 1, 2 * c + 1))
        start = c - offset
        out[start:start + s, start:start + s] = self.weight.detach().double().cpu().numpy()[0, 0]
        return out


def _border_index(n: int, before: int, after: int, border: str) -> np.ndarray:
    """Source index of every position of a length-n axis padded by (before, after) in
    ``border`` mode; -1 marks zero padding."""
    if border == "zero":
        return np.pad(np.arange(n), (before, after), mode="constant", constant_values=-1)
    return np.pad(np.arange(n), (before, after), mode=BORDERS[border][0])


class KnownPSF(nn.Module):
    """The suite's spatial degradation with a given kernel (no parameters).

    ``decimate(blur(X, psf, border), s, offset)`` exactly as :func:`hmifbench.observation.
    spatial_degrade` computes it, evaluated only at the kept pixels (a strided correlation on
    the border-extended image).
    """

    def __init__(self, psf: np.ndarray, scale: int, offset: int, border: str, hr_shape):
        super().__init__()
        k0, k1 = psf.shape
        c0, c1 = (k0 - 1) // 2, (k1 - 1) // 2
        rows, cols = hr_shape
        self.scale, self.lr_shape = int(scale), (rows // scale, cols // scale)
        self.register_buffer("kernel", torch.tensor(psf, dtype=torch.float32)[None, None],
                             persistent=False)
        # Only the rows/cols read by a kept output: offset + s·i + (0..k−1) in padded terms.
        need_r = offset + (self.lr_shape[0] - 1) * scale + k0
        need_c = offset + (self.lr_shape[1] - 1) * scale + k1
        idx_r = _border_index(rows, c0, max(k0 - 1 - c0, 0), border)[offset:need_r]
        idx_c = _border_index(cols, c1, max(k1 - 1 - c1, 0), border)[offset:need_c]
        self.zero = border == "zero"
        self.register_buffer("idx_r", torch.tensor(np.maximum(idx_r, 0)), persistent=False)
        self.register_buffer("idx_c", torch.tensor(np.maximum(idx_c, 0)), persistent=False)
        mask = np.outer(idx_r >= 0, idx_c >= 0).astype(np.float32)
        self.register_buffer("mask", torch.tensor(mask)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        xp = x.index_select(2, self.idx_r).index_select(3, self.idx_c)
        if self.zero:
            xp = xp * self.mask
        y = F.conv2d(xp.reshape(n * c, 1, xp.shape[2], xp.shape[3]), self.kernel,
                     stride=self.scale)
        y = y[..., :self.lr_shape[0], :self.lr_shape[1]]
        return y.reshape(n, c, *self.lr_shape)


def srf_support(srf: np.ndarray | None, msi_bands: int, hsi_bands: int) -> list[tuple[int, int]]:
    """(first, last) HSI band of every MSI band: where the given SRF row is > 0, else all."""
    if srf is None:
        return [(0, hsi_bands - 1)] * msi_bands
    out = []
    for row in np.asarray(srf):
        nz = np.flatnonzero(row > 0)
        out.append((int(nz[0]), int(nz[-1])))
    return out


class SupportSRF(nn.Module):
    """Learned spectral response on a fixed support.

    MSI band c = Σ_{k ∈ [first_c, last_c]} w_k·x_k / Σ w_k, the divisor a constant (no
    gradient), output clipped to [0, 1]. Weights start at 1/length; after every optimiser step
    :meth:`project` clips them to [0, 10] and renormalises each band's weights to sum 1.
    """

    def __init__(self, support: list[tuple[int, int]], hsi_bands: int):
        super().__init__()
        rows, cols, init = [], [], []
        for c, (first, last) in enumerate(support):
            n = last - first + 1
            rows += [c] * n
            cols += list(range(first, last + 1))
            init += [1.0 / n] * n
        self.shape = (len(support), hsi_bands)
        self.weight = nn.Parameter(torch.tensor(init, dtype=torch.float32))
        self.register_buffer("rows", torch.tensor(rows), persistent=False)
        self.register_buffer("cols", torch.tensor(cols), persistent=False)

    def matrix(self, normalise: bool = True) -> torch.Tensor:
        m = torch.zeros(self.shape, dtype=self.weight.dtype, device=self.weight.device)
        m = m.index_put((self.rows, self.cols), self.weight)
        if normalise:
            m = m / m.sum(dim=1, keepdim=True).detach()
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("cb,nbhw->nchw", self.matrix(), x).clamp(0.0, 1.0)

    @torch.no_grad()
    def project(self) -> None:
        w = self.weight.clamp_(0.0, 10.0)
        sums = torch.zeros(self.shape[0], dtype=w.dtype, device=w.device).index_add_(0, self.rows, w)
        w.div_(sums[self.rows])


class KnownSRF(nn.Module):
    """``X·Rᵀ`` with a given SRF matrix (no parameters)."""

    def __init__(self, srf: np.ndarray):
        super().__init__()
        self.register_buffer("srf", torch.tensor(srf, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("cb,nbhw->nchw", self.srf, x)


# --------------------------------------------------------------------------- networks

def _conv(cin: int, cout: int, k: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class CUCaNet(nn.Module):
    """The two coupled unmixing autoencoders with cross-attention (paper §3, Fig. 2).

    Encoders: E_h (Y_h) three 1×1 convolutions L → w/4 → w/2 → w; E_m (Y_m) a 5×5, a 3×3 and
    a 1×1 convolution l → w/4 → w/2 → w; LeakyReLU(0.2) after each (w = ``width``, 512).
    Cross-attention: the spatial map a_sp = PSF₂(softmax_{H·W}(conv3×3(E_m(Y_m)))) (1 × h × w)
    reweights the HSI features; the spectral vector a_spe = softmax_channels(depthwise conv of
    E_h(Y_h) with an h×w kernel) (w × 1 × 1) reweights the MSI features. Heads: abundances
    A = clip01(conv1×1 of [F, F·a]) (2w → K). Decoders (endmembers): 1×1 convolutions without
    bias, K → L (D_h) and K → l (D_m), output clipped to [0, 1], weights clipped to [0, 1]
    after every step. The fused image is X̂ = D_h(A_m).
    """

    def __init__(self, bands: int, msi_bands: int, scale: int, lr_shape, *,
                 endmembers: int = 128, width: int = 512, abundance: str = "clamp"):
        super().__init__()
        w4, w2 = width // 4, width // 2
        act = lambda: nn.LeakyReLU(SLOPE)  # noqa: E731
        self.enc_h = nn.Sequential(_conv(bands, w4), act(), _conv(w4, w2), act(), _conv(w2, width), act())
        self.enc_m = nn.Sequential(_conv(msi_bands, w4, 5), act(), _conv(w4, w2, 3), act(),
                                   _conv(w2, width), act())
        self.spatial_att = _conv(width, 1, 3)
        self.psf2 = BlockPSF(scale)
        self.spectral_att = nn.Conv2d(width, width, tuple(lr_shape), groups=width)
        self.head_h = _conv(2 * width, endmembers)
        self.head_m = _conv(2 * width, endmembers)
        self.dec_h = _conv(endmembers, bands, bias=False)
        self.dec_m = _conv(endmembers, msi_bands, bias=False)
        self.abundance = abundance
        # Input standardisation (buffers; 0 and 1 = none, the paper): see standardise_to.
        for name, n in (("hsi", bands), ("msi", msi_bands)):
            self.register_buffer(f"shift_{name}", torch.zeros(1, n, 1, 1))
            self.register_buffer(f"spread_{name}", torch.ones(1, n, 1, 1))
        self._init_weights()

    @torch.no_grad()
    def standardise_to(self, lr_hsi: torch.Tensor, hr_msi: torch.Tensor) -> None:
        """Feed the encoders each band minus its mean over the image, over its standard
        deviation (a constant band keeps spread 1). The first convolutions absorb this except
        at the zero-padded border of the 5×5 one: it changes the optimiser's conditioning
        (the bands are strongly correlated), not the model."""
        for name, x in (("hsi", lr_hsi), ("msi", hr_msi)):
            sd = x.std(dim=(0, 2, 3), keepdim=True)
            getattr(self, f"shift_{name}").copy_(x.mean(dim=(0, 2, 3), keepdim=True))
            getattr(self, f"spread_{name}").copy_(torch.where(sd > 0, sd, torch.ones_like(sd)))

    def _init_weights(self) -> None:
        # Kaiming-normal (fan_in, gain √2) for the encoders, heads and decoders, biases 0;
        # the attention layers start flat (1/9 spatially; 1 per tap spectrally, the released
        # "mean over input channels" rule with one input channel per group).
        for m in (*self.enc_h, *self.enc_m, self.head_h, self.head_m, self.dec_h, self.dec_m):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.spatial_att.weight, 1.0 / 9.0)
        nn.init.zeros_(self.spatial_att.bias)
        nn.init.constant_(self.spectral_att.weight, 1.0)
        nn.init.zeros_(self.spectral_att.bias)

    def _abundances(self, head: nn.Conv2d, features: torch.Tensor) -> torch.Tensor:
        a = head(features)
        return torch.softmax(a, dim=1) if self.abundance == "softmax" else a.clamp(0.0, 1.0)

    def forward(self, lr_hsi: torch.Tensor, hr_msi: torch.Tensor) -> dict[str, torch.Tensor]:
        f_h = self.enc_h((lr_hsi - self.shift_hsi) / self.spread_hsi)
        f_m = self.enc_m((hr_msi - self.shift_msi) / self.spread_msi)
        n, _, rows, cols = f_m.shape
        spatial = torch.softmax(self.spatial_att(f_m).reshape(n, 1, rows * cols), dim=2)
        a_sp = self.psf2(spatial.reshape(n, 1, rows, cols))
        a_spe = torch.softmax(self.spectral_att(f_h), dim=1)
        abund_h = self._abundances(self.head_h, torch.cat([f_h, f_h * a_sp], dim=1))
        abund_m = self._abundances(self.head_m, torch.cat([f_m, f_m * a_spe], dim=1))
        return {"abund_h": abund_h, "abund_m": abund_m,
                "lr_hsi": self.dec_h(abund_h).clamp(0.0, 1.0),
                "hr_msi": self.dec_m(abund_m).clamp(0.0, 1.0),
                "hr_hsi": self.dec_h(abund_m).clamp(0.0, 1.0)}

    @torch.no_grad()
    def project(self) -> None:
        """Keep the endmembers (decoder weights) in [0, 1]."""
        self.dec_h.weight.clamp_(0.0, 1.0)
        self.dec_m.weight.clamp_(0.0, 1.0)


class Model(nn.Module):
    """The network and its two degradation layers (learned or given)."""

    def __init__(self, net: CUCaNet, psf: nn.Module, srf: nn.Module):
        super().__init__()
        self.net, self.psf, self.srf = net, psf, srf

    def parameter_table(self) -> dict[str, int]:
        parts = {"enc_m": self.net.enc_m, "enc_h": self.net.enc_h, "head_h": self.net.head_h,
                 "head_m": self.net.head_m, "spectral_att": self.net.spectral_att,
                 "spatial_att": self.net.spatial_att, "dec_h": self.net.dec_h,
                 "dec_m": self.net.dec_m, "psf": self.psf, "psf2": self.net.psf2, "srf": self.srf}
        table = {k: sum(p.numel() for p in m.parameters() if p.requires_grad) for k, m in parts.items()}
        table["total"] = sum(table.values())
        return table


# --------------------------------------------------------------------------- losses

def l1(a: torch.Tensor, b: torch.Tensor, reduction: str) -> torch.Tensor:
    d = (a - b).abs()
    return d.sum() if reduction == "sum" else d.mean()


def sum_to_one(abund: torch.Tensor) -> torch.Tensor:
    """S(A) = Σ_pixels |Σ_k A_k − 1| (the abundance sum-to-one penalty)."""
    return (abund.sum(dim=1) - 1.0).abs().sum()


def sparsity_kl(abund: torch.Tensor) -> torch.Tensor:
    """Σ_{pixels,k} KL(p ‖ q_k) of Bernoulli variables, q = softmax_k(A), p = 1/K (sparsity)."""
    k = abund.shape[1]
    q = torch.softmax(abund, dim=1)
    p = 1.0 / k
    return (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum()
