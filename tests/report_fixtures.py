"""Score records and run folders written by hand, for the report's tests (no workflow run).

:func:`write_scores` writes score files in the workflow's layout with chosen values, so the
tests know what every table cell must say; :func:`write_results` adds cubes, run records and
pair folders, so that every figure has something to draw.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hmifbench.cube import Cube
from hmifbench.io import write_cube

SCENES = ["scene01", "scene02", "scene03", "scene04", "scene05", "scene06"]


def score_record(entry, scene, scores, *, method=None, family=None, status="ok",
                 dataset="synthetic", degradation="gauss-fwhm-x4", fuse_s=0.1, n_params=0,
                 iterations=None, flops=None):
    return {"dataset": dataset, "degradation": degradation, "scene": scene, "entry": entry,
            "method": method or entry, "family": family, "setting": "known", "status": status,
            "error": None if status == "ok" else "RuntimeError: deliberate", "profile": "canonical",
            "crop": 0, "scale": 4, "scores": scores if status == "ok" else {},
            "timing": {"fuse_s": fuse_s, "peak_rss_mb": 100.0, "peak_gpu_mb": None},
            "n_params": n_params, "iterations": iterations,
            "cost": {"device": "cpu", "train_s": None, "flops": flops},
            "shape": [16, 16, 8]}


def write_score(root: Path, rec: dict) -> Path:
    path = (root / "results" / "scores" / rec["entry"] / rec["dataset"] / rec["degradation"]
            / f"{rec['scene']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def write_scores(root: Path, values: dict, *, failed=(), families=None, n_params=None,
                 fuse_s=None, degradation="gauss-fwhm-x4") -> list[Path]:
    """``values``: {entry: {metric: [one value per scene]}}; ``failed``: (entry, scene) pairs
    recorded as failed runs instead."""
    paths = []
    for entry, metrics in values.items():
        n = len(next(iter(metrics.values())))
        for i, scene in enumerate(SCENES[:n]):
            status = "failed" if (entry, scene) in failed or entry in failed else "ok"
            rec = score_record(entry, scene, {m: v[i] for m, v in metrics.items()},
                               family=(families or {}).get(entry, "linear"), status=status,
                               n_params=(n_params or {}).get(entry, 0),
                               fuse_s=(fuse_s or {}).get(entry, 0.1), degradation=degradation)
            paths.append(write_score(root, rec))
    return paths


def _gaussian(size, sigma):
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def write_results(root: Path, n_scenes: int = 3, shape=(24, 24, 8)) -> list[Path]:
    """A finished run in the workflow's layout: truth cubes, pair folders, fused cubes, run
    records and score files of three entries (one blind with a convergence curve, one failed)."""
    from hmifbench import metrics

    rng = np.random.default_rng(0)
    wl = np.linspace(400, 700, shape[2])
    psf = _gaussian(7, 1.2)
    srf = np.abs(rng.normal(size=(3, shape[2])))
    srf /= srf.sum(axis=1, keepdims=True)
    paths = []
    for s in range(n_scenes):
        scene = SCENES[s]
        truth = rng.uniform(0.05, 0.9, size=shape).astype(np.float32)
        ref = write_cube(root / "results" / "scenes" / "synthetic" / f"{scene}.hdr", Cube(truth, wl))
        pair = root / "results" / "pairs" / "synthetic" / "gauss-fwhm-x4" / scene
        pair.mkdir(parents=True, exist_ok=True)
        write_cube(pair / "lr_hsi.hdr", Cube(truth[::4, ::4], wl))
        (pair / "truth.json").write_text(json.dumps({"scale": 4, "psf": psf.tolist(),
                                                     "srf": srf.tolist()}))
        for entry, noise in (("good", 0.01), ("blind", 0.03), ("broken", None)):
            out = root / "results" / "fused" / entry / "synthetic" / "gauss-fwhm-x4" / scene
            out.mkdir(parents=True, exist_ok=True)
            run = {"entry": entry, "method": entry, "status": "failed" if noise is None else "ok"}
            scores = {}
            if noise is not None:
                est = np.clip(truth + rng.normal(0, noise, size=shape), 0, 1).astype(np.float32)
                write_cube(out / "hr_hsi.hdr", Cube(est, wl))
                run.update(output="hr_hsi.hdr", n_params=0, iterations=10)
                scores = metrics.evaluate(truth, est, 4)
                if entry == "blind":
                    run.update(psf=_gaussian(9, 1.4).tolist(), srf=(srf * 0.9 + 0.1 / shape[2]).tolist(),
                               extras={"convergence": {"iteration": list(range(1, 11)),
                                                       "loss": list(np.geomspace(1, 1e-3, 10))}})
            (out / "run.json").write_text(json.dumps(run))
            rec = score_record(entry, scene, scores, family="linear",
                               status=run["status"], fuse_s=0.05 if entry == "good" else 0.5)
            rec["paths"] = {"run": str(out / "run.json"), "reference": str(ref), "pair": str(pair)}
            paths.append(write_score(root, rec))
    return paths
