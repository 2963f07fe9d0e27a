"""``mossfuse``: unsupervised HS–MS fusion by self-supervised modality decoupling.

S. Du, Y. Zou, Z. Wang, X. Li, Y. Li, C. Shang, Q. Shen, "Unsupervised Hyperspectral and
Multispectral Image Fusion via Self-Supervised Modality Decoupling", arXiv:2412.04802, 2024.

This module stays import-light: torch and the implementation (``network``, ``degradation``,
``losses``, ``training`` in this package) are imported inside :meth:`MossFuse.fit` and
:meth:`MossFuse.fuse`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from hmifbench.errors import InputError
from hmifbench.method import Fused, FusionProblem, Method, Resources, param

#: Model settings a release must agree with, and where each comes from in an error message.
_SOURCES = {"width": "parameter 'width'", "blocks": "parameter 'blocks'", "heads": "parameter 'heads'",
            "decoupling": "parameter 'decoupling'", "psf_size": "the PSF size (parameter 'psf_size')",
            "scale": "the problem's scale", "bands": "the problem's HSI bands",
            "msi_bands": "the problem's MSI bands"}


def config_mismatches(release: dict, config: dict) -> list[str]:
    """Every setting of ``config`` (our model configuration) that differs from ``release``
    (what the weights were trained with), as readable lines; keys absent from either are
    not compared."""
    out = []
    for key, source in _SOURCES.items():
        if key in release and key in config and release[key] != config[key]:
            out.append(f"{source} is {config[key]!r}, the weights need {release[key]!r}")
    return out


#: File names written into a training directory.
TRAIN_CHECKPOINT = "mossfuse-train.pt"
MODEL_FILE = "mossfuse.pt"


class MossFuse(Method):
    """MossFuse (Du et al., arXiv:2412.04802): blind, unsupervised deep HS–MS fusion.

    Two encoders split each input into a modality-shared feature F^S (the latent LR-MSI) and a
    modality-complementary feature F^C; a fusion decoder merges the shared features and
    re-injects the complementary ones through Spatial-Aware (MSI) and Spectral-Aware (HSI)
    Aggregation. Three self-supervised decoders rebuild the HR-MSI, the LR-HSI and the LR-MSI.
    A Gaussian PSF and a row-normalised SRF are learned from L_DE alone. No ground truth is
    used. The training objective is (weights are parameters)::

        λ_SC·L_SC + λ_SCT·L_SCT + λ_MA·L_MA   (network, PSF/SRF held fixed)
      + λ_DE·L_DE                             (PSF/SRF only)

    Modes
    -----
    Where the network comes from (:meth:`model_source`, the only place that decides):

    * ``released`` — the ``weights`` parameter names released weights (a registered name, see
      ``hmifbench methods``, or a file path): :meth:`fuse` loads them and runs one forward pass
      (after ``finetune_iterations`` steps of the training recipe on the scene, if any); no
      :meth:`fit`, no train job. ``mode`` is not used.
    * ``dataset`` (the paper's protocol): :meth:`fit` trains on patches of the train pairs and
      returns a state; :meth:`fuse` then runs one forward pass per scene with the learned,
      global PSF/SRF.
    * ``per-scene``: :meth:`fuse` trains a fresh network on patches of the one pair it is given
      (same recipe), then runs the forward pass on it; no :meth:`fit`.

    Released weights are mapped onto this network by an explicit key map (:mod:`.released`)
    that checks every name and shape; a configuration that cannot take them (width, blocks,
    heads, PSF size, scale, band counts) is refused with every difference named.

    State contract
    --------------
    ``fit(pairs, *, seed, device, progress, workdir=None)`` trains and returns a state:

    * with a directory (``workdir``, else the ``checkpoint_dir`` parameter): the JSON-safe dict
      ``{"format": "hmifbench.mossfuse.model/1", "checkpoint": "<abs path>/mossfuse.pt"}``.
      The directory also holds ``mossfuse-train.pt`` (model, optimizer, iteration), written
      every ``checkpoint_every`` iterations; calling ``fit`` again with the same directory,
      parameters, seed and pairs resumes from it (and returns at once when training finished).
    * without a directory: an in-memory dict ``{"format", "config", "model"}`` (a state dict).

    ``fuse(problem, state=...)`` accepts either form, or the path of ``mossfuse.pt`` itself.
    Files are plain ``torch.save`` dicts of tensors and numbers, loaded with
    ``torch.load(..., weights_only=True)``.

    Ablations
    ---------
    Any loss is switched off by a zero weight. ``decoupling=False`` removes the complementary
    heads of both encoders (the MSI encoder's LK7-LK0-LK0 head and the HSI encoder's
    transformer-block head); each encoder's single (shared-head) feature then also stands in
    for its complementary feature in the aggregation blocks and self-supervised decoders, and
    L_SC (which needs the split) is not computed. ``de_weight=0`` freezes the PSF/SRF at their
    initial values (a ~0.2 px Gaussian and a flat SRF), which L_MA then uses.

    Departures from the released code (all documented parameters)
    -------------------------------------------------------------
    * L_SCT is on by default with weight 1 (the released ``train.py`` leaves it out of the
      backward pass, but its checkpoint's self-supervised decoders are trained).
    * ``lr_schedule="constant"`` stands in for the released cosine schedule, whose LR moves by
      0.01 % over 500 epochs (T_max = 98,000 epochs, stepped per epoch).
    * ``augment="aligned"``: the released rot90/flips move the LR grid's decimation phase by
      one HR pixel in every flipped axis (15 → 16 at ×32), pairing LR pixels with shifted HR
      windows; on the ×32 simulation this biases the PSF estimate to σ ≈ 2.11 instead of 2
      (benchmarks/bench_mossfuse.py estimator). "aligned" shifts the HR crop so that every
      augmented sample keeps the exact phase; ``augment="released"`` reproduces the original.
    * A PSF wider than s − 1 (``psf_size``, automatic below ×16) reaches beyond a patch; L_DE
      then reads the HR-MSI patch with the needed context from the scene, so the estimate
      stays exact. At ×32 with the released 31×31 kernel nothing changes.
    * ``degradation_warmup`` (default 0, as released) runs cheap L_DE-only steps first; it is
      useful for short per-scene budgets.
    * Seeds are fixed; the SE block pools globally (the released pooling assumes square
      inputs); the reported SRF is clipped at 0 and renormalised (the raw minimum is in
      ``extras["srf_raw_min"]``); the output is clipped to [0, 1] as the released evaluation
      does before every metric; Adam is PyTorch's fused implementation (same update).
    * Everything runs through the same operators whatever the device; on CPU the network runs
      channels-last with fused forms of the same arithmetic (``network.FAST_OPS``).
    """

    name = "mossfuse"
    family = "deep"
    training = "dataset"
    blind = True
    # train_runtime_min caps the dataset-mode train job (the released 500-epoch schedule on one
    # GPU); a limit, not a measurement: no GPU timing of the full schedule exists yet.
    resources = Resources(gpu=1, mem_mb=8000, runtime_min=720, threads=4, train_runtime_min=7200)
    citation = ("S. Du, Y. Zou, Z. Wang, X. Li, Y. Li, C. Shang, Q. Shen, Unsupervised "
                "Hyperspectral and Multispectral Image Fusion via Self-Supervised Modality "
                "Decoupling, arXiv:2412.04802, 2024")
    licence = "BSD-3-Clause (hmifbench reimplementation; the authors' code has no licence)"

    @dataclass
    class Params:
        mode: Literal["dataset", "per-scene"] = param(
            "dataset", "without weights: 'dataset': fit() on the train pairs, then one forward "
                       "pass per scene; 'per-scene': fuse() trains on the pair it fuses")
        weights: str = param("", "released weights, a registered name (e.g. mossfuse-cave-x32, "
                                 "see 'hmifbench methods') or a file path: fuse() is one "
                                 "forward pass with them, no training; '' = none")
        finetune_iterations: int = param(0, "with weights: training steps on the scene being "
                                            "fused before the forward pass (same recipe); 0 = none")
        iterations: int = param(0, "training iterations (Adam steps); 0 = epochs × "
                                   "max(1, patches // batch_size)")
        epochs: int = param(500, "passes over the patch grid when iterations is 0")
        batch_size: int = param(2, "patches per step")
        patch_size: int = param(128, "HR patch side (a multiple of the scale; clamped to the image)")
        patch_stride: int = param(64, "HR stride of the patch grid (a multiple of the scale)")
        shuffle: bool = param(False, "shuffle patches every epoch (the released loader does not)")
        augment: Literal["aligned", "released", "none"] = param(
            "aligned", "random rot90 and flips per patch; 'aligned' keeps the LR grid's phase "
                       "(see PatchSampler), 'released' flips as released (phase off by one HR "
                       "pixel in flipped samples), 'none'")
        width: int = param(48, "feature channels C (multiple of heads)")
        blocks: int = param(1, "transformer blocks per stage (released checkpoint 1, train.py 3)")
        heads: int = param(8, "attention heads")
        psf_size: int = param(0, "side of the estimated PSF; 0 = max(s−1, min(4s−1, 31)) "
                                 "(s−1 = 31 at ×32 as released), clamped to the image")
        lr: float = param(9e-5, "Adam learning rate of the network")
        lr_degradation: float = param(0.0, "Adam learning rate of the PSF/SRF; 0 = lr (released)")
        degradation_warmup: int = param(0, "Adam steps on L_DE alone (PSF/SRF only) before "
                                           "training; 0 as released")
        lr_schedule: Literal["constant", "cosine"] = param(
            "constant", "'constant' (the released schedule is constant to 0.01 %) or 'cosine' "
                        "annealing of every group to lr_min/lr of its rate")
        lr_min: float = param(1e-6, "final network learning rate of the cosine schedule")
        sc_weight: float = param(0.1, "λ_SC, subspace-clustering (decoupling) loss")
        sct_weight: float = param(1.0, "λ_SCT, self-supervised reconstruction losses; 0 skips "
                                       "the three self-supervised decoders")
        de_weight: float = param(1.0, "λ_DE, degradation-estimation loss; 0 freezes the PSF/SRF")
        ma_weight: float = param(1.0, "λ_MA, modality-aggregation (reconstruction) loss")
        decoupling: bool = param(True, "False: no complementary heads and no L_SC (see class doc)")
        checkpoint_dir: str = param("", "directory for resumable checkpoints and the trained "
                                        "model when fit() gets no workdir; '' = none")
        checkpoint_every: int = param(1000, "iterations between resumable checkpoints")

    @classmethod
    def quick_params(cls) -> dict:
        """Two steps of a narrow network on small patches: seconds on a CPU."""
        return {"iterations": 2, "width": 8, "patch_size": 32, "patch_stride": 32}

    @staticmethod
    def model_source(params) -> str:
        """``"released"`` (weights given), else the ``mode``: ``"dataset"`` or ``"per-scene"``."""
        return "released" if params.weights else params.mode

    @classmethod
    def trains_on_dataset(cls, params) -> bool:
        """Only the ``dataset`` source needs a train job; ``per-scene`` trains inside fuse()
        and ``released`` loads its weights there."""
        return cls.model_source(params) == "dataset"

    @classmethod
    def validate_params(cls, p):
        positive = ("epochs", "batch_size", "patch_size", "patch_stride", "width", "blocks",
                    "heads", "checkpoint_every")
        for name in positive:
            if getattr(p, name) < 1:
                raise InputError(f"parameter {name!r} must be >= 1, got {getattr(p, name)}")
        for name in ("iterations", "psf_size", "degradation_warmup", "finetune_iterations"):
            if getattr(p, name) < 0:
                raise InputError(f"parameter {name!r} must be >= 0, got {getattr(p, name)}")
        if p.width % p.heads or p.width < 8:
            raise InputError(f"parameter 'width' must be >= 8 and a multiple of heads "
                             f"({p.heads}), got {p.width}")
        if not p.lr > 0 or p.lr_degradation < 0 or not 0 < p.lr_min <= p.lr:
            raise InputError("learning rates: need lr > 0, lr_degradation >= 0, "
                             f"0 < lr_min <= lr; got {p.lr}, {p.lr_degradation}, {p.lr_min}")
        weights = {n: getattr(p, n) for n in ("sc_weight", "sct_weight", "de_weight", "ma_weight")}
        bad = [n for n, w in weights.items() if not (w >= 0 and math.isfinite(w))]
        if bad:
            raise InputError(f"loss weights must be finite and >= 0: {bad}")
        if not any(w > 0 for w in weights.values()):
            raise InputError("all loss weights are 0: nothing to train")
        cls._validate_weights(p)

    @classmethod
    def _validate_weights(cls, p):
        from hmifbench import weights as W
        if not p.weights:
            if p.finetune_iterations:
                raise InputError("parameter 'finetune_iterations' needs 'weights' (to train from "
                                 "scratch on each scene use mode: per-scene)")
            return
        if p.mode == "per-scene":
            raise InputError("parameters 'weights' and mode 'per-scene' exclude each other: "
                             "per-scene trains from scratch; to fine-tune the weights on each "
                             "scene set finetune_iterations")
        W.check_reference(p.weights, cls.name)
        if p.weights in W.registry():
            ours = {"width": p.width, "blocks": p.blocks, "heads": p.heads, "decoupling": p.decoupling}
            if p.psf_size:
                ours["psf_size"] = p.psf_size
            bad = config_mismatches(W.get_spec(p.weights).config, ours)
            if bad:
                raise InputError(f"weights {p.weights!r} do not fit this configuration: " + "; ".join(bad))

    # ---------------------------------------------------------------- helpers

    def _check_pairs(self, problems) -> None:
        first = problems[0]
        for i, q in enumerate(problems):
            if (q.scale, q.bands, q.msi_bands, q.offset) != (first.scale, first.bands,
                                                             first.msi_bands, first.offset):
                raise InputError(
                    f"pair {i} has scale {q.scale}, {q.bands} HSI / {q.msi_bands} MSI bands, "
                    f"offset {q.offset}; pair 0 has {first.scale}, {first.bands} / "
                    f"{first.msi_bands}, {first.offset}: all pairs must agree")
        self._check_geometry(problems)

    def _check_geometry(self, problems) -> None:
        p, s = self.params, problems[0].scale
        for name in ("patch_size", "patch_stride"):
            if getattr(p, name) % s:
                raise InputError(f"parameter {name!r} ({getattr(p, name)}) must be a multiple "
                                 f"of the scale {s}")
        for q in problems:
            rows, cols = q.hr_msi.shape[:2]
            if rows % s or cols % s:
                raise InputError(f"image size {rows}×{cols} is not a multiple of the scale {s}")

    def _psf_size(self, problems) -> int:
        s = problems[0].scale
        side = min(min(q.hr_msi.shape[0], q.hr_msi.shape[1]) for q in problems)
        side = min(side, self.params.patch_size)
        limit = 2 * side - 1  # reflection padding needs pad < patch side
        if self.params.psf_size:
            if self.params.psf_size > limit:
                raise InputError(f"psf_size {self.params.psf_size} is too large for "
                                 f"{side}-pixel patches (at most {limit})")
            return self.params.psf_size
        k = max(s - 1, min(4 * s - 1, 31), 1)
        return min(k, limit if limit % 2 else limit - 1)

    def _config(self, problems) -> dict:
        q, p = problems[0], self.params
        return {"bands": q.bands, "msi_bands": q.msi_bands, "scale": q.scale, "width": p.width,
                "blocks": p.blocks, "heads": p.heads, "psf_size": self._psf_size(problems),
                "offset": q.offset, "decoupling": p.decoupling}

    @staticmethod
    def _as_problems(pairs) -> list[FusionProblem]:
        if isinstance(pairs, FusionProblem):
            pairs = [pairs]
        problems = []
        for i, q in enumerate(pairs or []):
            if isinstance(q, FusionProblem):
                problems.append(q)
            elif hasattr(q, "lr_hsi") and hasattr(q, "hr_msi"):
                truth = getattr(q, "truth", {}) or {}
                scale = getattr(q, "scale", None) or truth.get("scale")
                if scale is None:
                    raise InputError(f"pair {i} carries no scale")
                problems.append(FusionProblem(q.lr_hsi, q.hr_msi, scale,
                                              offset=truth.get("offset")))
            else:
                raise InputError(f"pair {i} is a {type(q).__name__}, not a FusionProblem")
        if not problems:
            raise InputError("fit() needs at least one training pair")
        return problems

    # ---------------------------------------------------------------- API

    def fit(self, pairs, *, seed: int = 0, device: str = "auto", progress=None, workdir=None):
        """Train on patches of ``pairs`` (a list of :class:`FusionProblem`); see the class
        notes for the returned state and the resumable ``workdir``."""
        import torch

        from hmifbench.methods.mossfuse import training as T

        if self.model_source(self.params) == "released":
            raise InputError("mossfuse with 'weights' needs no fit(): fuse() loads the weights")
        problems = self._as_problems(pairs)
        self._check_pairs(problems)
        config = self._config(problems)
        dev = T.resolve_device(device)
        folder = workdir or self.params.checkpoint_dir or None
        torch.manual_seed(seed)
        model = T.build_model(config)
        scenes = [T.to_scene(q) for q in problems]
        sig = T.signature(self.params, seed, config, T.fingerprint(problems))
        ckpt = Path(folder) / TRAIN_CHECKPOINT if folder else None
        info = T.train(model, scenes, self.params, seed=seed, device=dev, progress=progress,
                       checkpoint=ckpt, sig=sig, desc="mossfuse fit")
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        record = {"format": T.MODEL_FORMAT, "config": config, "model": weights,
                  "iterations": info["iterations"], "losses": info["losses"]}
        if folder is None:
            return record
        path = (Path(folder) / MODEL_FILE).resolve()
        T.save_atomic(record, path)
        return {"format": T.MODEL_FORMAT, "checkpoint": str(path)}

    def fuse(self, problem: FusionProblem, *, state=None, seed: int = 0, device: str = "auto",
             progress=None) -> Fused:
        """Fuse one scene: one forward pass with released ``weights`` (optionally fine-tuned on
        this pair first) or a fitted ``state`` (mode ``dataset``), or train on this pair first
        (mode ``per-scene``); ``state`` is used by ``dataset`` only."""
        import torch

        from hmifbench.methods.mossfuse import training as T
        from hmifbench.methods.mossfuse.network import parameter_table

        self.check_problem(problem)
        dev = T.resolve_device(device)
        info = {}
        source = self.model_source(self.params)
        release = {}
        if source == "released":
            model, release = self._released_model(problem)
            if self.params.finetune_iterations:
                self._check_geometry([problem])
                torch.manual_seed(seed)
                budget = replace(self.params, iterations=self.params.finetune_iterations)
                info = T.train(model, [T.to_scene(problem)], budget, seed=seed, device=dev,
                               progress=progress, desc="mossfuse fine-tune")
        elif source == "per-scene":
            self._check_geometry([problem])
            config = self._config([problem])
            torch.manual_seed(seed)
            model = T.build_model(config)
            folder = self.params.checkpoint_dir
            ckpt = None
            sig = T.signature(self.params, seed, config, T.fingerprint([problem]))
            if folder:
                ckpt = Path(folder) / f"mossfuse-scene-{sig['data'][:16]}.pt"
            info = T.train(model, [T.to_scene(problem)], self.params, seed=seed, device=dev,
                           progress=progress, checkpoint=ckpt, sig=sig, desc="mossfuse per-scene")
        else:
            config, weights, info = self._load_state(state)
            expected = {"bands": problem.bands, "msi_bands": problem.msi_bands,
                        "scale": problem.scale, "offset": problem.offset}
            got = {k: config[k] for k in expected}
            if got != expected:
                raise InputError(f"the fitted model expects {got} but the problem has {expected}")
            model = T.build_model(config)
            model.load_state_dict(weights)
        hr = T.predict(model, T.to_scene(problem), dev).clip(0.0, 1.0)
        deg = T.estimated_degradation(model)
        table = parameter_table(model)
        cov = deg["covariance"]
        extras = {"mode": source, **release, "n_params_inference": table["inference"],
                  "psf_sigma_px": [math.sqrt(cov[0, 0]), math.sqrt(cov[1, 1])],
                  "psf_covariance": cov.tolist(), "srf_raw_min": deg["srf_raw_min"],
                  "final_losses": info.get("losses", {}), "device": str(dev)}
        return Fused(hr, psf=deg["psf"], srf=deg["srf"], n_params=table["total"],
                     iterations=info.get("iterations"), extras=extras)

    def _released_model(self, problem):
        """The network with the released weights, and a record of them for ``extras``.

        Raises InputError naming every setting (parameters, the problem's scale and band
        counts) that differs from what the weights were trained with."""
        from hmifbench import weights as W
        from hmifbench.methods.mossfuse import released as R
        from hmifbench.methods.mossfuse import training as T

        path, spec = W.resolve(self.params.weights)
        state = R.read_checkpoint(path)
        release = R.infer_config(state)
        if spec is not None:
            stated = {k: v for k, v in spec.config.items() if k in release and v != release[k]}
            if stated:
                raise InputError(f"{path}: the registry states {stated} for {spec.name!r}, the file "
                                 f"holds {release}")
            release = {**spec.config, **release}
        config = self._config([problem])
        bad = config_mismatches(release, config)
        if bad:
            raise InputError(f"weights {self.params.weights!r} cannot be used here:\n  "
                             + "\n  ".join(bad))
        model = T.build_model(config)
        expected = {k: v.shape for k, v in model.state_dict().items()}
        model.load_state_dict(R.to_ours(state, expected))
        record = {"weights": self.params.weights,
                  "weights_sha256": spec.sha256 if spec is not None else W.sha256_of(path)}
        return model, record

    def _load_state(self, state):
        from hmifbench.methods._deep import load_fitted_state
        from hmifbench.methods.mossfuse import training as T

        state = load_fitted_state(
            state, "mossfuse", T.MODEL_FORMAT,
            "mossfuse in mode 'dataset' needs the state returned by fit(); "
            "use mode='per-scene' to train on the scene being fused")
        return state["config"], state["model"], {"iterations": state.get("iterations"),
                                                 "losses": state.get("losses", {})}
