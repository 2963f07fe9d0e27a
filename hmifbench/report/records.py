"""Score records (``results/scores/…/{scene}.json``) read into one table, one row per run.

Everything the tables need is in the score files; the figures also open the run records,
cubes and pair folders that a score file points to (see :func:`run_paths`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hmifbench.errors import InputError
from hmifbench.report.metricinfo import info, primary_metric

KEYS = ["entry", "dataset", "degradation"]

# Columns that describe a run rather than score it.
DESCRIPTIVE = ["entry", "method", "family", "dataset", "degradation", "scene", "setting", "status",
               "profile", "crop", "n_params", "iterations", "error", "fuse_s", "peak_rss_mb",
               "peak_gpu_mb", "train_s", "device", "flops", "flops_input", "shape", "path",
               "extra_profile", "psf_rel_error", "srf_rel_error"]
NOT_METRICS = set(DESCRIPTIVE)
FAMILY_ORDER = {"linear": 0, "deep": 1}


def _read(path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"score file {path}: cannot read it ({err})") from None


def _family(method, cache: dict) -> str:
    """A method's family from the registry (metadata only, no implementation import)."""
    if method not in cache:
        try:
            from hmifbench import registry

            cache[method] = registry.get_class(method).family
        except Exception:  # an unregistered plugin: its runs still get tabled
            cache[method] = "other"
    return cache[method]


def score_rows(rec: dict, path, families: dict) -> list[dict]:
    """The rows of one score record: one, or one per metric profile when the record was scored
    under several (``profiles`` and ``scores_by_profile``; the first is the config's
    ``metrics.profile``). A failed run counts as failed under every profile."""
    row = score_row(rec, path, families)
    profiles = rec.get("profiles") or []
    if len(profiles) < 2:
        return [row]
    by_profile = rec.get("scores_by_profile") or {}
    base = {k: v for k, v in row.items() if k in NOT_METRICS}
    return [{**base, "profile": p, "extra_profile": i > 0,
             **{k: float(v) for k, v in (by_profile.get(p) or {}).items()}}
            for i, p in enumerate(profiles)]


def profile_parts(df: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """``df`` split into the runs' primary metric profile (every single-profile record, e.g. a
    real pair's no-reference scores, included) and each extra profile that records were also
    scored under (``metrics.extra_profiles``), in that order."""
    extra = df["extra_profile"].fillna(False).astype(bool) if "extra_profile" in df else None
    if extra is None or not extra.any():
        return [(None, df)]
    primary = df[~extra]
    parts = [(None, primary.drop(columns=[m for m in metric_columns(primary)
                                          if primary[m].isna().all()]))]
    for p in dict.fromkeys(df.loc[extra, "profile"]):
        part = df[extra & (df["profile"] == p)]
        others = [m for m in metric_columns(part) if part[m].isna().all()]  # another profile's
        parts.append((p, part.drop(columns=others)))
    return parts


def score_row(rec: dict, path, families: dict) -> dict:
    """One table row from one score record (its primary profile's scores)."""
    timing = rec.get("timing") or {}
    cost = rec.get("cost") or {}
    row = {k: rec.get(k) for k in ("entry", "method", "dataset", "degradation", "scene",
                                   "setting", "status", "profile", "crop", "n_params",
                                   "iterations", "error")}
    row["family"] = rec.get("family") or _family(rec.get("method"), families)
    row["fuse_s"] = timing.get("fuse_s")
    row["peak_rss_mb"] = timing.get("peak_rss_mb")
    row["peak_gpu_mb"] = timing.get("peak_gpu_mb")
    row["train_s"] = cost.get("train_s")
    row["device"] = cost.get("device")
    flops = cost.get("flops") or {}
    row["flops"] = flops.get("flops")
    row["flops_input"] = "×".join(str(n) for n in flops["input"]) if flops.get("input") else None
    row["shape"] = "×".join(str(n) for n in rec["shape"]) if rec.get("shape") else None
    row["path"] = str(path)
    # How far a blind run's PSF/SRF estimate is from the truth (hmifbench.metrics.psf_error /
    # srf_error, computed by the evaluate stage): described, not scored, so not tabled as a metric.
    estimated = rec.get("degradation_scores") or {}
    for key in ("psf", "srf"):
        value = (estimated.get(key) or {}).get("rel_frobenius")
        row[f"{key}_rel_error"] = None if value is None else float(value)
    # float() also reads the "inf"/"nan" strings that stand for non-finite JSON numbers
    row.update({k: float(v) for k, v in (rec.get("scores") or {}).items()})
    return row


def load_scores(paths) -> pd.DataFrame:
    """One row per score file (and metric profile, see :func:`score_rows`): labels, status,
    cost and every score (one column per metric)."""
    families: dict = {}
    rows = [row for p in paths for row in score_rows(_read(p), p, families)]
    if not rows:
        raise InputError("no score files given")
    df = pd.DataFrame(rows)
    for col in DESCRIPTIVE:
        if col not in df:
            df[col] = None
    return df


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The score columns of a table made by :func:`load_scores`."""
    return [c for c in df.columns if c not in NOT_METRICS]


def method_order(df: pd.DataFrame, primary: str | None = None) -> list[str]:
    """Every entry once, in the order used by all tables and figures: family (linear, deep,
    others), then by the mean rank of ``primary`` over the dataset × degradation sections
    (best first); entries that never succeeded go last in their family."""
    from hmifbench.report.metricinfo import info, primary_metric

    primary = primary or primary_metric([m for m in metric_columns(df) if df[m].notna().any()])
    ranks = {}
    if primary is not None:
        ok = df[df["status"] == "ok"]
        means = ok.groupby(KEYS)[primary].mean().unstack("entry")
        sign = -1.0 if info(primary).higher_better else 1.0
        ranks = (sign * means).rank(axis=1).mean(axis=0).to_dict()
    families = df.groupby("entry")["family"].first().to_dict()

    def key(entry):
        rank = ranks.get(entry, np.nan)
        return (FAMILY_ORDER.get(families.get(entry), 2), np.isnan(rank),
                0.0 if np.isnan(rank) else rank, entry)

    return sorted(df["entry"].dropna().unique(), key=key)


def run_paths(score_path, record: dict | None = None) -> dict[str, Path | None]:
    """The run record, reference cube and pair folder of a score file.

    Taken from the score record's ``paths`` (written by ``hmifbench evaluate``; relative ones
    are relative to the folder the workflow ran in), else from the workflow's layout:
    ``<root>/scores/{entry}/{dataset}/{degradation}/{scene}.json`` beside
    ``<root>/fused/…/{scene}/run.json``, ``<root>/scenes/{dataset}/{scene}.hdr`` and
    ``<root>/pairs/{dataset}/{degradation}/{scene}/``. The first candidate that exists wins.
    """
    record = record if record is not None else _read(score_path)
    given = record.get("paths") or {}
    score_path = Path(score_path)
    layout, workdir = {}, None
    if len(score_path.parts) >= 6 and score_path.parents[3].name == "scores":
        scene = score_path.stem
        degradation, dataset, entry = score_path.parts[-2], score_path.parts[-3], score_path.parts[-4]
        root = score_path.parents[4]
        workdir = root.parent
        layout = {"run": root / "fused" / entry / dataset / degradation / scene / "run.json",
                  "reference": root / "scenes" / dataset / f"{scene}.hdr",
                  "pair": root / "pairs" / dataset / degradation / scene}
    out = {}
    for key in ("run", "reference", "pair"):
        candidates = []
        if given.get(key):
            candidates.append(Path(given[key]))
            if workdir is not None and not Path(given[key]).is_absolute():
                candidates.append(workdir / given[key])
        elif key == "reference" and "paths" in record:
            candidates = []  # a real pair: recorded as having no reference
        if key in layout and not (key == "reference" and "paths" in record and not given.get(key)):
            candidates.append(layout[key])
        out[key] = next((c for c in candidates if c.exists()), candidates[0] if candidates else None)
    return out
