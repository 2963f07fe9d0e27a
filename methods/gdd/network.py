"""GDD's network and its per-scene optimisation (imports torch; see ``gdd.GDD``).

Tensors are (1, channels, rows, cols). Every module is applied at several scales with the same
weights (the guide encoder block five times, the decoder blocks at every scale), which is what
makes the parameter count independent of the image size.
"""

from __future__ import annotations

import copy
from dataclasses import asdict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hmifbench.methods import _deep

#: The network halves the grid five times: the padded HR size is a multiple of this.
GRID = 32
#: Smallest padded side: the coarsest grid must hold more than one value per channel for its
#: batch normalisation (batch statistics over 1×1 pixels of one image are undefined).
MIN_SIDE = 2 * GRID


# ------------------------------------------------------------------------------ modules

class ConvBlock(nn.Module):
    """Mirror padding, k×k convolution (with bias, optional stride), batch norm, LeakyReLU."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int = 1,
                 slope: float = 0.2):
        super().__init__()
        self.pad = (kernel - 1) // 2
        self.conv = nn.Conv2d(channels_in, channels_out, kernel, stride=stride)
        self.norm = nn.BatchNorm2d(channels_out)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.leaky_relu(self.norm(self.conv(x)), self.slope)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear ×2 (half-pixel centres)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class GuideGate(nn.Module):
    """σ(LReLU(conv1×1(g))): a per-pixel, per-channel weight in (0, 1) computed from a guide."""

    def __init__(self, channels: int, slope: float):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.slope = slope

    def forward(self, guide: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.leaky_relu(self.conv(guide), self.slope))


class FeatureRefinement(nn.Module):
    """FRU(g, x) = LReLU(BN(conv1×1(x)) ⊙ gate(g)): the guide reweights the decoder features."""

    def __init__(self, channels: int, slope: float):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.norm = nn.BatchNorm2d(channels)
        self.gate = GuideGate(channels, slope)
        self.slope = slope

    def forward(self, guide: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x)) * self.gate(guide), self.slope)


class UpsamplingRefinement(nn.Module):
    """URU(g, x) = BN₀(bilinear×2(x)) ⊙ gate(g), BN₀ without affine parameters."""

    def __init__(self, channels: int, slope: float):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gate = GuideGate(channels, slope)

    def forward(self, guide: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.norm(upsample2(x)) * self.gate(guide)


class GuidedDeepDecoder(nn.Module):
    """The guide encoder–decoder on the MSI and the gated decoder from the code z.

    Parameters
    ----------
    code_channels : int
        Channels of z (the HSI band count L in the paper).
    guide_channels : int
        MSI bands l (the paper's code is fixed to 3).
    out_channels : int
        HSI bands L.
    width : int
        C, the width of every feature map.
    """

    LEVELS = 5

    def __init__(self, code_channels: int, guide_channels: int, out_channels: int,
                 width: int = 64, slope: float = 0.2):
        super().__init__()
        c = width
        # guide path
        self.guide_in = ConvBlock(guide_channels, c, 3, slope=slope)
        self.encode = nn.Sequential(ConvBlock(c, c, 3, stride=2, slope=slope),
                                    ConvBlock(c, c, 3, slope=slope))
        self.guide_top = ConvBlock(c, c, 3, slope=slope)
        self.lateral = ConvBlock(c, c, 1, slope=slope)
        self.guide_up = ConvBlock(2 * c, c, 3, slope=slope)
        # decoder path
        self.code_in = ConvBlock(code_channels, c, 1, slope=slope)
        self.refine = FeatureRefinement(c, slope)
        self.upsample = UpsamplingRefinement(c, slope)
        self.decode = ConvBlock(c, c, 3, slope=slope)
        self.out = nn.Conv2d(c, out_channels, 1)

    def guides(self, guide: torch.Tensor):
        """Encoder features g0…g5 (H … H/32) and decoder features d1…d5 (H/16 … H)."""
        enc = [self.guide_in(guide)]
        for _ in range(self.LEVELS):
            enc.append(self.encode(enc[-1]))
        dec = [self.guide_top(upsample2(enc[-1]))]
        for level in range(self.LEVELS - 1, 0, -1):  # g4, g3, g2, g1 join d1, d2, d3, d4
            joined = torch.cat((self.lateral(enc[level]), dec[-1]), dim=1)
            dec.append(self.guide_up(upsample2(joined)))
        return enc, dec

    def forward(self, guide: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        enc, dec = self.guides(guide)
        x = self.refine(enc[self.LEVELS], self.code_in(code))
        for level in range(self.LEVELS):  # (g4, d1), (g3, d2), …, (g0, d5)
            x = self.upsample(enc[self.LEVELS - 1 - level], x)
            x = self.refine(dec[level], self.decode(x))
        return self.out(x)


# ------------------------------------------------------------------------------ geometry

def padded_size(n: int) -> int:
    """The smallest multiple of 32 that is ≥ n and ≥ 64."""
    return max(-(-int(n) // GRID) * GRID, MIN_SIDE)


def mirror_pad(image: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Extend (1, C, H, W) to (1, C, rows, cols) at the bottom and right by mirroring with the
    edge repeated (numpy's ``symmetric``, which also works for pads wider than the image)."""
    _, _, h, w = image.shape
    r = np.pad(np.arange(h), (0, rows - h), mode="symmetric")
    c = np.pad(np.arange(w), (0, cols - w), mode="symmetric")
    out = image.index_select(2, torch.as_tensor(r, device=image.device))
    return out.index_select(3, torch.as_tensor(c, device=image.device))


# ------------------------------------------------------------------------------ backtracking

class Backtracker:
    """Undo a sudden rise of the loss: restore weights and Adam state from a snapshot.

    A snapshot of the network and the optimiser is taken every ``every`` steps; the previous
    one is kept, so a restore goes back 10–19 steps, to a state before the rise began. From
    step ``start`` on, a loss above the mean of the losses of steps [t − 40, t − 20) by more
    than ``threshold`` triggers a restore (that step's update is not applied); no further
    check follows for ``cooldown`` steps, which keeps the same rise from being undone again and
    again. Everything is in :meth:`state_dict`, so a resumed run backtracks exactly as an
    uninterrupted one.
    """

    def __init__(self, model, optimiser, *, start: int, threshold: float, every: int = 10,
                 window: tuple[int, int] = (40, 20), cooldown: int = 150):
        self.model, self.optimiser = model, optimiser
        self.start, self.threshold, self.every = start, threshold, every
        self.window, self.cooldown = window, cooldown
        self.losses: dict[int, float] = {}
        self.snapshots: list[dict] = []
        self.quiet_until = -1
        self.restores: list[int] = []

    def rose(self, t: int, loss: float) -> bool:
        """Record step t's loss; True when it is a rise that must be undone."""
        self.losses[t] = loss
        for old in [k for k in self.losses if k < t - self.window[0]]:
            del self.losses[old]
        if t < self.start or t < self.quiet_until or not self.snapshots:
            return False
        past = [self.losses[k] for k in range(t - self.window[0], t - self.window[1])
                if k in self.losses]
        return bool(past) and loss - float(np.mean(past)) > self.threshold

    def restore(self, t: int) -> None:
        snapshot = self.snapshots[0]
        self.model.load_state_dict(snapshot["model"])
        self.optimiser.load_state_dict(snapshot["adam"])
        self.quiet_until = t + self.cooldown
        self.restores.append(int(t))

    def after_step(self, t: int) -> None:
        """Snapshot the state after step t's update every ``every`` steps."""
        if (t + 1) % self.every == 0:
            state = {"model": copy.deepcopy(self.model.state_dict()),
                     "adam": copy.deepcopy(self.optimiser.state_dict())}
            self.snapshots = (self.snapshots + [state])[-2:]

    def state_dict(self) -> dict:
        return {"losses": {str(k): v for k, v in self.losses.items()},
                "snapshots": self.snapshots, "quiet_until": self.quiet_until,
                "restores": list(self.restores)}

    def load_state_dict(self, state: dict) -> None:
        self.losses = {int(k): float(v) for k, v in state["losses"].items()}
        self.snapshots = state["snapshots"]
        self.quiet_until = int(state["quiet_until"])
        self.restores = [int(t) for t in state["restores"]]


# ------------------------------------------------------------------------------ optimisation

def step_noise(seed: int, step: int, shape, std: float, device) -> torch.Tensor:
    """N(0, std²) noise of one step: a pure function of (seed, step), so resumes are exact."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(step)) % (2**63))
    return (torch.randn(shape, generator=g) * std).to(device)


def build(problem, params, seed: int, device):
    """The seeded network and code z0 ~ U[0, init_max) for this problem's padded grid."""
    gen = _deep.seed_everything(seed)
    rows, cols = (padded_size(n) for n in problem.hr_msi.shape[:2])
    model = GuidedDeepDecoder(problem.bands, problem.msi_bands, problem.bands, params.width,
                              params.negative_slope).to(device)
    code = torch.rand((1, problem.bands, rows // GRID, cols // GRID), generator=gen)
    return model, (code * params.code_init_max).to(device)


def train(problem, params, *, seed: int, device, progress, checkpoint):
    """Fit GDD to one pair (the PSF and SRF of ``problem`` are used as given).

    Returns (model, guide, code, run info, backtracker).
    """
    model, code = build(problem, params, seed, device)
    model.train()  # batch statistics throughout, as in the paper's code
    rows, cols = problem.hr_msi.shape[:2]
    ym = _deep.to_nchw(problem.hr_msi, device)
    yh = _deep.to_nchw(problem.lr_hsi, device)
    guide = mirror_pad(ym, padded_size(rows), padded_size(cols))
    psf = torch.as_tensor(np.asarray(problem.psf), dtype=torch.float32, device=device)
    srf = torch.as_tensor(np.asarray(problem.srf), dtype=torch.float32, device=device)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr)  # z is not optimised
    tracker = Backtracker(model, optimiser, start=params.backtrack_start,
                          threshold=params.backtrack_threshold)

    def step(t):
        optimiser.zero_grad(set_to_none=True)
        noisy = code + step_noise(seed, t, code.shape, params.code_noise_std, device)
        x_hat = model(guide, noisy)[:, :, :rows, :cols]
        hsi_term = F.mse_loss(_deep.spatial_degrade_torch(
            x_hat, psf, problem.scale, problem.offset, problem.border), yh)
        msi_term = F.mse_loss(torch.einsum("bc,ncij->nbij", srf, x_hat), ym)
        loss = params.hsi_weight * hsi_term + msi_term
        loss.backward()
        value = float(loss.detach())
        undone = params.backtrack and tracker.rose(t, value)
        if undone:
            tracker.restore(t)
        else:
            optimiser.step()
        if params.backtrack:
            tracker.after_step(t)
        return {"loss": value, "hsi": hsi_term.detach(), "msi": msi_term.detach(),
                "backtracked": float(undone)}

    signature = {"method": "gdd", "params": asdict(params), "seed": int(seed),
                 "data": _deep.problem_fingerprint(problem)}
    modules = {"model": model, "adam": optimiser}
    if params.backtrack:
        modules["backtrack"] = tracker
    info = _deep.run_iterations(step, params.iterations, modules=modules, checkpoint=checkpoint,
                                signature=signature, checkpoint_every=params.checkpoint_every,
                                record_every=params.record_every, progress=progress, desc="gdd")
    return model, guide, code, info, tracker


@torch.no_grad()
def predict(model, guide, code, rows: int, cols: int) -> np.ndarray:
    """X̂ = GDD(Y_m, z0) cropped to (rows, cols), as an (H, W, L) float32 array.

    Batch statistics (train mode) as during the optimisation; the code without its noise.
    """
    model.train()
    return _deep.to_hwc(model(guide, code)[:, :, :rows, :cols])
