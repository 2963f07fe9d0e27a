"""Tables from score records: per scene, and mean ± std per method × dataset × degradation.

Outputs (in the table folder):

* ``per_scene.csv`` — one row per (entry, dataset, degradation, scene): status, every metric,
  fuse time, peak memory, parameter count, iterations, error.
* ``summary.csv`` — one row per (entry, dataset, degradation, metric): mean, std (population,
  ddof = 0, over the scenes that succeeded), n_ok, n_failed, profile.
* ``summary.md`` — the same as readable tables, one per (dataset, degradation), with
  "mean ± std" cells; a method whose runs all failed shows ``failed``; partial failures are
  flagged with the count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hmifbench.io import atomic_path, read_json

KEYS = ["entry", "dataset", "degradation"]


def load_scores(paths) -> pd.DataFrame:
    """One row per score file and metric profile (a file scored under several profiles has
    ``scores_by_profile``)."""
    rows = []
    for p in paths:
        rec = read_json(p)
        timing = rec.get("timing") or {}
        row = {k: rec.get(k) for k in ("entry", "method", "dataset", "degradation", "scene",
                                       "setting", "status", "profile", "crop", "n_params",
                                       "iterations", "error")}
        row["fuse_s"] = timing.get("fuse_s")
        row["peak_rss_mb"] = timing.get("peak_rss_mb")
        by_profile = rec.get("scores_by_profile") or {rec.get("profile"): rec.get("scores") or {}}
        # A failed run has no scores but still counts as failed under every profile.
        for profile in rec.get("profiles") or list(by_profile):
            scores = by_profile.get(profile) or {}
            # float() also reads the "inf"/"nan" strings that stand for non-finite JSON numbers
            rows.append({**row, "profile": profile, **{k: float(v) for k, v in scores.items()}})
    return pd.DataFrame(rows)


def metric_columns(df: pd.DataFrame) -> list[str]:
    fixed = {"entry", "method", "dataset", "degradation", "scene", "setting", "status", "profile",
             "crop", "n_params", "iterations", "error", "peak_rss_mb"}
    return [c for c in df.columns if c not in fixed]


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Long table: mean ± std of each metric per (entry, dataset, degradation), per metric
    profile when the scores carry several."""
    rows = []
    for key, group in df.groupby(KEYS, sort=True):
        for profile, part in _by_profile(group):
            rows += _summary_rows(key, part, df, profile)
    return pd.DataFrame(rows)


def _by_profile(group: pd.DataFrame):
    """The group as one part (a single profile, as before) or one part per profile."""
    profiles = list(dict.fromkeys(group["profile"].dropna()))
    if len(profiles) <= 1:
        return [(None, group)]
    return [(p, group[group["profile"] == p]) for p in profiles]


def _summary_rows(key, group: pd.DataFrame, df: pd.DataFrame, profile) -> list[dict]:
    rows = []
    ok = group[group["status"] == "ok"]
    for metric in metric_columns(df):
        values = ok[metric].dropna().astype(float)
        if profile is not None and values.empty and len(ok):
            continue  # a metric of another profile
        rows.append({**dict(zip(KEYS, key)), "metric": metric,
                     "mean": values.mean() if len(values) else np.nan,
                     "std": values.std(ddof=0) if len(values) else np.nan,
                     "n_ok": len(ok), "n_failed": int((group["status"] != "ok").sum()),
                     "profile": profile or ",".join(sorted(set(group["profile"].dropna()))) or None})
    return rows


def _cell(mean, std, n_ok, n_failed):
    if n_ok == 0:
        return "failed"
    text = f"{mean:.4g} ± {std:.2g}"
    return text + (f" ({n_failed} failed)" if n_failed else "")


def markdown(summary: pd.DataFrame) -> str:
    lines = ["# hmifbench summary", "",
             "Mean ± std (population) over scenes; metric profile: "
             f"{', '.join(sorted(set(summary['profile'].dropna()))) or 'n/a'}. "
             "fuse_s in seconds, psnr in dB, sam in degrees.", ""]
    several = summary["profile"].nunique() > 1
    keys = ["dataset", "degradation"] + (["profile"] if several else [])
    for key, part in summary.groupby(keys, sort=True):
        # Only the metrics this section has values for (a real pair has no-reference ones).
        metrics = [m for m in dict.fromkeys(part["metric"]) if part.loc[part["metric"] == m, "mean"].notna().any()]
        cells = {(r.entry, r.metric): _cell(r.mean, r.std, r.n_ok, r.n_failed) for r in part.itertuples()}
        title = f"{key[0]} — {key[1]}" + (f" — profile {key[2]}" if several else "")
        lines += [f"## {title}", "",
                  "| method | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
        for entry in dict.fromkeys(part["entry"]):
            row = [cells.get((entry, m), "") for m in metrics] if metrics else []
            lines.append(f"| {entry} | " + " | ".join(row or ["failed"]) + " |")
        lines.append("")
    return "\n".join(lines)


def write_tables(score_paths, out_dir) -> dict[str, Path]:
    """Write per_scene.csv, summary.csv and summary.md into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    df = load_scores(score_paths).sort_values(KEYS + ["scene"], kind="stable")
    summary = summarise(df)
    paths = {"per_scene": out / "per_scene.csv", "summary": out / "summary.csv",
             "markdown": out / "summary.md"}
    with atomic_path(paths["per_scene"]) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(paths["summary"]) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(markdown(summary))
    return paths
