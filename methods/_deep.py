"""What every deep (PyTorch) method needs and no method should write again.

Device choice, seeding for bitwise-reproducible CPU runs, array ↔ tensor layout, an atomic
checkpoint writer, a resumable iteration loop that calls the ``progress`` callback and records
the convergence curve in the form the report reads (``Fused.extras["convergence"]``).

Import it inside ``fit``/``fuse`` only (it imports torch): method modules stay import-light.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hmifbench.errors import InputError
from hmifbench.io import atomic_path
from hmifbench.observation import DEFAULT_BORDER


def resolve_device(device) -> torch.device:
    """``"auto"`` (or None) → CUDA when available, else CPU; anything else as given."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was requested but CUDA is not available")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator and return a CPU generator for explicit draws.

    CPU kernels of torch are deterministic for a fixed thread count once seeded; on CUDA a
    method that must be bitwise-reproducible also needs ``torch.use_deterministic_algorithms``,
    which we do not force (it slows training and some ops refuse).
    """
    torch.manual_seed(int(seed))
    return torch.Generator().manual_seed(int(seed))


def to_nchw(cube: np.ndarray, device: torch.device) -> torch.Tensor:
    """(rows, cols, bands) array → (1, bands, rows, cols) float32 tensor on ``device``."""
    array = np.ascontiguousarray(np.moveaxis(np.asarray(cube, dtype=np.float32), -1, 0))
    return torch.from_numpy(array)[None].to(device)


def to_hwc(tensor: torch.Tensor) -> np.ndarray:
    """(1, bands, rows, cols) tensor → (rows, cols, bands) float32 array."""
    return tensor.detach()[0].permute(1, 2, 0).float().cpu().numpy()


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` through :func:`hmifbench.io.atomic_path`: a killed run never leaves half
    a file, and the file gets the umask's permissions like every other output."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _progress_bar(progress, total: int, start: int, desc: str):
    """A tqdm bar when ``progress`` is True, or None and stderr is a terminal."""
    show = progress if isinstance(progress, bool) else (progress is None and sys.stderr.isatty())
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=desc, unit="it", dynamic_ncols=True, leave=False)


class Convergence:
    """Loss values every ``every`` iterations, as ``{"iteration": [...], name: [...]}``."""

    def __init__(self, every: int, curve: dict | None = None):
        self.every = max(1, int(every))
        self.curve = {k: list(v) for k, v in (curve or {"iteration": []}).items()}

    def record(self, iteration: int, total: int, losses: dict) -> None:
        if iteration % self.every and iteration != total:
            return
        self.curve["iteration"].append(int(iteration))
        for name, value in losses.items():
            self.curve.setdefault(name, []).append(float(value))

    def as_dict(self) -> dict:
        return {k: list(v) for k, v in self.curve.items()}


def run_iterations(step: Callable[[int], dict], total: int, *, modules: dict,
                   checkpoint: Path | None = None, signature: dict | None = None,
                   checkpoint_every: int = 500, record_every: int = 50, progress=None,
                   desc: str = "train", start_state: dict | None = None) -> dict:
    """Run ``step(t)`` for ``t`` in ``[start, total)``, resumable through ``checkpoint``.

    Parameters
    ----------
    step : callable
        One update; returns a dict of loss names to floats (Python floats or 0-d tensors).
    total : int
        Number of iterations in all.
    modules : dict
        Everything with ``state_dict``/``load_state_dict`` whose state a resume needs
        (networks, optimisers, schedulers), by name.
    checkpoint : Path, optional
        Where to save every ``checkpoint_every`` iterations and at the end. An existing file is
        resumed when its ``signature`` equals ``signature`` (else a clear error: it was written
        by another configuration, seed or data).
    progress : bool, None or callable
        True/False/None: a tqdm bar (None: when stderr is a terminal); a callable is called as
        ``progress(iteration, total, losses)`` after every step.

    Returns
    -------
    dict
        ``{"iterations": total, "losses": last losses, "resumed_from": start,
        "convergence": {"iteration": [...], <loss>: [...]}}``.
    """
    start, losses, curve = 0, {}, None
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state.get("signature") != signature:
            raise InputError(f"checkpoint {checkpoint} was written by a different configuration, "
                             "seed or data; remove it or choose another checkpoint directory")
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        start, losses, curve = int(state["iteration"]), dict(state["losses"]), state["curve"]
    log = Convergence(record_every, curve)
    bar = _progress_bar(progress, total, start, desc)
    for t in range(start, total):
        losses = {k: float(v) for k, v in step(t).items()}
        done = t + 1
        log.record(done, total, losses)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        if checkpoint is not None and (done % checkpoint_every == 0 or done == total):
            save_atomic({"signature": signature, "iteration": done, "losses": losses,
                         "curve": log.as_dict(),
                         "modules": {n: m.state_dict() for n, m in modules.items()}}, checkpoint)
        if callable(progress) and not isinstance(progress, bool):
            progress(done, total, losses)
    if bar is not None:
        bar.close()
    return {"iterations": total, "losses": losses, "resumed_from": start,
            "convergence": log.as_dict()}


def load_fitted_state(state, method: str, model_format: str, missing: str) -> dict:
    """The model record a dataset-trained method's ``fit`` returned, as ``fuse`` receives it.

    ``state`` is the record itself (a dict holding ``"model"``), or a dict or path naming the
    checkpoint ``fit`` wrote (``{"checkpoint": path}``, what the workflow stores in
    state.json). The record must carry ``"format": model_format``. ``missing`` is the message
    when there is no state at all. Every refusal is an InputError naming ``method``.
    """
    if state is None:
        raise InputError(missing)
    if isinstance(state, (str, Path)):
        state = {"checkpoint": str(state)}
    if not isinstance(state, dict):
        raise InputError(f"unrecognised {method} state of type {type(state).__name__}")
    if "model" not in state:
        path = Path(state.get("checkpoint", ""))
        if not path.is_file():
            raise InputError(f"{method} checkpoint {str(path)!r} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != model_format:
        raise InputError(f"not a {method} model (format {state.get('format')!r})")
    return state


def count_parameters(*modules: torch.nn.Module) -> int:
    """Number of trainable scalars in ``modules`` (shared tensors counted once)."""
    seen = {id(p): p for m in modules for p in m.parameters() if p.requires_grad}
    return int(sum(p.numel() for p in seen.values()))


def spatial_degrade_torch(x: torch.Tensor, psf: torch.Tensor, scale: int, offset: int,
                          border: str = DEFAULT_BORDER) -> torch.Tensor:
    """The suite's spatial degradation in torch: ``decimate(blur(x, psf, border), scale, offset)``.

    Same conventions as :func:`hmifbench.observation.spatial_degrade` (kernel centre
    ``(k − 1) // 2``, LR pixel i is HR pixel ``s·i + offset``, border extension by
    ``border``), differentiable in ``x`` and ``psf``. Only the kept pixels are computed (a
    strided correlation), so the cost is that of the LR grid.

    Parameters
    ----------
    x : tensor (N, C, H, W)
        H and W multiples of ``scale``.
    psf : tensor (k0, k1)
        One kernel for every channel; used as given (no normalisation).
    """
    import numpy as _np

    from hmifbench.observation import BORDERS

    if border not in BORDERS:
        raise InputError(f"unknown border mode {border!r}; choose one of {sorted(BORDERS)}")
    n, c, rows, cols = x.shape
    k0, k1 = psf.shape
    c0, c1 = (k0 - 1) // 2, (k1 - 1) // 2
    pad_mode = BORDERS[border][0]
    pads = (c1, k1 - 1 - c1, c0, k0 - 1 - c0)
    native = {"constant": "constant", "reflect": "reflect", "wrap": "circular"}
    if pad_mode in native and max(pads) < min(rows, cols):  # torch's own pads: faster backward
        xp = torch.nn.functional.pad(x, pads, mode=native[pad_mode])
    else:
        # Index arrays extended the way numpy.pad extends the image: every border mode the
        # suite knows (reflect101, symmetric, wrap), kernels of any size.
        r_idx = _np.pad(_np.arange(rows), (c0, k0 - 1 - c0), mode=pad_mode)
        c_idx = _np.pad(_np.arange(cols), (c1, k1 - 1 - c1), mode=pad_mode)
        xp = x.index_select(2, torch.as_tensor(r_idx, device=x.device))
        xp = xp.index_select(3, torch.as_tensor(c_idx, device=x.device))
    xp = xp[:, :, offset:, offset:].reshape(n * c, 1, xp.shape[2] - offset, xp.shape[3] - offset)
    y = torch.nn.functional.conv2d(xp, psf.to(x.dtype)[None, None], stride=int(scale))
    return y[:, :, : rows // scale, : cols // scale].reshape(n, c, rows // scale, cols // scale)


class KnownPSF(torch.nn.Module):
    """A given PSF applied with :func:`spatial_degrade_torch` (the suite's blur, border and
    decimation phase); nothing is learned. Methods whose own PSF model cannot represent the
    suite's kernels use it in the known setting."""

    def __init__(self, psf: np.ndarray, scale: int, offset: int, border: str):
        super().__init__()
        self.register_buffer("kernel", torch.as_tensor(np.asarray(psf), dtype=torch.float32))
        self.scale, self.offset, self.border = int(scale), int(offset), border

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return spatial_degrade_torch(image, self.kernel, self.scale, self.offset, self.border)


class KnownSRF(torch.nn.Module):
    """A given (b × B) SRF matrix R, applied to channels-last pixels as ``x Rᵀ``; nothing is
    learned."""

    def __init__(self, srf: np.ndarray):
        super().__init__()
        self.register_buffer("response", torch.as_tensor(np.asarray(srf), dtype=torch.float32))

    def matrix(self) -> torch.Tensor:
        return self.response

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels @ self.response.T


def problem_fingerprint(problem) -> str:
    """SHA-1 of a FusionProblem's arrays, scale, phase, border and PSF/SRF (when given).

    Goes into a checkpoint's signature so that a resume on other data is refused.
    """
    import hashlib

    digest = hashlib.sha1()
    for array in (problem.lr_hsi, problem.hr_msi, problem.psf, problem.srf):
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(array, dtype=np.float32)
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    digest.update(f"{problem.scale},{problem.offset},{problem.border}".encode())
    return digest.hexdigest()
