"""DAEM's network, learned degradation, training step and per-image adaptation (torch).

Imported by :mod:`hmifbench.methods.daem` inside ``fit``/``fuse`` only. Every network layer acts
on one pixel at a time, so the image layout here is "pixels × channels" (rows of a matrix) and
the 1×1 convolutions of the paper are :class:`torch.nn.Linear` layers (the same arithmetic).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmifbench.errors import InputError
from hmifbench.methods._deep import spatial_degrade_torch

MODEL_FORMAT = "hmifbench.daem.model/1"
SLOPE = 0.2                      # LeakyReLU slope of every layer
ENCODER_WIDTHS = (4, 8, 16, 24)  # dense-connected 1×1 convs before the abundance layer
ABUNDANCES = 16                  # E
MEAN_WIDTHS = (18, 22, 26, 30, 32)
SIGMA_WIDTHS = (24,)
SRF_COMPONENTS = 4


class Encoder(nn.Module):
    """f_A: MSI pixel y → abundances A ≥ 0 (E = 16); every layer also sees y (dense links)."""

    def __init__(self, msi_bands: int):
        super().__init__()
        layers, previous = [], 0
        for width in (*ENCODER_WIDTHS, ABUNDANCES):
            layers.append(nn.Linear(previous + msi_bands, width))
            previous = width
        self.layers = nn.ModuleList(layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        a = F.leaky_relu(self.layers[0](y), SLOPE)
        for layer in self.layers[1:-1]:
            a = F.leaky_relu(layer(torch.cat([a, y], dim=1)), SLOPE)
        return F.relu(self.layers[-1](torch.cat([a, y], dim=1)))


def _mlp(widths: tuple[int, ...], bands: int) -> nn.Sequential:
    """Linear layers ABUNDANCES → widths… → bands, each followed by LeakyReLU (the last too)."""
    layers, previous = [], ABUNDANCES
    for width in (*widths, bands):
        layers += [nn.Linear(previous, width), nn.LeakyReLU(SLOPE)]
        previous = width
    return nn.Sequential(*layers)


class GaussianPSF(nn.Module):
    """A k×k Gaussian with learned precision MᵀM (M = lower triangle of Q, Q₀ = 5·I: σ = 0.2 px),
    centred on the suite's kernel centre ``(k − 1) // 2``, normalised to sum 1."""

    def __init__(self, size: int):
        super().__init__()
        self.size = int(size)
        self.q = nn.Parameter(5.0 * torch.eye(2))
        r = torch.arange(self.size, dtype=torch.float32) - (self.size - 1) // 2
        self.register_buffer("offsets", torch.stack(torch.meshgrid(r, r, indexing="ij"), -1),
                             persistent=False)

    def forward(self) -> torch.Tensor:
        m = torch.tril(self.q)
        precision = m.T @ m
        u = self.offsets.reshape(-1, 2)
        h = torch.exp(-0.5 * ((u @ precision) * u).sum(dim=1)).reshape(self.size, self.size)
        return h / h.sum()


class MixtureSRF(nn.Module):
    """Each MSI band's response is a sum of 4 Gaussians over the HSI band axis, normalised to 1.

    The parameters (b, 4, [μ, σ]) start uniform in [0, 1) as in the paper's code, read on the
    normalised band axis t = band / (B − 1) (see the package notes for why).
    """

    def __init__(self, msi_bands: int, bands: int, generator: torch.Generator):
        super().__init__()
        self.theta = nn.Parameter(torch.rand(msi_bands, SRF_COMPONENTS, 2, generator=generator))
        t = torch.linspace(0.0, 1.0, bands) if bands > 1 else torch.zeros(1)
        self.register_buffer("axis", t, persistent=False)

    def forward(self) -> torch.Tensor:
        mu, sigma = self.theta[..., :1], self.theta[..., 1:]
        r = torch.exp(-((self.axis - mu) ** 2) / (2 * sigma**2 + 1e-6)).sum(dim=1)
        return r / r.sum(dim=1, keepdim=True)


class DAEMNet(nn.Module):
    """Encoder f_A, mean decoder g_μ, deviation decoder g_σ and, when learned, the PSF and SRF."""

    def __init__(self, bands: int, msi_bands: int, psf_size: int | None, generator):
        super().__init__()
        self.encoder = Encoder(msi_bands)
        self.mean = _mlp(MEAN_WIDTHS, bands)
        self.sigma = _mlp(SIGMA_WIDTHS, bands)
        self.psf = GaussianPSF(psf_size) if psf_size else None
        self.srf = MixtureSRF(msi_bands, bands, generator) if psf_size else None

    def network_parameters(self):
        return [*self.encoder.parameters(), *self.mean.parameters(), *self.sigma.parameters()]

    def decoder_parameters(self):
        return [*self.mean.parameters(), *self.sigma.parameters()]

    def degradation_parameters(self):
        return [*self.psf.parameters(), *self.srf.parameters()] if self.psf is not None else []

    def decode(self, a: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """z = g_μ(A) + ε·g_σ(A), ε ~ N(0, 1) per element; ε = 0 when ``generator`` is None."""
        mean = self.mean(a)
        if generator is None:
            return mean
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + eps * self.sigma(a)


def build(config: dict, seed: int) -> DAEMNet:
    """A fresh network (PyTorch default initialisation, seeded)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    return DAEMNet(config["bands"], config["msi_bands"],
                   config["psf_size"] if config["degradation"] == "learned" else None, generator)


# ------------------------------------------------------------------------------ data

def pixels(image: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N·H·W, C)."""
    return image.permute(0, 2, 3, 1).reshape(-1, image.shape[1])


def unpixels(rows: torch.Tensor, n: int, height: int, width: int) -> torch.Tensor:
    """(N·H·W, C) → (N, C, H, W)."""
    return rows.reshape(n, height, width, -1).permute(0, 3, 1, 2)


def to_tensor(cube: np.ndarray, device) -> torch.Tensor:
    """(H, W, C) array → (1, C, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(cube, -1, 0), dtype=np.float32))[None].to(device)


def fingerprint(problems) -> str:
    """SHA-1 of the pairs' shapes, bytes and geometry (names the data a checkpoint came from)."""
    h = hashlib.sha1()
    for p in problems:
        for a in (p.lr_hsi, p.hr_msi) + ((p.psf,) if p.psf is not None else ()):
            h.update(str(np.shape(a)).encode())
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        h.update(f"{p.scale},{p.offset},{p.border}".encode())
    return h.hexdigest()


def model_fingerprint(weights: dict) -> str:
    """SHA-1 of a state dict's names and values."""
    h = hashlib.sha1()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(weights[name].detach().cpu().numpy().tobytes())
    return h.hexdigest()


class Blocks:
    """The training pairs cut into B×B LR blocks (stride 1), with the HR-MSI support each needs.

    A step takes ``batch`` blocks from a seeded permutation of all blocks of all pairs (a new
    one every epoch), so the stream is a pure function of (seed, step) and a resume needs only
    the step count. With a known PSF the LR-MSI is computed once, exactly as the suite degrades
    (:func:`spatial_degrade_torch`); with a learned PSF the HR-MSI window under each block is
    kept and blurred at every step (the window must lie inside the image).
    """

    def __init__(self, problems, block: int, psf_size: int, learned: bool, device):
        self.learned, self.device = learned, device
        s, offset = problems[0].scale, problems[0].offset
        self.block = min([block] + [min(q.lr_hsi.shape[:2]) for q in problems])
        c = (psf_size - 1) // 2
        self.window = (self.block - 1) * s + psf_size    # HR side of a block's support
        self.lead = offset - c                           # support start minus s·i
        self.lr_hsi, self.msi, self.index = [], [], []
        for n, q in enumerate(problems):
            lr = to_tensor(q.lr_hsi, device)
            msi = to_tensor(q.hr_msi, device)
            if not learned:
                psf = torch.tensor(q.psf, dtype=torch.float32, device=device)
                msi = spatial_degrade_torch(msi, psf, s, q.offset, q.border)
            self.lr_hsi.append(lr)
            self.msi.append(msi)
            h, w = q.lr_hsi.shape[:2]
            rows = [i for i in range(h - self.block + 1) if self._inside(i, q.hr_msi.shape[0], s)]
            cols = [j for j in range(w - self.block + 1) if self._inside(j, q.hr_msi.shape[1], s)]
            self.index += [(n, i, j) for i in rows for j in cols]
        if not self.index:
            raise InputError(f"no {self.block}×{self.block} LR block of the training pairs has its "
                             f"{self.window}-pixel PSF support inside the HR image; use a smaller "
                             "psf_size or larger images")
        self.scale = s

    def _inside(self, i: int, size: int, s: int) -> bool:
        if not self.learned:
            return True
        start = s * i + self.lead
        return start >= 0 and start + self.window <= size

    def batch(self, step: int, batch: int, seed: int):
        """(HR-MSI windows or LR-MSI blocks, LR-HSI blocks) of step ``step``, as (N, C, h, w)."""
        n = len(self.index)
        picks = []
        for item in range(step * batch, step * batch + batch):
            epoch, position = divmod(item, n)
            picks.append(self.index[self._order(seed, epoch)[position]])
        b, s = self.block, self.scale
        hsi = torch.cat([self.lr_hsi[k][..., i:i + b, j:j + b] for k, i, j in picks])
        if self.learned:
            w, lead = self.window, self.lead
            msi = torch.cat([self.msi[k][..., s * i + lead:s * i + lead + w,
                                          s * j + lead:s * j + lead + w] for k, i, j in picks])
        else:
            msi = torch.cat([self.msi[k][..., i:i + b, j:j + b] for k, i, j in picks])
        return msi, hsi

    def _order(self, seed: int, epoch: int) -> np.ndarray:
        if getattr(self, "_epoch", None) != (seed, epoch):
            self._epoch = (seed, epoch)
            self._permutation = np.random.default_rng([seed, epoch]).permutation(len(self.index))
        return self._permutation

    def epoch_steps(self, batch: int) -> int:
        return -(-len(self.index) // batch)


# ------------------------------------------------------------------------------ losses

def valid_psf(x: torch.Tensor, psf: torch.Tensor, scale: int) -> torch.Tensor:
    """Blur-and-decimate of a support window (no padding): the LR pixels the window covers."""
    k = psf.shape[-1]
    weight = psf.reshape(1, 1, k, k).expand(x.shape[1], 1, k, k)
    return F.conv2d(x, weight, stride=scale, groups=x.shape[1])


def apply_srf(x: torch.Tensor, srf: torch.Tensor) -> torch.Tensor:
    """(N, B, H, W) → (N, b, H, W): every pixel's spectrum projected on the SRF rows."""
    return torch.einsum("cb,nbhw->nchw", srf, x)


def phi_loss(net: DAEMNet, lr_msi: torch.Tensor, lr_hsi: torch.Tensor, generator) -> torch.Tensor:
    """‖dec(f_A(PSF(Y_m))) − Y_h‖₁, mean-reduced (the network's loss, L_φ without its weight)."""
    z = net.decode(net.encoder(pixels(lr_msi)), generator)
    return (z - pixels(lr_hsi)).abs().mean()


def theta_losses(net: DAEMNet, msi_window: torch.Tensor, lr_hsi: torch.Tensor, scale: int,
                 generator) -> dict:
    """The three terms of L_θ on a detached HR estimate Ẑ, so they reach only the PSF and SRF.

    ``hsi``: ‖Y_h − PSF(Ẑ)‖₁; ``msi``: ‖Y_m − SRF(Ẑ)‖₁; ``cross``: ‖SRF(PSF(Ẑ)) − PSF(SRF(Ẑ))‖₁,
    which is identically zero (a band-shared PSF and a per-pixel SRF commute; kept as the
    paper writes it).
    """
    n, _, height, width = msi_window.shape
    with torch.no_grad():
        z = unpixels(net.decode(net.encoder(pixels(msi_window)), generator), n, height, width)
    psf, srf = net.psf(), net.srf()
    x_r, y_r = valid_psf(z, psf, scale), apply_srf(z, srf)
    return {"hsi": (lr_hsi - x_r).abs().mean(), "msi": (msi_window - y_r).abs().mean(),
            "cross": (apply_srf(x_r, srf) - valid_psf(y_r, psf, scale)).abs().mean()}


# ------------------------------------------------------------------------------ steps

def step_generator(seed: int, step: int, device) -> torch.Generator:
    """The noise generator of one step: a pure function of (seed, step), so resumes are exact."""
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 1_000_003 + int(step)) % (2**63))
    return g


def make_train_step(net: DAEMNet, optimiser, blocks: Blocks, params, seed: int):
    """One Adam step of L_φ (network) plus, with a learned degradation, L_θ (PSF and SRF)."""
    device = next(net.parameters()).device

    def step(t: int) -> dict:
        msi, hsi = blocks.batch(t, params.batch_size, seed)
        g = step_generator(seed, t, device)
        optimiser.zero_grad(set_to_none=True)
        if net.psf is None:
            lr_msi, losses = msi, {}
        else:
            with torch.no_grad():   # L_φ must not move the PSF
                lr_msi = valid_psf(msi, net.psf(), blocks.scale)
            losses = theta_losses(net, msi, hsi, blocks.scale, g)
        phi = phi_loss(net, lr_msi, hsi, g)
        total = params.phi_weight * phi
        if losses:
            total = total + (params.theta_hsi_weight * losses["hsi"]
                             + params.theta_msi_weight * losses["msi"]
                             + params.theta_cross_weight * losses["cross"])
        total.backward()
        optimiser.step()
        out = {"loss": total.detach(), "phi": phi.detach()}
        out.update({f"theta_{k}": v.detach() for k, v in losses.items()})
        return out

    return step


def lr_msi_of(net: DAEMNet, problem, device) -> torch.Tensor:
    """PSF(Y_m) of a whole scene: the known PSF when the model was trained with it, else the
    learned one, applied as the suite degrades (its border and decimation phase)."""
    msi = to_tensor(problem.hr_msi, device)
    if net.psf is None:
        if problem.psf is None:
            raise InputError("this DAEM model was trained with the known PSF; the problem gives "
                             "none (fuse it in the known setting, or fit with degradation: learned)")
        psf = torch.tensor(problem.psf, dtype=torch.float32, device=device)
    else:
        psf = net.psf().detach()
        size = psf.shape[-1]
        if size > min(problem.hr_msi.shape[:2]):
            raise InputError(f"the learned {size}×{size} PSF is larger than the image "
                             f"{problem.hr_msi.shape[:2]}")
    return spatial_degrade_torch(msi, psf, problem.scale, problem.offset, problem.border)


def make_adapt_step(net: DAEMNet, optimiser, abundances: torch.Tensor, lr_hsi_rows: torch.Tensor,
                    weight: float, seed: int):
    """One Adam step of L_φ on the test pair, moving g_μ and g_σ only (A_ds is fixed)."""
    device = abundances.device

    def step(t: int) -> dict:
        g = step_generator(seed, t, device)
        optimiser.zero_grad(set_to_none=True)
        z = net.decode(abundances, g)
        phi = (z - lr_hsi_rows).abs().mean()
        (weight * phi).backward()
        optimiser.step()
        return {"loss": weight * phi.detach(), "phi": phi.detach()}

    return step


@torch.no_grad()
def predict(net: DAEMNet, problem, device, generator=None, chunk: int = 1 << 16) -> np.ndarray:
    """Ẑ = dec(f_A(Y_m)) over the whole HR-MSI, (H, W, B) float32 (ε = 0 without generator)."""
    rows = pixels(to_tensor(problem.hr_msi, device))
    out = torch.cat([net.decode(net.encoder(rows[i:i + chunk]), generator)
                     for i in range(0, rows.shape[0], chunk)])
    height, width = problem.hr_msi.shape[:2]
    return out.reshape(height, width, -1).cpu().numpy().astype(np.float32)
