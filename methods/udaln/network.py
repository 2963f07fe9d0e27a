"""UDALN's networks and its three-stage training (imports torch; see ``udaln.UDALN``).

Images live as pixel matrices (pixels × bands) for the spectral operators (SpeDnet, SpeUnet,
1×1 convolutions written as per-pixel linear maps) and as (1, bands, rows, cols) tensors for
the spatial one (SpaDnet).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hmifbench.methods import _deep


# ------------------------------------------------------------------------------ modules

class BlockPSF(nn.Module):
    """SpaDnet: one s×s kernel applied with stride s, no padding, no bias, to every band.

    ``LR[i, j] = Σ_{a,b<s} k[a, b] · X[s·i + a, s·j + b]``; initialised to 1/s² (the block
    mean), neither clamped nor normalised (as in the paper).
    """

    def __init__(self, scale: int):
        super().__init__()
        self.scale = int(scale)
        self.kernel = nn.Parameter(torch.full((self.scale, self.scale), 1.0 / self.scale**2))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        n, c, rows, cols = image.shape
        out = F.conv2d(image.reshape(n * c, 1, rows, cols), self.kernel[None, None],
                       stride=self.scale)
        return out.reshape(n, c, rows // self.scale, cols // self.scale)


KnownPSF = _deep.KnownPSF  # the true PSF through the suite's own operator


def srf_support(srf: np.ndarray | None, msi_bands: int, bands: int) -> np.ndarray:
    """(b, B) bool: for each MSI band the HSI bands first..last where the SRF is > 0.

    Without an SRF (blind setting) every HSI band is in every MSI band's support.
    """
    if srf is None:
        return np.ones((msi_bands, bands), dtype=bool)
    support = np.zeros((msi_bands, bands), dtype=bool)
    for row, response in enumerate(np.asarray(srf)):
        inside = np.flatnonzero(response > 0)
        support[row, inside[0]: inside[-1] + 1] = True
    return support


class SupportSRF(nn.Module):
    """SpeDnet: per MSI band, weights over the HSI bands of its support.

    ``y_c = Σ_j w_cj x_j / Σ_j w_cj`` with the divisor detached (a constant for the gradient,
    as in the paper's code). Each band's weights start as a discrete Gaussian of σ = ``sigma``
    bands centred in its support, normalised to sum 1. No clamps.
    """

    def __init__(self, support: np.ndarray, sigma: float = 3.5):
        super().__init__()
        support = np.asarray(support, dtype=bool)
        self.msi_bands, self.bands = support.shape
        rows, cols = np.nonzero(support)
        init = np.empty(rows.size)
        for row in range(self.msi_bands):
            idx = np.flatnonzero(rows == row)
            centre = (cols[idx[0]] + cols[idx[-1]]) / 2.0
            g = np.exp(-0.5 * ((cols[idx] - centre) / sigma) ** 2)
            init[idx] = g / g.sum()
        self.weights = nn.Parameter(torch.as_tensor(init, dtype=torch.float32))
        self.register_buffer("flat_index", torch.as_tensor(rows * self.bands + cols))

    def matrix(self) -> torch.Tensor:
        """The effective (b, B) response: weights scattered on the support, rows divided by
        their (detached) sums."""
        dense = torch.zeros(self.msi_bands * self.bands, dtype=self.weights.dtype,
                            device=self.weights.device)
        dense = dense.index_add(0, self.flat_index, self.weights).view(self.msi_bands, self.bands)
        return dense / dense.sum(dim=1, keepdim=True).detach()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels @ self.matrix().T


KnownSRF = _deep.KnownSRF  # the true SRF (nothing learned)


def speunet_widths(msi_bands: int, bands: int) -> list[int]:
    """Channel widths of SpeUnet: l, 2l, …, 2ⁿl with n = ⌊log₂(L/l)⌋ (≥ 0), then L."""
    n = max(int(math.floor(math.log2(bands / msi_bands))), 0) if bands > msi_bands else 0
    return [msi_bands * 2**i for i in range(n + 1)] + [bands]


class SpeUnet(nn.Module):
    """The spectral up-sampling network: 1×1 convolutions l→2l→…→2ⁿl→L, LReLU after each,
    the last one included (so the output is not clamped but can go slightly negative).

    ``shift``/``spread`` (buffers, not parameters; 0 and 1 by default, the paper) standardise
    the input bands, ``(y − shift) / spread``: an exact reparametrisation of the first layer
    (same functions, same parameter count) that only changes how well Adam is conditioned.
    """

    def __init__(self, msi_bands: int, bands: int, negative_slope: float = 0.2):
        super().__init__()
        widths = speunet_widths(msi_bands, bands)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            # nn.Linear on pixel rows is a 1×1 Conv2d with the same parameters and init.
            layers += [nn.Linear(a, b), nn.LeakyReLU(negative_slope)]
        self.body = nn.Sequential(*layers)
        self.register_buffer("shift", torch.zeros(msi_bands))
        self.register_buffer("spread", torch.ones(msi_bands))

    def standardise_to(self, pixel_rows: torch.Tensor) -> None:
        """Set the input standardisation to the band means and standard deviations of
        ``pixel_rows`` (pixels × l); a constant band keeps spread 1."""
        spread = pixel_rows.std(dim=0)
        self.shift.copy_(pixel_rows.mean(dim=0))
        self.spread.copy_(torch.where(spread > 0, spread, torch.ones_like(spread)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.body((pixels - self.shift) / self.spread)


# ------------------------------------------------------------------------------ helpers

def pixels(image: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) → (H·W, C)."""
    return image[0].flatten(1).T


def image(pixel_rows: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(H·W, C) → (1, C, H, W)."""
    return pixel_rows.T.reshape(1, -1, rows, cols)


def stage_lr(lr0: float, total: int, decay_start: int, t: int) -> float:
    """The stage's learning rate at its step t (0-based): flat until ``decay_start``, then
    reduced by lr0/(total − decay_start + 1) every step (linear decay towards 0)."""
    if t < decay_start:
        return lr0
    return lr0 * (1.0 - (t - decay_start + 1) / (total - decay_start + 1))


def block_kernel_as_psf(kernel: np.ndarray, scale: int, offset: int) -> np.ndarray:
    """The block kernel in the suite's PSF convention (centre (K−1)//2 on HR pixel s·i+offset).

    Block tap a sits at HR pixel s·i + a, i.e. at ``u = a − offset + c`` in a K×K kernel;
    K is the smallest size that holds every tap (K = s when s is even and offset = s/2 − 1,
    the suite's default phase).
    """
    size = scale
    while True:
        c = (size - 1) // 2
        if c >= offset and c - offset + scale <= size:
            break
        size += 1
    out = np.zeros((size, size))
    start = c - offset
    out[start:start + scale, start:start + scale] = kernel
    return out


# ------------------------------------------------------------------------------ training

class Model(nn.Module):
    """The three networks of one scene."""

    def __init__(self, problem, params, learn_psf: bool, learn_srf: bool):
        super().__init__()
        s = problem.scale
        self.spad = BlockPSF(s) if learn_psf else KnownPSF(problem.psf, s, problem.offset,
                                                           problem.border)
        self.sped = (SupportSRF(srf_support(problem.srf, problem.msi_bands, problem.bands),
                                params.srf_init_sigma) if learn_srf else KnownSRF(problem.srf))
        self.speunet = SpeUnet(problem.msi_bands, problem.bands, params.negative_slope)


def plan(params, learn_degradation: bool) -> list[tuple[int, int, float, int]]:
    """[(stage, iterations, lr, decay_start)] in order; stage 1 only when a PSF or SRF is learned."""
    stages = [(1, params.stage1_iterations, params.stage1_lr, params.stage1_decay_start),
              (2, params.stage2_iterations, params.stage2_lr, params.stage2_decay_start),
              (3, params.stage3_iterations, params.stage3_lr, params.stage3_decay_start)]
    return [st for st in stages if st[1] > 0 and (st[0] != 1 or learn_degradation)]


def train(problem, params, *, seed: int, device, progress, checkpoint, learn_psf: bool,
          learn_srf: bool):
    """Build UDALN for ``problem`` and run its stages; returns (model, run info, plan)."""
    _deep.seed_everything(seed)
    model = Model(problem, params, learn_psf, learn_srf).to(device)
    yh_img = _deep.to_nchw(problem.lr_hsi, device)
    ym_img = _deep.to_nchw(problem.hr_msi, device)
    yh, ym = pixels(yh_img), pixels(ym_img)
    rows, cols = problem.hr_msi.shape[:2]
    if params.standardise_input:
        model.speunet.standardise_to(ym)

    optimisers = {name: torch.optim.Adam(module.parameters(), lr=1.0)
                  for name, module in (("psf", model.spad), ("srf", model.sped),
                                       ("speunet", model.speunet))
                  if any(p.requires_grad for p in module.parameters())}
    stages = plan(params, bool(learn_psf or learn_srf))
    starts = np.cumsum([0] + [n for _, n, _, _ in stages])
    cache: dict[str, torch.Tensor] = {}

    def locate(t):
        k = int(np.searchsorted(starts, t, side="right") - 1)
        return stages[k], t - int(starts[k])

    def step(t):
        (stage, total, lr0, decay), local = locate(t)
        active = {1: ("psf", "srf"), 2: ("speunet",), 3: ("psf", "srf", "speunet")}[stage]
        active = [optimisers[n] for n in active if n in optimisers]
        lr = stage_lr(lr0, total, decay, local)
        for opt in active:
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
        if stage == 2:
            if "z" not in cache:  # Z = SpaDnet(Y_m), fixed by stage 1; recomputed on resume
                with torch.no_grad():
                    cache["z"] = pixels(model.spad(ym_img))
            loss = F.l1_loss(model.speunet(cache["z"]), yh)
        elif stage == 1:
            loss = F.l1_loss(model.sped(yh), pixels(model.spad(ym_img)))
        else:
            lr_msi = pixels(model.spad(ym_img))  # SpaDnet(Y_m), (h·w, b)
            x_hat = model.speunet(ym)
            loss = (F.l1_loss(model.speunet(lr_msi), yh)
                    + F.l1_loss(model.sped(x_hat), ym)
                    + F.l1_loss(pixels(model.spad(image(x_hat, rows, cols))), yh))
            if learn_psf or learn_srf:  # constant when both are known
                loss = loss + F.l1_loss(model.sped(yh), lr_msi)
        loss.backward()
        for opt in active:
            opt.step()
        return {"stage": stage, "loss": loss.detach()}

    signature = {"method": "udaln", "params": asdict(params), "seed": int(seed),
                 "learn": [bool(learn_psf), bool(learn_srf)],
                 "data": _deep.problem_fingerprint(problem)}
    modules = {"model": model, **{f"adam_{n}": o for n, o in optimisers.items()}}
    info = _deep.run_iterations(step, int(starts[-1]), modules=modules, checkpoint=checkpoint,
                                signature=signature, checkpoint_every=params.checkpoint_every,
                                record_every=params.record_every, progress=progress,
                                desc="udaln")
    return model, info, stages


@torch.no_grad()
def predict(model: Model, problem, device) -> np.ndarray:
    """X̂ = SpeUnet(Y_m) as a (H, W, B) float32 array (not clamped)."""
    ym = pixels(_deep.to_nchw(problem.hr_msi, device))
    rows, cols = problem.hr_msi.shape[:2]
    return _deep.to_hwc(image(model.speunet(ym), rows, cols))
