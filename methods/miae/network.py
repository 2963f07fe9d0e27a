"""MIAE's networks, its batching and its two-step training (imports torch; see ``miae.MIAE``).

AENet is made of 1×1 convolutions only, so it is a per-pixel function: it is written here as
linear maps on channels-last tensors (N, rows, cols, channels), which have the parameters and
initialisation of 1×1 convolutions and cost less on a CPU. The spatial operators (the PSF)
work on (N, channels, rows, cols) tensors.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hmifbench.errors import InputError
from hmifbench.methods import _deep

#: Batch base of the released code's rule, by scale (any other scale: 100).
BATCH_BASE = {4: 100, 8: 25, 16: 5}


# ------------------------------------------------------------------------------ degradations

class CentredPSF(nn.Module):
    """MIAE's learned PSF: a (2s−1)² kernel centred on HR pixel s·i, zero padding.

    ``LR[i, j] = Σ_{a,b} k[a, b] · X[s·i + a − (s−1), s·j + b − (s−1)]`` (X = 0 outside),
    i.e. a correlation with padding s − 1 and stride s. Initialised to 1/(2s−1)²; projected
    (clamped to [0, 1], normalised to sum 1) after every update by :meth:`project`.
    """

    def __init__(self, scale: int):
        super().__init__()
        self.scale = int(scale)
        size = 2 * self.scale - 1
        self.kernel = nn.Parameter(torch.full((size, size), 1.0 / size**2))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        n, c, rows, cols = image.shape
        out = F.conv2d(image.reshape(n * c, 1, rows, cols), self.kernel[None, None],
                       padding=self.scale - 1, stride=self.scale)
        return out.reshape(n, c, rows // self.scale, cols // self.scale)

    @torch.no_grad()
    def project(self) -> None:
        self.kernel.clamp_(0.0, 1.0)
        self.kernel /= self.kernel.sum().clamp_min(1e-12)

    def reach(self) -> tuple[int, int]:
        """HR pixels the kernel reaches before and after s·i."""
        return self.scale - 1, self.scale - 1


class KnownPSF(_deep.KnownPSF):
    """The true PSF through the suite's own blur, border extension and decimation phase."""

    def project(self) -> None:
        pass

    def reach(self) -> tuple[int, int]:
        """HR pixels the kernel reaches before and after s·i (its centre sits on s·i + offset)."""
        k = int(self.kernel.shape[0])
        centre = (k - 1) // 2
        return centre - self.offset, k - 1 - centre + self.offset


class LearnedSRF(nn.Module):
    """MIAE's learned SRF: an (l, L) matrix, initialised to 1/L, projected after every update
    (clamped to [0, 10], each row normalised to sum 1)."""

    def __init__(self, msi_bands: int, bands: int):
        super().__init__()
        self.response = nn.Parameter(torch.full((msi_bands, bands), 1.0 / bands))

    def matrix(self) -> torch.Tensor:
        return self.response

    @torch.no_grad()
    def project(self) -> None:
        self.response.clamp_(0.0, 10.0)
        self.response /= self.response.sum(dim=1, keepdim=True).clamp_min(1e-12)


class KnownSRF(_deep.KnownSRF):
    """The true SRF (nothing learned)."""

    def project(self) -> None:
        pass


def border_crop(reach: tuple[int, int], scale: int, lr_size: int) -> int:
    """LR pixels to drop at each border so that every kept pixel's PSF footprint lies inside
    an image (or patch) of ``lr_size`` LR pixels: 1 for MIAE's (2s−1)² kernel, as in the code
    (b = ⌈(k−1)/(2s)⌉)."""
    before, after = reach
    first = math.ceil(before / scale)
    last = math.floor((lr_size * scale - 1 - after) / scale)
    return max(first, lr_size - 1 - last, 0)


def centred_kernel_as_psf(kernel: np.ndarray, scale: int, offset: int) -> np.ndarray:
    """MIAE's kernel (centre on HR pixel s·i) in the suite's convention (centre (K−1)//2 on HR
    pixel s·i + offset): tap a goes to index ``(K−1)//2 + a − (s−1) − offset`` of the smallest
    K×K kernel that holds every tap."""
    reach = scale - 1
    size = kernel.shape[0]
    while True:
        c = (size - 1) // 2
        if c - reach - offset >= 0 and c + reach - offset <= size - 1:
            break
        size += 1
    out = np.zeros((size, size))
    start = c - reach - offset
    out[start:start + kernel.shape[0], start:start + kernel.shape[1]] = kernel
    return out


# ------------------------------------------------------------------------------ networks

def _conv1x1(inputs: int, outputs: int, bias: bool = True) -> nn.Linear:
    """A 1×1 convolution as a linear map on channels-last pixels, initialised as MIAE's code
    does: truncated normal, std √(1/fan_in), cut at ±2 (absolute), bias 0."""
    layer = nn.Linear(inputs, outputs, bias=bias)
    nn.init.trunc_normal_(layer.weight, std=math.sqrt(1.0 / inputs), a=-2.0, b=2.0)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class AENet(nn.Module):
    """MIAE's autoencoder: unfolded iterations of a model-based solver, all 1×1 convolutions.

    With φ = LeakyReLU(slope), inputs the bilinear upsample Y_u (L bands) and Y_m (l bands)::

        y1 = φ(W₂ φ(W₁ Y_u))          z1 = φ(W₃ Y_m)          S = φ(W₄ [y1, z1])
        repeat T − 1 times:  S = φ(U_t S);  S = φ(V_t [S, y1, z1])
        X̂ = clamp01(E · clamp01(S))

    E (L × P, no bias) holds the endmembers, initialised to 1/P and kept in [0, 1].
    """

    def __init__(self, bands: int, msi_bands: int, width: int = 80, stages: int = 3,
                 negative_slope: float = 0.2):
        super().__init__()
        p = int(width)
        self.slope = float(negative_slope)
        self.hsi_in = _conv1x1(bands, p)
        self.hsi_mid = _conv1x1(p, p)
        self.msi_in = _conv1x1(msi_bands, p)
        self.fuse_in = _conv1x1(2 * p, p)
        self.update = nn.ModuleList(_conv1x1(p, p) for _ in range(stages - 1))
        self.merge = nn.ModuleList(_conv1x1(3 * p, p) for _ in range(stages - 1))
        self.endmembers = nn.Parameter(torch.full((bands, p), 1.0 / p))

    def forward(self, upsampled: torch.Tensor, msi: torch.Tensor) -> torch.Tensor:
        """Channels-last (…, L) and (…, l) → X̂ (…, L)."""
        act = lambda t: F.leaky_relu(t, self.slope)  # noqa: E731
        y1 = act(self.hsi_mid(act(self.hsi_in(upsampled))))
        z1 = act(self.msi_in(msi))
        s = act(self.fuse_in(torch.cat([y1, z1], dim=-1)))
        for update, merge in zip(self.update, self.merge):
            s = act(update(s))
            s = act(merge(torch.cat([s, y1, z1], dim=-1)))
        return (s.clamp(0.0, 1.0) @ self.endmembers.T).clamp(0.0, 1.0)

    @torch.no_grad()
    def project(self) -> None:
        self.endmembers.clamp_(0.0, 1.0)


class BlindNet(nn.Module):
    """The degradation pair learned in the blind step (either may be the known one)."""

    def __init__(self, psf: nn.Module, srf: nn.Module):
        super().__init__()
        self.psf, self.srf = psf, srf

    def loss(self, lr_hsi: torch.Tensor, hr_msi: torch.Tensor) -> torch.Tensor:
        """Σ |clamp01(R·Y_h / rowsum R) − clamp01(PSF(Y_m))| (both are the LR-MSI)."""
        r = self.srf.matrix()
        r = r / r.sum(dim=1, keepdim=True)
        from_hsi = torch.einsum("cb,nbij->ncij", r, lr_hsi).clamp(0.0, 1.0)
        from_msi = self.psf(hr_msi).clamp(0.0, 1.0)
        return (from_hsi - from_msi).abs().sum()

    def project(self) -> None:
        self.psf.project()
        self.srf.project()


# ------------------------------------------------------------------------------ batching

def patch_origins(lr_size: int, patch: int, stride: int) -> list[int]:
    """LR coordinates where patches of ``patch`` LR pixels start, ``stride`` apart."""
    return list(range(0, lr_size - patch + 1, stride))


def released_batch_size(rows: int, cols: int, scale: int) -> int:
    """The code's rule: base · (H // 512) · (W // 256), base 25 at ×8, 100 at ×4, 5 at ×16 and
    100 otherwise (0 whenever H < 512 or W < 256)."""
    return BATCH_BASE.get(int(scale), 100) * (rows // 512) * (cols // 256)


def batch_plan(rows: int, cols: int, scale: int, patch: int, stride: int,
               batch_size: int = 0) -> dict:
    """Patches and batch size; the released rule capped to [1, number of patches].

    Capping is the fix to the code's rule: with drop_last, a batch larger than the number of
    patches yields no batch and the epoch loop never ends (512² at ×32: 16 patches, batch 200);
    a batch of 0 (H < 512 or W < 256) is an error there.
    """
    starts_r = patch_origins(rows // scale, patch, stride)
    starts_c = patch_origins(cols // scale, patch, stride)
    n = len(starts_r) * len(starts_c)
    rule = released_batch_size(rows, cols, scale) if batch_size == 0 else int(batch_size)
    batch = min(max(rule, 1), n)
    return {"origins": [(r, c) for r in starts_r for c in starts_c], "patches": n,
            "rule": rule, "batch": batch, "batches_per_epoch": n // batch if n else 0}


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle of epoch ``epoch``: a function of (seed, epoch) only, so a resumed run
    draws the same batches."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g)


# ------------------------------------------------------------------------------ training

def channels_last(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 2, 3, 1)


def channels_first(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 3, 1, 2)


def learning_rate_factor(t: int, total: int, flat: int) -> float:
    """The code's schedule, 1 − max(0, t + 1 − flat)/(total − flat): flat, then linear to 0
    (1,000 flat steps of 10,000 in the code)."""
    if total <= flat:
        return 1.0
    return 1.0 - max(0, t + 1 - flat) / (total - flat)


class Data:
    """The pair as tensors, with the bilinear upsample Y_u."""

    def __init__(self, problem, hr_msi: np.ndarray, device):
        self.lr = _deep.to_nchw(problem.lr_hsi, device)
        self.msi = _deep.to_nchw(hr_msi, device)
        self.up = F.interpolate(self.lr, scale_factor=problem.scale, mode="bilinear",
                                align_corners=False)
        self.scale = int(problem.scale)
        self.rows, self.cols = hr_msi.shape[:2]

    def batch(self, starts, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LR-HSI, upsample and MSI patches of ``size`` LR pixels at the given LR origins."""
        s = self.scale
        lr = torch.stack([self.lr[0, :, r:r + size, c:c + size] for r, c in starts])
        up = torch.stack([self.up[0, :, s * r:s * (r + size), s * c:s * (c + size)]
                          for r, c in starts])
        msi = torch.stack([self.msi[0, :, s * r:s * (r + size), s * c:s * (c + size)]
                           for r, c in starts])
        return lr, up, msi


def reconstruction_loss(model, lr, up, msi, crop: int, full_rows: int, full_cols: int,
                        scale: int) -> torch.Tensor:
    """h·w · Σ_bands mean|PSF(X̂) − Y_h| + H·W · Σ_bands mean|X̂Rᵀ − Y_m|, with ``crop`` LR
    (crop·s HR) pixels dropped at each border; H, W are the full image's size."""
    x_hat = model.aenet(channels_last(up), channels_last(msi))        # (N, H, W, L)
    lr_hat = model.blind.psf(channels_first(x_hat))                    # (N, L, h, w)
    msi_hat = x_hat @ model.blind.srf.matrix().T                       # (N, H, W, l)
    c, hc = crop, crop * scale
    if c:
        lr_hat, lr = lr_hat[..., c:-c, c:-c], lr[..., c:-c, c:-c]
        msi_hat, msi = msi_hat[:, hc:-hc, hc:-hc], msi[..., hc:-hc, hc:-hc]
    hsi_term = (lr_hat - lr).abs().mean(dim=(0, 2, 3)).sum()
    msi_term = (msi_hat - channels_last(msi)).abs().mean(dim=(0, 1, 2)).sum()
    return ((full_rows // scale) * (full_cols // scale) * hsi_term
            + full_rows * full_cols * msi_term)


class Model(nn.Module):
    """BlindNet (the degradations) and AENet of one scene."""

    def __init__(self, problem, params, learn_psf: bool, learn_srf: bool):
        super().__init__()
        s = problem.scale
        psf = CentredPSF(s) if learn_psf else KnownPSF(problem.psf, s, problem.offset,
                                                       problem.border)
        srf = LearnedSRF(problem.msi_bands, problem.bands) if learn_srf else KnownSRF(problem.srf)
        self.blind = BlindNet(psf, srf)
        self.aenet = AENet(problem.bands, problem.msi_bands, params.width, params.stages,
                           params.negative_slope)


def train(problem, hr_msi, params, *, seed: int, device, progress, checkpoint, learn_psf: bool,
          learn_srf: bool):
    """Build MIAE for ``problem``, run the blind step (when something is learned) and AENet's
    training; returns (model, run info, batching)."""
    _deep.seed_everything(seed)
    model = Model(problem, params, learn_psf, learn_srf).to(device)
    data = Data(problem, hr_msi, device)
    s, rows, cols = problem.scale, data.rows, data.cols
    full = params.batching == "full"
    if full:
        plan = {"origins": [(0, 0)], "patches": 1, "rule": 1, "batch": 1,
                "batches_per_epoch": 1}
        patch = min(rows, cols) // s
        # The suite's operator pads like the data were made: exact up to the border. The
        # learned kernel's zero padding is not, hence the code's crop.
        crop = 0 if not learn_psf else border_crop(model.blind.psf.reach(), s, patch)
    else:
        patch = params.patch_size
        plan = batch_plan(rows, cols, s, patch, params.patch_stride, params.batch_size)
        crop = border_crop(model.blind.psf.reach(), s, patch)
        if 2 * crop >= patch:
            raise InputError(f"the PSF reaches across a whole patch of {patch} LR pixels "
                             f"(border crop {crop}); use a larger patch_size or "
                             "batching='full'")
    blind_steps = params.blind_iterations if (learn_psf or learn_srf) else 0
    blind_params = [p for p in model.blind.parameters() if p.requires_grad]
    opt_blind = torch.optim.Adam(blind_params, lr=params.blind_lr) if blind_params else None
    opt_ae = torch.optim.Adam(model.aenet.parameters(), lr=params.lr,
                              weight_decay=params.weight_decay)
    flat = int(round(params.lr_flat_fraction * params.iterations))

    def step(t):
        if t < blind_steps:
            opt_blind.zero_grad(set_to_none=True)
            loss = model.blind.loss(data.lr, data.msi)
            loss.backward()
            opt_blind.step()
            model.blind.project()
            return {"blind_loss": loss.detach()}
        local = t - blind_steps
        for p in blind_params:  # fixed from here on: no gradient to accumulate
            p.requires_grad_(False)
        for group in opt_ae.param_groups:
            group["lr"] = params.lr * learning_rate_factor(local, params.iterations, flat)
        if full:
            lr, up, msi = data.lr, data.up, data.msi
        else:
            epoch, index = divmod(local, plan["batches_per_epoch"])
            order = epoch_order(plan["patches"], seed, epoch)
            chosen = order[index * plan["batch"]:(index + 1) * plan["batch"]].tolist()
            lr, up, msi = data.batch([plan["origins"][i] for i in chosen], patch)
        opt_ae.zero_grad(set_to_none=True)
        loss = reconstruction_loss(model, lr, up, msi, crop, rows, cols, s)
        loss.backward()
        opt_ae.step()
        model.aenet.project()
        return {"loss": loss.detach()}

    signature = {"method": "miae", "params": asdict(params), "seed": int(seed),
                 "learn": [bool(learn_psf), bool(learn_srf)],
                 "data": _deep.problem_fingerprint(problem)}
    modules = {"model": model, "adam_ae": opt_ae}
    if opt_blind is not None:
        modules["adam_blind"] = opt_blind
    info = _deep.run_iterations(step, blind_steps + params.iterations, modules=modules,
                                checkpoint=checkpoint, signature=signature,
                                checkpoint_every=params.checkpoint_every,
                                record_every=params.record_every, progress=progress,
                                desc="miae")
    batching = {"mode": params.batching, "border_crop": crop, "blind_iterations": blind_steps,
                **{k: v for k, v in plan.items() if k != "origins"}}
    if not full:
        batching["patch_size"], batching["patch_stride"] = patch, params.patch_stride
    return model, info, batching


@torch.no_grad()
def predict(model: Model, problem, hr_msi: np.ndarray, device, rows_per_chunk: int = 64):
    """X̂ on the whole image as a (H, W, L) float32 array (AENet is per pixel: in row chunks)."""
    data = Data(problem, hr_msi, device)
    up, msi = channels_last(data.up)[0], channels_last(data.msi)[0]
    parts = [model.aenet(up[r:r + rows_per_chunk], msi[r:r + rows_per_chunk])
             for r in range(0, data.rows, rows_per_chunk)]
    return torch.cat(parts, dim=0).float().cpu().numpy()
