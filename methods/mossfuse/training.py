"""Training and inference of MossFuse: patch sampling, augmentation, the update step,
resumable checkpoints and the forward pass on a whole scene.

Sampling follows the released ``dataset.py``: every scene is cut into a fixed grid of
``patch_size`` HR patches at ``patch_stride`` (with the LR patch cut at the same place,
``patch_size / s`` and ``patch_stride / s`` on the LR grid), each sample gets a random rot90
(0–3 quarter turns), vertical flip and horizontal flip, and batches are drawn in the grid's
order (``shuffle=False``, as released) or a seeded permutation per epoch.

The sample stream is a pure function of (seed, iteration): batch t holds the stream items
``t·batch … t·batch + batch − 1``, item j lies in epoch ``j // n`` at position ``j % n``, and
its augmentation comes from a generator seeded with (seed, j). Resuming from a checkpoint
therefore needs only the iteration count, and an interrupted-then-resumed run equals an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hmifbench.errors import InputError
from hmifbench.methods._deep import _progress_bar, resolve_device, save_atomic
from hmifbench.methods.mossfuse.losses import (aggregation_loss, degradation_loss,
                                               self_supervised_loss, subspace_clustering_loss)
from hmifbench.methods.mossfuse.degradation import context_margin
from hmifbench.methods.mossfuse.network import MossFuseNet

CHECKPOINT_FORMAT = "hmifbench.mossfuse.checkpoint/1"
MODEL_FORMAT = "hmifbench.mossfuse.model/1"

#: Params fields that do not change what training computes (budget, I/O); everything else
#: must match for a checkpoint to be resumed.
_NOT_IN_SIGNATURE = ("iterations", "epochs", "checkpoint_dir", "checkpoint_every", "mode",
                     "weights", "finetune_iterations")


@dataclass
class Scene:
    """One training/inference pair as (C, H, W) float32 tensors."""

    msi: torch.Tensor
    lr_hsi: torch.Tensor


def to_scene(problem) -> Scene:
    """(rows, cols, bands) numpy → (bands, rows, cols) tensors."""
    msi = torch.from_numpy(np.ascontiguousarray(problem.hr_msi.transpose(2, 0, 1), dtype=np.float32))
    lr = torch.from_numpy(np.ascontiguousarray(problem.lr_hsi.transpose(2, 0, 1), dtype=np.float32))
    return Scene(msi, lr)


def fingerprint(problems) -> str:
    """SHA-1 of the inputs' shapes and bytes (identifies the data a checkpoint was made from)."""
    h = hashlib.sha1()
    for p in problems:
        for a in (p.lr_hsi, p.hr_msi):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        h.update(f"{p.scale},{p.offset}".encode())
    return h.hexdigest()


def grid_starts(size: int, patch: int, stride: int) -> list[int]:
    """Patch origins 0, stride, 2·stride, … ≤ size − patch; the last origin ``size − patch`` is
    added when the stride does not land on it, so the grid covers the image."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def effective_patch(scenes, patch_size: int, scale: int) -> tuple[int, int]:
    """The HR patch (rows, cols): ``patch_size`` clamped to the smallest scene."""
    rows = min(min(s.msi.shape[1] for s in scenes), patch_size)
    cols = min(min(s.msi.shape[2] for s in scenes), patch_size)
    return rows, cols


def _pad_scene(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad (C, H, W) by ``pad`` on every side: the simulation's reflect101 border, so
    padded MSI pixels are the ones the LR-HSI's blur saw. Replicate when the image is too small
    to reflect."""
    if pad == 0:
        return x
    mode = "reflect" if pad < min(x.shape[1:]) else "replicate"
    return F.pad(x[None], (pad, pad, pad, pad), mode=mode)[0]


def _axis_flips(turns: int, vflip: bool, hflip: bool) -> tuple[bool, bool]:
    """Whether the input's row axis and column axis end up reversed after the augmentation."""
    rows = augment(torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]), turns, vflip, hflip)
    cols = augment(torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]), turns, vflip, hflip)
    return bool(rows[0, 0, 0] == 1), bool(cols[0, 0, 0] == 1)


class PatchSampler:
    """Deterministic stream of augmented (HR-MSI, LR-HSI, HR-MSI context) patch batches.

    ``augment``: ``"released"`` applies the rot90/flips to aligned HR and LR patches as the
    released loader does. A flip moves the LR grid's phase from ``offset`` to
    ``s − 1 − offset`` (16 instead of 15 at ×32), so those samples pair LR pixels with HR
    windows one HR pixel off. ``"aligned"`` (default) shifts the HR crop of every reversed axis
    by ``s − 1 − 2·offset`` pixels before the flip, so that every augmented sample keeps the
    observation model's phase exactly. ``"none"`` does not augment.

    ``margin`` > 0 also returns the HR-MSI patch with ``margin`` pixels of context per side
    (third item of a batch; None otherwise), taken from the scene (reflected at its borders).
    """

    def __init__(self, scenes, scale, offset, patch_size, patch_stride, batch_size, shuffle,
                 seed, augment="aligned", margin=0):
        if augment not in ("aligned", "released", "none"):
            raise ValueError(f"augment must be 'aligned', 'released' or 'none', got {augment!r}")
        self.scenes, self.scale, self.batch_size = scenes, scale, batch_size
        self.shuffle, self.seed, self.augment, self.margin = shuffle, seed, augment, margin
        self.rows, self.cols = effective_patch(scenes, patch_size, scale)
        self.shift = scale - 1 - 2 * offset if augment == "aligned" else 0
        self.pad = margin + abs(self.shift)
        self.padded = [_pad_scene(sc.msi, self.pad) for sc in scenes]
        self.items = []  # (scene index, HR row, HR col)
        for i, sc in enumerate(scenes):
            for r in grid_starts(sc.msi.shape[1], self.rows, patch_stride):
                for c in grid_starts(sc.msi.shape[2], self.cols, patch_stride):
                    self.items.append((i, r, c))
        self._order_epoch, self._order = -1, None

    def __len__(self):
        return len(self.items)

    def _epoch_order(self, epoch: int):
        if epoch != self._order_epoch:
            n = len(self.items)
            self._order = (np.random.default_rng([self.seed, 0, epoch]).permutation(n)
                           if self.shuffle else np.arange(n))
            self._order_epoch = epoch
        return self._order

    def _transform(self, j: int) -> tuple[int, bool, bool]:
        if self.augment == "none":
            return 0, False, False
        rng = np.random.default_rng([self.seed, 1, j])
        # Quarter turns would change a non-square patch's shape: only half turns then.
        turns = int(rng.integers(4)) if self.rows == self.cols else 2 * int(rng.integers(2))
        return turns, bool(rng.integers(2)), bool(rng.integers(2))

    def sample(self, j: int):
        """Stream item j: (msi (b, P, P), lr (B, P/s, P/s), context or None), augmented."""
        n = len(self.items)
        i, r, c = self.items[self._epoch_order(j // n)[j % n]]
        s, m = self.scale, self.margin
        turns, vflip, hflip = self._transform(j)
        flip_r, flip_c = _axis_flips(turns, vflip, hflip)
        r0 = self.pad + r - self.shift * flip_r - m
        c0 = self.pad + c - self.shift * flip_c - m
        ctx = self.padded[i][:, r0:r0 + self.rows + 2 * m, c0:c0 + self.cols + 2 * m]
        msi = ctx[:, m:m + self.rows, m:m + self.cols]
        lr = self.scenes[i].lr_hsi[:, r // s:(r + self.rows) // s, c // s:(c + self.cols) // s]
        out = [augment(t, turns, vflip, hflip) for t in (msi, lr, ctx)]
        return out[0], out[1], (out[2] if m else None)

    def batch(self, t: int):
        items = [self.sample(t * self.batch_size + k) for k in range(self.batch_size)]
        msi, lr = torch.stack([a for a, _, _ in items]), torch.stack([b for _, b, _ in items])
        ctx = torch.stack([c for _, _, c in items]) if self.margin else None
        return msi, lr, ctx


def augment(x: torch.Tensor, turns: int, vflip: bool, hflip: bool) -> torch.Tensor:
    """rot90 ``turns`` times, then flip rows and/or columns, on a (C, H, W) tensor."""
    if turns:
        x = torch.rot90(x, turns, dims=(1, 2))
    if vflip:
        x = torch.flip(x, dims=(1,))
    if hflip:
        x = torch.flip(x, dims=(2,))
    return x


def build_model(config: dict) -> MossFuseNet:
    return MossFuseNet(**config)


def _fast(x: torch.Tensor) -> torch.Tensor:
    """Channels-last layout: the network's pointwise products and depthwise convolutions run
    on it without layout conversions (see ``network.pointwise``)."""
    return x.contiguous(memory_format=torch.channels_last)


def make_optimizer(model: MossFuseNet, p) -> torch.optim.Optimizer:
    """Adam (β = 0.9, 0.999, no weight decay); the PSF/SRF parameters form their own group so
    they may use ``lr_degradation``. The fused update is Adam's arithmetic in one kernel for
    all parameters (on a busy CPU, hundreds of tiny multi-threaded operator calls, one per
    parameter, can cost more than the whole update)."""
    deg = list(model.degradation.parameters())
    ids = {id(q) for q in deg}
    net = [q for q in model.parameters() if id(q) not in ids]
    lr_deg = p.lr_degradation if p.lr_degradation > 0 else p.lr
    return torch.optim.Adam([{"params": net, "lr": p.lr, "base_lr": p.lr},
                             {"params": deg, "lr": lr_deg, "base_lr": lr_deg}],
                            betas=(0.9, 0.999), weight_decay=0.0, fused=True)


def set_learning_rate(optimizer, p, t: int, total: int) -> None:
    """Constant, or cosine annealing of every group from its base rate down to
    ``base · lr_min / lr`` at the last iteration."""
    if p.lr_schedule == "cosine" and total > 1:
        floor = p.lr_min / p.lr
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t / (total - 1)))
    else:
        factor = 1.0
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor


def compute_losses(model: MossFuseNet, msi, lr_hsi, p, msi_context=None) -> dict:
    """Forward pass and the weighted losses; ``total`` is what one backward pass minimises.
    ``msi_context``: the MSI patch with :func:`margin_of` context pixels per side (for L_DE)."""
    decoders = p.sct_weight > 0
    out = model(msi, lr_hsi, decoders=decoders, msi_context=msi_context,
                margin=margin_of(model) if msi_context is not None else 0)
    s, off = model.scale, model.degradation.offset
    terms = {"de": degradation_loss(out)}
    if p.sc_weight > 0 and model.decoupling:
        terms["sc"] = subspace_clustering_loss(out["fys"], out["fyc"], out["fxs"], out["fxc"])
    if decoders:
        terms["sct"] = self_supervised_loss(out, msi, lr_hsi, model.upsample, s, off)
    if p.ma_weight > 0:
        terms["ma"] = aggregation_loss(out, msi, lr_hsi, s, off)
    weights = {"sc": p.sc_weight, "sct": p.sct_weight, "de": p.de_weight, "ma": p.ma_weight}
    terms["total"] = sum(weights[k] * v for k, v in terms.items())
    return terms


def margin_of(model: MossFuseNet) -> int:
    d = model.degradation
    return context_margin(d.psf_size, d.scale, d.offset)


def train_step(model, optimizer, msi, lr_hsi, p, msi_context=None) -> dict:
    """One Adam step on the weighted sum; returns the loss values as floats."""
    terms = compute_losses(model, msi, lr_hsi, p, msi_context)
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in terms.items()}


def warm_up_degradation(model: MossFuseNet, optimizer, sampler: PatchSampler, p, device) -> None:
    """``p.degradation_warmup`` Adam steps on L_DE alone (PSF/SRF only) before training, so
    that L_MA does not start from the near-delta initial PSF. L_DE needs no network pass, so
    these steps cost little. The degradation group's rate is annealed by a cosine from
    ``lr_degradation`` to 1 % of it; the steps go through the training optimizer (the network
    has no gradients, so it does not move), whose moment estimates then carry over, so the
    first training steps do not jolt the estimate. Batches come from the stream's far end
    (items numbered from 2⁴⁰), which keeps the training stream itself unchanged."""
    deg = model.degradation
    net_group, deg_group = optimizer.param_groups
    margin = margin_of(model)
    base = 2**40 // sampler.batch_size
    total = p.degradation_warmup
    for t in range(total):
        net_group["lr"] = 0.0
        deg_group["lr"] = deg_group["base_lr"] * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t / total)))
        msi, lr_hsi, context = sampler.batch(base + t)
        msi = (msi if context is None else context).to(device)
        y_x, y_y, _, _ = deg(lr_hsi.to(device), msi, margin if context is not None else 0)
        optimizer.zero_grad(set_to_none=True)
        F.l1_loss(y_x, y_y).backward()
        optimizer.step()


def total_iterations(p, n_patches: int) -> int:
    """``iterations`` when > 0, else ``epochs × max(1, n_patches // batch_size)``
    (the released loader drops the last incomplete batch)."""
    if p.iterations > 0:
        return p.iterations
    return p.epochs * max(1, n_patches // p.batch_size)


def signature(p, seed: int, config: dict, data: str) -> dict:
    """What must match for a checkpoint to be resumed."""
    from dataclasses import asdict

    params = {k: v for k, v in asdict(p).items() if k not in _NOT_IN_SIGNATURE}
    return {"seed": int(seed), "config": dict(config), "params": params, "data": data}


def train(model: MossFuseNet, scenes, p, *, seed: int, device: torch.device, progress=None,
          checkpoint: Path | None = None, sig: dict | None = None, desc: str = "mossfuse") -> dict:
    """Train ``model`` in place on patches of ``scenes``; resumable through ``checkpoint``.

    ``progress``: True/False/None (see :func:`_progress_bar`), or a callable
    ``progress(iteration, total, losses)`` called after every step.
    Returns ``{"iterations": …, "losses": {…}, "resumed_from": …}``.
    """
    scale = model.scale
    sampler = PatchSampler(scenes, scale, model.degradation.offset, p.patch_size,
                           p.patch_stride, p.batch_size, p.shuffle, seed, p.augment,
                           margin_of(model))
    total = total_iterations(p, len(sampler))
    model.to(device=device, memory_format=torch.channels_last).train()
    optimizer = make_optimizer(model, p)
    start, losses = 0, {}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT or state.get("signature") != sig:
            raise InputError(f"checkpoint {checkpoint} was written by a different configuration, "
                             "seed or data; remove it or choose another checkpoint directory")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, losses = int(state["iteration"]), dict(state.get("losses", {}))
    resumed_from = start
    if start == 0 and p.degradation_warmup > 0:
        warm_up_degradation(model, optimizer, sampler, p, device)
    bar = _progress_bar(progress, total, start, desc)
    for t in range(start, total):
        set_learning_rate(optimizer, p, t, total)
        msi, lr_hsi, context = sampler.batch(t)
        if context is not None:
            context = _fast(context.to(device))
        losses = train_step(model, optimizer, _fast(msi.to(device)), _fast(lr_hsi.to(device)), p,
                            context)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()}, refresh=False)
        done = t + 1
        if checkpoint is not None and (done % p.checkpoint_every == 0 or done == total):
            save_atomic({"format": CHECKPOINT_FORMAT, "signature": sig, "iteration": done,
                          "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "losses": losses}, checkpoint)
        if callable(progress) and not isinstance(progress, bool):
            progress(done, total, losses)
    if bar is not None:
        bar.close()
    return {"iterations": total, "losses": losses, "resumed_from": resumed_from}


def predict(model: MossFuseNet, scene: Scene, device: torch.device) -> np.ndarray:
    """One forward pass of the inference path on a whole scene (eval mode: BatchNorm uses its
    running statistics); (H, W, B) float32."""
    model.to(device=device, memory_format=torch.channels_last).eval()
    with torch.inference_mode():
        out = model.fuse(_fast(scene.msi[None].to(device)), _fast(scene.lr_hsi[None].to(device)))
    return out[0].permute(1, 2, 0).float().cpu().numpy()


def estimated_degradation(model: MossFuseNet) -> dict:
    """The estimated PSF (k × k, sums to 1) and SRF (b × B: entries clipped at 0, rows
    renormalised to 1), float64, plus the Gaussian's covariance and the raw SRF minimum."""
    deg = model.degradation
    with torch.no_grad():
        psf = deg.psf_kernel().double().cpu().numpy()
        srf_raw = deg.srf_matrix().double().cpu().numpy()
        cov = deg.psf_covariance().double().cpu().numpy()
    psf = psf / psf.sum()
    srf = np.clip(srf_raw, 0.0, None)
    srf = srf / srf.sum(axis=1, keepdims=True)
    return {"psf": psf, "srf": srf, "covariance": cov, "srf_raw_min": float(srf_raw.min())}


