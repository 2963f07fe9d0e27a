"""The pipeline stages as functions: prepare, simulate, train, fuse, evaluate.

Each CLI command (``hmifbench prepare|simulate|train|fuse|evaluate``) is a thin wrapper around
one function here, and each Snakemake rule is one CLI call, so every step can be rerun and
debugged by hand on the files the workflow wrote.

On-disk layout of a simulated pair (a folder): ``lr_hsi.hdr/.img``, ``hr_msi.hdr/.img`` and
``truth.json`` (protocol, seed, PSF, SRF, MSI gains/offsets if any, scale, decimation offset,
border, noise).
A fuse output folder holds ``hr_hsi.hdr/.img`` and ``run.json`` (status, timing, provenance).
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.errors import InputError
from hmifbench.io import read_cube, read_json, read_truth, write_cube, write_json
from hmifbench.observation import DEFAULT_BORDER
from hmifbench.provenance import measure, provenance


def prepare(dataset: str, scene: str, out, root=None, **options) -> Path:
    """Load one ground-truth scene of ``dataset`` and write it as an ENVI cube at ``out``.

    Beside it, ``<stem>.json`` records the dataset options and the reader's account of the
    scene (source file, normalisation and its factor, crop), so the scaling is never lost.
    """
    from hmifbench.datasets import get_dataset

    ds = get_dataset(dataset)
    folder = Path(root) / dataset if root is not None else None
    cube, info = ds.read(scene, root=folder, **options)
    out = write_cube(out, cube, metadata={"description": f"hmifbench scene {dataset}/{scene}"})
    write_json(Path(out).with_suffix(".json"), {"dataset": dataset, "scene": scene,
                                                "options": options, "reader": info,
                                                "provenance": provenance()})
    return out


def simulate(scene_path, protocol: str, out_dir, seed: int = 0, scene_id: str | None = None,
             sweeps: dict | None = None) -> Path:
    """Degrade a ground-truth cube under ``protocol``; write the pair folder ``out_dir``.

    The noise seed is derived from ``seed``, the protocol name and ``scene_id`` (default: the
    scene file's stem), so every (scene, degradation) draws its own, reproducible noise. A
    protocol of a sweep (``sweeps``: the config's ``sweeps`` section, see
    :mod:`hmifbench.datasets.sweeps`) is seeded with the sweep's name instead, so every value of
    the sweep draws the same noise pattern (common random numbers: the curve along the sweep
    shows the swept field, not a new noise draw per point).

    ``truth.json`` also records ``nominal``: the protocol, PSF and SRF that a method is given
    in the ``nominal`` setting, i.e. the sweep's base for a swept protocol and the protocol
    itself otherwise.
    """
    from hmifbench.datasets.protocols import degrade, get_protocol, pair_seed
    from hmifbench.datasets.srf import srf_for
    from hmifbench.datasets.sweeps import expand_sweeps

    cube = read_cube(scene_path)
    scene_id = scene_id or Path(scene_path).stem
    point = expand_sweeps(sweeps or {}).get(protocol)
    p = point.protocol if point else get_protocol(protocol)
    pair = degrade(cube, p, seed=pair_seed(seed, point.sweep if point else p.name, scene_id))
    if point is None:
        nominal = {k: pair.truth.get(k) for k in ("psf", "srf", "msi_gain", "msi_offset")}
        nominal["protocol"] = p.name
    else:
        base = point.nominal
        srf, _ = srf_for(base.srf, pair.lr_hsi.wavelengths, base.srf_shift_nm)
        nominal = {"protocol": base.name, "psf": base.kernel().tolist(), "srf": srf.tolist(),
                   "sweep": point.sweep, "field": point.field, "value": point.value}
    out = Path(out_dir)
    write_cube(out / "lr_hsi.hdr", pair.lr_hsi)
    write_cube(out / "hr_msi.hdr", pair.hr_msi)
    pair.truth["scene"] = scene_id
    pair.truth["nominal"] = nominal
    write_json(out / "truth.json", pair.truth)  # written last: its presence marks a whole pair
    return out / "truth.json"


def prepare_pair(dataset: str, scene: str, out_dir, root=None, **options) -> Path:
    """Write a *real* (LR-HSI, HR-MSI) pair of ``dataset`` (no ground truth) as a pair folder.

    ``truth.json`` then holds only the scale, ``"real": true`` and the reader's options; there
    is no PSF or SRF, so methods run blind and scores are no-reference (D_λ, D_s, QNR).
    """
    from hmifbench.datasets import get_dataset

    ds = get_dataset(dataset)
    if not hasattr(ds, "pair"):
        raise InputError(f"dataset {dataset!r} has no real pairs, only cubes to simulate from")
    folder = Path(root) / dataset if root is not None else None
    lr, msi, scale = ds.pair(scene, root=folder, **options)
    out = Path(out_dir)
    write_cube(out / "lr_hsi.hdr", lr)
    write_cube(out / "hr_msi.hdr", msi)
    truth = {"real": True, "scale": int(scale), "offset": None, "border": DEFAULT_BORDER,
             "psf": None, "srf": None, "scene": f"{dataset}/{scene}", "options": options}
    write_json(out / "truth.json", truth)
    return out / "truth.json"


def load_problem(pair_dir, setting: str = "known"):
    """A :class:`~hmifbench.method.FusionProblem` from a pair folder.

    ``setting="known"`` passes the true PSF and SRF, ``"nominal"`` those of the pair's nominal
    protocol (``truth["nominal"]``), ``"blind"`` neither.
    """
    from hmifbench.method import FusionProblem

    pair_dir = Path(pair_dir)
    truth = read_truth(pair_dir)
    lr, msi = read_cube(pair_dir / "lr_hsi.hdr"), read_cube(pair_dir / "hr_msi.hdr")
    try:
        return FusionProblem.from_truth(lr, msi, truth, setting)
    except InputError as err:
        raise InputError(f"{pair_dir}: {err}") from None


def _method(name, params, plugins=()):
    from hmifbench import registry

    for p in plugins:
        registry.add_plugin_path(p)
    return registry.get(name, **(params or {}))


def train(method: str, pair_dirs, out_dir, params=None, setting="known", seed=0,
          device="auto", allow_cpu_fallback=False, plugins=(), entry=None) -> Path:
    """Fit a dataset-trained method on the pairs of a train split; writes ``state.json``."""
    from hmifbench.device import resolve_device

    m = _method(method, params, plugins)
    dev = resolve_device(device, m.resources.gpu > 0, allow_cpu_fallback)
    problems = [load_problem(d, setting) for d in pair_dirs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with measure(dev) as cost:
        state = m.fit(problems, seed=seed, device=dev, workdir=out)
    record = {"entry": entry or method, "method": method, "params": params or {},
              "setting": setting, "state": state, "n_pairs": len(problems),
              "timing": {"train_s": cost["wall_s"], "peak_rss_mb": cost["peak_rss_mb"],
                         "peak_gpu_mb": cost["peak_gpu_mb"]},
              "provenance": provenance(seed=seed, device=dev)}
    return write_json(out / "state.json", record)


def fuse(method: str, pair_dir, out_dir, params=None, setting="known", seed=0, device="auto",
         allow_cpu_fallback=False, state_dir=None, plugins=(), entry=None,
         on_error: str = "raise", config_hash: str | None = None, on_kill: str = "record") -> dict:
    """Run one method on one pair; write ``hr_hsi.hdr`` and ``run.json`` into ``out_dir``.

    With ``on_error="record"`` a failure is written to ``run.json`` with ``status: failed``
    and the error, and no exception escapes: the tables then show the run as failed instead of
    the workflow stopping. With ``"raise"`` (the default by hand) the record is written too and
    the exception is re-raised.

    The run happens in a child process (:func:`hmifbench.isolation.fuse_isolated`): a method
    killed by a signal (OOM killer, segfault) is recorded as failed like one that raised, with
    the signal and its peak memory (``on_kill="record"``), or, with ``on_kill="fail"``, the
    call raises without a record so that the scheduler retries the job. Outputs of an earlier
    run in ``out_dir`` are removed first.
    """
    from hmifbench.isolation import fuse_isolated

    return fuse_isolated(_fuse_here, method, pair_dir, out_dir, params=params, setting=setting, seed=seed,
                         device=device, allow_cpu_fallback=allow_cpu_fallback, state_dir=state_dir,
                         plugins=plugins, entry=entry, on_error=on_error, config_hash=config_hash,
                         on_kill=on_kill)


def _fuse_here(method: str, pair_dir, out_dir, params=None, setting="known", seed=0, device="auto",
               allow_cpu_fallback=False, state_dir=None, plugins=(), entry=None,
               on_error: str = "raise", config_hash: str | None = None) -> dict:
    """:func:`fuse` in this process."""
    from hmifbench.device import DeviceError, resolve_device

    out = Path(out_dir)
    record = {"entry": entry or method, "method": method, "params": params or {},
              "setting": setting, "pair": str(pair_dir), "status": "failed", "error": None}
    dev = None
    try:
        m = _method(method, params, plugins)
        record["family"] = m.family
        dev = resolve_device(device, m.resources.gpu > 0, allow_cpu_fallback)
        problem = load_problem(pair_dir, setting)
        record["degradation"] = _given_and_true(problem, read_truth(pair_dir), setting)
        m.check_problem(problem)
        trained = read_json(Path(state_dir) / "state.json") if state_dir else None
        state = trained["state"] if trained else None
        if trained:  # the training job's cost, for the cost table
            record["train"] = {"timing": trained.get("timing"), "n_pairs": trained.get("n_pairs")}
        with measure(dev) as cost:
            result = m.fuse(problem, state=state, seed=seed, device=dev)
        result.check(problem, method)
        write_cube(out / "hr_hsi.hdr", Cube(result.hr_hsi, problem.wavelengths))
        record.update(
            status="ok", n_params=int(result.n_params), iterations=result.iterations,
            psf=None if result.psf is None else np.asarray(result.psf).tolist(),
            srf=None if result.srf is None else np.asarray(result.srf).tolist(),
            msi_gain=None if result.msi_gain is None else np.asarray(result.msi_gain).tolist(),
            msi_offset=None if result.msi_offset is None else np.asarray(result.msi_offset).tolist(),
            extras=result.extras, output="hr_hsi.hdr",
            timing={"fuse_s": cost["wall_s"], "peak_rss_mb": cost["peak_rss_mb"],
                    "peak_gpu_mb": cost["peak_gpu_mb"]})
    except Exception as err:
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()
        # A missing GPU is the job's fault, not the method's: the job fails (and the scheduler
        # retries it) rather than the method being tabled as failed.
        if on_error != "record" or isinstance(err, DeviceError):
            write_json(out / "run.json", {**record, "provenance": provenance(seed=seed, device=dev)})
            raise
    record["provenance"] = provenance(seed=seed, device=dev)
    record["provenance"]["config_hash"] = config_hash
    write_json(out / "run.json", record)
    return record


def _given_and_true(problem, truth: dict, setting: str) -> dict:
    """What the method was told about the degradation, beside what made the pair."""
    def listed(a):
        return None if a is None else np.asarray(a).tolist()

    nominal = truth.get("nominal") or {}
    given_protocol = {"known": truth.get("protocol", {}).get("name"), "blind": None,
                      "nominal": nominal.get("protocol")}.get(setting)
    return {"given": {"protocol": given_protocol, "psf": listed(problem.psf), "srf": listed(problem.srf)},
            "true": {"protocol": truth.get("protocol", {}).get("name"), "psf": truth.get("psf"),
                     "srf": truth.get("srf")}}


def evaluate(run_json, reference, pair_dir, out, profile: str | None = None, crop: int = 0,
             data_range: float = 1.0, labels: dict | None = None) -> dict:
    """Score one fuse output against the ground truth; writes the score JSON ``out``.

    ``profile`` is a metric profile or a list of them. With a list, ``profile`` and ``scores``
    hold the first and ``scores_by_profile`` maps every profile to its scores (the tables show
    one section per profile).

    A failed run gives a score record with ``status: failed`` and its error, so the tables
    can show it. Blind methods that returned a PSF/SRF get them scored against the truth.
    A real pair (``reference=None``) is scored without reference: D_λ, D_s and QNR
    (profile ``no-reference``).
    """
    from hmifbench import metrics

    profiles = [profile] if profile is None or isinstance(profile, str) else list(profile)
    profiles = [metrics.check_profile(p or metrics.DEFAULT_PROFILE) for p in profiles]
    profile = profiles[0]
    run = read_json(run_json)
    truth = read_truth(pair_dir)
    record = {**(labels or {}), "entry": run.get("entry"), "method": run.get("method"),
              "family": run.get("family"),
              "setting": run.get("setting"), "status": run.get("status"), "error": run.get("error"),
              "profile": profile, "crop": crop, "data_range": data_range, "scale": truth["scale"],
              "scores": {}, "degradation_scores": {}, "timing": run.get("timing", {}),
              "n_params": run.get("n_params"), "iterations": run.get("iterations"),
              "cost": _run_cost(run),
              # where the report's figures find the cubes and the run record
              "paths": {"run": str(run_json), "reference": None if reference is None else str(reference),
                        "pair": str(pair_dir)}}
    if len(profiles) > 1 and reference is not None:
        record["profiles"] = profiles
    if reference is None:
        record["profile"] = "no-reference"
    if run.get("status") == "ok":
        est = read_cube(Path(run_json).parent / run["output"])
        record["shape"] = list(est.shape)
        if reference is None:
            record["scores"] = _no_reference_scores(est, Path(pair_dir), truth)
        else:
            # The metrics' own record: scores plus metrics version, window, excluded pixels.
            ref = read_cube(reference)
            record.update(metrics.evaluate_record(ref, est, truth["scale"],
                                                  profile=profile, crop=crop, data_range=data_range))
            if len(profiles) > 1:
                record["scores_by_profile"] = {profile: record["scores"]} | {
                    p: metrics.evaluate(ref, est, truth["scale"], profile=p, crop=crop,
                                        data_range=data_range) for p in profiles[1:]}
            record["degradation_scores"] = _degradation_scores(run, truth)
    record["provenance"] = provenance()
    write_json(out, record)
    return record


def _run_cost(run: dict) -> dict:
    """What the cost table needs from a run record: device, training time and, when the
    method counted them, FLOPs at a stated input (``extras["flops"]``)."""
    extras = run.get("extras") or {}
    train = (run.get("train") or {}).get("timing") or {}
    flops = extras.get("flops") if isinstance(extras.get("flops"), dict) else None
    return {"device": (run.get("provenance") or {}).get("device"), "train_s": train.get("train_s"),
            "train_peak_gpu_mb": train.get("peak_gpu_mb"), "flops": flops}


def _no_reference_scores(est, pair_dir: Path, truth: dict) -> dict:
    from hmifbench import metrics

    lr, msi = read_cube(pair_dir / "lr_hsi.hdr"), read_cube(pair_dir / "hr_msi.hdr")
    # The pair's own PSF when it has one; else qnr's MTF-matched Gaussian.
    return metrics.qnr(est, lr, msi, truth["scale"], psf=truth.get("psf"), offset=truth.get("offset"))


def _degradation_scores(run: dict, truth: dict) -> dict:
    """PSF/SRF and MSI gain/offset estimation errors, for methods that estimated them (a
    simulated pair without ``msi_gain``/``msi_offset`` has gain 1 and offset 0)."""
    from hmifbench import metrics

    scores = {}
    if run.get("msi_gain") is not None and not truth.get("real"):
        scores["radiometry"] = metrics.radiometry_error(run["msi_gain"], run["msi_offset"],
                                                        truth.get("msi_gain"), truth.get("msi_offset"))
    if run.get("psf") is not None and truth.get("psf") is not None:
        scores["psf"] = metrics.psf_error(np.asarray(run["psf"]), np.asarray(truth["psf"]))
    if run.get("srf") is not None and truth.get("srf") is not None:
        scores["srf"] = metrics.srf_error(np.asarray(run["srf"]), np.asarray(truth["srf"]))
    return scores
