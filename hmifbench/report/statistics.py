"""Statistics over scenes: confidence intervals, paired tests, ranks (docs/statistics.md).

Per dataset × degradation × metric, over the scenes of that section:

* a percentile bootstrap 95 % confidence interval of each method's mean (seeded);
* a two-sided Wilcoxon signed-rank test of each method against the best one (best mean in the
  metric's direction), paired by scene, with Holm's step-down correction over the
  comparisons — and the smallest p-value the test could reach with that many scenes, so that
  a table can say when there are too few scenes for the test to mean anything;
* mean ranks (1 = best, ties averaged), the Friedman test and the Nemenyi critical
  difference (Demšar, JMLR 7, 2006).

Everything comes from :mod:`scipy.stats`; this module only arranges the data.
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from hmifbench.report.metricinfo import info, order_metrics
from hmifbench.report.records import KEYS, method_order, metric_columns

ALPHA = 0.05


def bootstrap_ci(values, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0):
    """Percentile bootstrap confidence interval of the mean of ``values``: (low, high).

    ``scipy.stats.bootstrap`` with ``method="percentile"`` and a generator seeded by ``seed``;
    (nan, nan) for fewer than two values or no resamples, (v, v) when all values are equal.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or n_resamples < 1:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test).

    For m p-values sorted p_(1) ≤ … ≤ p_(m): p̃_(i) = max_{j≤i} min(1, (m − j + 1)·p_(j)).
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p-value the exact Wilcoxon signed-rank test can give with ``n``
    non-zero paired differences: 2 / 2ⁿ (every difference of the same sign)."""
    return min(1.0, 2.0 ** (1 - n)) if n > 0 else 1.0


def wilcoxon_p(x, y) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired ``x`` and ``y`` (scipy's default:
    zero differences dropped, exact distribution for small n); NaN when every difference is
    zero or fewer than one pair remains."""
    d = np.asarray(x, float) - np.asarray(y, float)
    d = d[np.isfinite(d)]
    if d.size == 0 or np.all(d == 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns for small n: the caller reports that
        return float(stats.wilcoxon(d).pvalue)


@functools.lru_cache(maxsize=None)
def nemenyi_q(k: int, alpha: float = ALPHA) -> float:
    """q_α of the Nemenyi test for ``k`` methods: the studentised range quantile (infinite
    degrees of freedom) divided by √2 (Demšar 2006, Table 5a: 2.343 for k = 3 at 0.05)."""
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of mean ranks: CD = q_α · sqrt(k(k + 1) / (6N))."""
    if k < 2 or n < 1:
        return math.nan
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def mean_ranks(matrix: np.ndarray, higher_better: bool) -> np.ndarray:
    """Mean rank of each column of a (scenes × methods) matrix; rank 1 is the best in each
    row, ties get the average rank."""
    signed = -matrix if higher_better else matrix
    return stats.rankdata(signed, axis=1).mean(axis=0)


def friedman(matrix: np.ndarray) -> tuple[float, float]:
    """Friedman χ² and p-value over a complete (scenes × methods) matrix; NaN for fewer than
    3 methods or 2 scenes, or when every row is constant."""
    n, k = matrix.shape
    if k < 3 or n < 2 or np.all(matrix == matrix[:, :1]):
        return math.nan, math.nan
    res = stats.friedmanchisquare(*matrix.T)
    return float(res.statistic), float(res.pvalue)


def section_statistics(values: pd.DataFrame, metric: str, seed: int = 0,
                       n_resamples: int = 2000) -> tuple[list[dict], dict]:
    """Statistics of one metric in one section.

    ``values``: a (scene × entry) table of the metric, NaN where an entry has no value (its
    run failed). Returns one row per entry and the section's Friedman row.
    """
    higher = info(metric).higher_better
    entries = list(values.columns)
    x = values.to_numpy(dtype=float)                      # (scenes, entries)
    has = np.isfinite(x)
    counts = has.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns: failed entries
        means = np.nanmean(x, axis=0)
    present = np.flatnonzero(counts > 0)
    best = None
    if present.size:
        best = int(present[np.argmax(means[present]) if higher else np.argmin(means[present])])
    rows = []
    for i, entry in enumerate(entries):
        low, high = bootstrap_ci(x[has[:, i], i], n_resamples, seed=seed + i)
        rows.append({"entry": entry, "n": int(counts[i]), "mean": float(means[i]), "ci_low": low,
                     "ci_high": high, "best": i == best})
    # Wilcoxon against the best, over the scenes both succeeded on; Holm over the comparisons.
    p, pairs = [], []
    for i in range(len(entries)):
        both = has[:, i] & has[:, best] if best is not None else np.zeros(len(x), bool)
        pairs.append(int(both.sum()) if i != best else 0)
        p.append(wilcoxon_p(x[both, i], x[both, best]) if i != best and both.any() else math.nan)
    adjusted = holm(p)
    m = int(np.isfinite(p).sum())
    for i, r in enumerate(rows):
        r["n_pairs"], r["p_wilcoxon"], r["p_holm"] = pairs[i], p[i], adjusted[i]
        r["significant"] = bool(np.isfinite(adjusted[i]) and adjusted[i] < ALPHA)
        floor = min(1.0, m * min_wilcoxon_p(pairs[i])) if pairs[i] else math.nan
        r["min_p_holm"] = floor
        r["note"] = ""
        if i != best and pairs[i] and floor >= ALPHA:
            r["note"] = (f"too few scenes: with {pairs[i]} paired scenes and {m} comparison(s) "
                         f"the smallest Holm-adjusted p-value is {floor:.3g} ≥ {ALPHA}")
    # Friedman and mean ranks over the entries with a value on every scene (a method that
    # failed on a scene is left out rather than the scene: the blocks must be complete).
    scenes = has.any(axis=1)
    keep = np.flatnonzero(has[scenes].all(axis=0) & (counts > 0))
    complete = x[scenes][:, keep]
    n, k = complete.shape
    ranks = mean_ranks(complete, higher) if k and n else np.array([])
    for r in rows:
        r["mean_rank"] = math.nan
    for j, i in enumerate(keep):
        rows[i]["mean_rank"] = float(ranks[j])
    chi2, p_f = friedman(complete) if k and n else (math.nan, math.nan)
    note = ""
    if k < 3:
        note = f"Friedman test needs at least 3 methods, got {k}"
    elif n < 2:
        note = f"Friedman test needs at least 2 scenes, got {n}"
    elif n < 10 or k < 5:
        note = (f"{n} scenes × {k} methods: the χ² approximation of the Friedman statistic is "
                "rough below about 10 scenes and 5 methods (Demšar 2006)")
    section = {"metric": metric, "k": k, "n_scenes": n, "chi2": chi2, "p_friedman": p_f,
               "cd": critical_difference(k, n), "q_alpha": nemenyi_q(k) if k >= 2 else math.nan,
               "best": entries[best] if best is not None else None, "note": note}
    return rows, section


def compute(df: pd.DataFrame, seed: int = 0, n_resamples: int = 2000):
    """(per-entry table, per-section table) for every dataset × degradation × metric."""
    order = method_order(df)
    metrics_all = metric_columns(df)
    per_entry, per_section = [], []
    for (dataset, degradation), part in df.groupby(["dataset", "degradation"], sort=True):
        entries = [e for e in order if e in set(part["entry"])]
        ok = part[part["status"] == "ok"]
        metrics = order_metrics(m for m in metrics_all if ok[m].notna().any())
        # (scene × entry) per metric, one reshape for the section
        wide = ok.drop_duplicates(["scene", "entry"]).set_index(["scene", "entry"])[metrics].unstack("entry")
        scenes = sorted(set(part["scene"]))
        for metric in metrics:
            values = wide[metric].reindex(index=scenes, columns=entries)
            rows, section = section_statistics(values, metric, seed, n_resamples)
            labels = {"dataset": dataset, "degradation": degradation, "metric": metric}
            per_entry += [{**labels, **r} for r in rows]
            per_section.append({"dataset": dataset, "degradation": degradation, **section})
    return pd.DataFrame(per_entry), pd.DataFrame(per_section)


def _fmt_p(p) -> str:
    if not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def markdown(per_entry: pd.DataFrame, per_section: pd.DataFrame, seed: int, n_resamples: int) -> str:
    lines = ["# hmifbench statistics", "",
             f"Per section and metric: mean with its 95 % percentile-bootstrap confidence interval "
             f"({n_resamples} resamples, seed {seed}); mean rank (1 = best) over the scenes every "
             "listed method succeeded on; two-sided Wilcoxon signed-rank test against the best "
             "method, paired by scene, Holm-adjusted p-value (* < 0.05). Friedman test and "
             "Nemenyi critical difference (CD) of mean ranks at α = 0.05. Definitions: "
             "docs/statistics.md.", ""]
    if per_section.empty:  # every run failed: there is nothing to compare
        return "\n".join(lines + ["No section has a successful run: nothing to compare.", ""])
    for (dataset, degradation), sec in per_section.groupby(["dataset", "degradation"], sort=False):
        lines += [f"## {dataset} — {degradation}", ""]
        for s in sec.itertuples():
            fmt = info(s.metric)
            rows = per_entry[(per_entry["dataset"] == dataset) & (per_entry["degradation"] == degradation)
                             & (per_entry["metric"] == s.metric)]
            friedman_text = (f"Friedman χ² = {s.chi2:.2f}, p = {_fmt_p(s.p_friedman)}, "
                             f"{s.n_scenes} scenes × {s.k} methods, CD = {s.cd:.2f}"
                             if np.isfinite(s.chi2) else f"Friedman: –; CD = {s.cd:.2f}"
                             if np.isfinite(s.cd) else "Friedman: –")
            lines += [f"### {fmt.title()}", "", friedman_text + (f" ({s.note})" if s.note else "") + ".", "",
                      "| Method | mean [95 % CI] | mean rank | p vs best (Holm) |", "|:--|--:|--:|--:|"]
            notes = []
            for r in rows.itertuples():
                if not np.isfinite(r.mean):
                    lines.append(f"| {r.entry} | failed | – | – |")
                    continue
                ci = (f" [{fmt.format(r.ci_low)}, {fmt.format(r.ci_high)}]"
                      if np.isfinite(r.ci_low) else "")
                test = "best" if r.best else _fmt_p(r.p_holm) + ("*" if r.significant else "")
                if r.note:
                    test += "‡"
                    notes.append(r.note)
                rank = f"{r.mean_rank:.2f}" if np.isfinite(r.mean_rank) else "–"
                lines.append(f"| {r.entry} | {fmt.format(r.mean)}{ci} | {rank} | {test} |")
            lines += [""] + ([f"‡ {notes[0]}.", ""] if notes else [])
    return "\n".join(lines)


def write_statistics(df: pd.DataFrame, out_dir, seed: int = 0, n_resamples: int = 2000) -> dict:
    """Write statistics.csv (per entry), friedman.csv (per section), statistics.md/.html."""
    from hmifbench.report.tables import html_page, write_csv, write_text

    out = Path(out_dir)
    per_entry, per_section = compute(df, seed, n_resamples)
    text = markdown(per_entry, per_section, seed, n_resamples)
    return {"statistics": write_csv(out / "statistics.csv", per_entry),
            "friedman": write_csv(out / "friedman.csv", per_section),
            "statistics_md": write_text(out / "statistics.md", text),
            "statistics_html": write_text(out / "statistics.html",
                                          html_page("hmifbench statistics", [_md_to_html(text)]))}


def _md_to_html(text: str) -> str:
    """The few Markdown constructs of :func:`markdown` (headings, tables, paragraphs) as HTML."""
    import html

    out, in_table = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(line) <= set("|:- "):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            if level > 1:
                out.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)
