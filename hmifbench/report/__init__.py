"""From score files to what goes into a paper: tables, statistics, cost, published numbers,
figures (the driver layer; nothing here recomputes a metric).

* :mod:`.tables` — mean ± std per method × dataset × degradation (CSV, Markdown, LaTeX, HTML)
  and the per-scene table;
* :mod:`.statistics` — bootstrap confidence intervals, Wilcoxon signed-rank tests against the
  best method with Holm's correction, Friedman test, mean ranks and the Nemenyi critical
  difference (docs/statistics.md);
* :mod:`.cost` — parameters, FLOPs, training and fuse time, peak memory, iterations, device;
* :mod:`.published` — numbers from papers (``published/*.yaml``) next to the measured ones;
* :mod:`.figures` — figures 1–7 (PNG and PDF);
* :mod:`.sweeps` — per robustness sweep: metric against the swept value with bootstrap bands,
  base/worst/slope tables and the blind runs' PSF/SRF estimation errors (``hmifbench sweeps``).

:func:`write_report` (``hmifbench report``) writes every table; :func:`write_figures`
(``hmifbench figures``) every figure. Both read only score files and what they point to.
"""

from hmifbench.report.records import KEYS, load_scores, method_order, metric_columns
from hmifbench.report.tables import markdown, summarise, write_tables


def write_report(score_paths, out_dir, published_dirs=(), seed: int = 0,
                 n_resamples: int = 2000) -> dict:
    """Write every table (summary, per scene, statistics, cost, published vs measured).

    Scores under several metric profiles: the primary profile's tables go into ``out_dir``,
    each further profile's into ``out_dir/profile-<name>/``; the published-vs-measured table
    (which matches each published figure to its own profile) is written once.
    """
    from pathlib import Path

    from hmifbench.report import cost, published, statistics
    from hmifbench.report.records import profile_parts

    df = load_scores(score_paths)
    out = Path(out_dir)
    paths = {}
    for i, (profile, part) in enumerate(profile_parts(df)):
        target = out if i == 0 else out / f"profile-{profile}"
        written = write_tables(score_paths, target, df=part)
        written.update(statistics.write_statistics(part, target, seed=seed, n_resamples=n_resamples))
        written.update(cost.write_cost(part, target))
        paths.update(written if i == 0 else {f"{k} [{profile}]": v for k, v in written.items()})
    paths.update(published.write_published(df, out, extra_dirs=published_dirs))
    return paths


def write_figures(score_paths, out_dir, scenes=None, formats=("png", "pdf")) -> dict:
    """Write figures 1–7 into ``out_dir``; see :mod:`hmifbench.report.figures`."""
    from hmifbench.report.figures import write_figures as _write

    return _write(score_paths, out_dir, scenes=scenes, formats=formats)


__all__ = ["KEYS", "load_scores", "markdown", "method_order", "metric_columns", "summarise",
           "write_figures", "write_report", "write_tables"]
