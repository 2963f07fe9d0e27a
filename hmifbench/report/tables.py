"""Result tables: mean ± std per method × dataset × degradation, and the per-scene table.

Outputs (in the table folder):

* ``per_scene.csv`` — one row per (entry, dataset, degradation, scene): status, every metric,
  fuse time, peak memory, parameter count, iterations, error.
* ``summary.csv`` — the machine-readable table: one row per (entry, dataset, degradation,
  metric) with mean, std (population, ddof = 0, over the scenes that succeeded), n_ok,
  n_failed, profile, the metric's direction, the entry's rank and mark (best / second) and the
  cell as printed.
* ``summary.md`` (GitHub Markdown), ``summary.tex`` (LaTeX, booktabs, one ``table`` per
  section, ``\\input``-ready) and ``summary.html`` (the HTML report) — one table per
  (dataset, degradation): "mean ± std" at each metric's precision (:mod:`.metricinfo`), ↑/↓
  after each metric, best **bold** and second underlined, methods ordered by family and then
  by the section's primary metric (PSNR; QNR on real pairs), failed runs shown as such.

Best and second are chosen on the means *as printed* (ties share the mark) among the entries
that succeeded on every scene of the section: a mean over fewer scenes is not comparable.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hmifbench.io import atomic_path
from hmifbench.report.metricinfo import info, order_metrics
from hmifbench.report.records import KEYS, load_scores, method_order, metric_columns

__all__ = ["KEYS", "Cell", "latex_escape", "load_scores", "markdown", "metric_columns",
           "section_cells", "summarise", "write_tables"]

# Shown in the quality tables; cost columns (fuse_s, …) go to the cost table.
COST_COLUMNS = {"fuse_s", "peak_rss_mb", "peak_gpu_mb", "train_s", "flops"}


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Long table: mean ± std of each metric per (entry, dataset, degradation)."""
    metrics = metric_columns(df) + ["fuse_s"]
    status = df.groupby(KEYS, sort=True)["status"]
    counts = pd.DataFrame({"n_ok": status.apply(lambda s: int((s == "ok").sum())),
                           "n_failed": status.apply(lambda s: int((s != "ok").sum())),
                           "profile": df.groupby(KEYS, sort=True)["profile"].apply(
                               lambda s: ",".join(sorted(set(s.dropna()))) or None),
                           "family": df.groupby(KEYS, sort=True)["family"].first()})
    ok = df[df["status"] == "ok"]
    long = ok.melt(id_vars=KEYS, value_vars=metrics, var_name="metric").dropna(subset=["value"])
    long["value"] = long["value"].astype(float)
    stats = long.groupby(KEYS + ["metric"], sort=True)["value"].agg(
        mean="mean", std=lambda v: v.std(ddof=0))
    grid = pd.MultiIndex.from_tuples([k + (m,) for k in counts.index for m in metrics],
                                     names=KEYS + ["metric"])
    out = stats.reindex(grid).reset_index().merge(counts.reset_index(), on=KEYS)
    # Metrics no run of a section has (a real pair has no full-reference ones) are left out.
    has = out.groupby(["dataset", "degradation", "metric"])["mean"].transform(lambda s: s.notna().any())
    failed_all = out["n_ok"] == 0
    return out[has | failed_all].reset_index(drop=True)


@dataclass(frozen=True)
class Cell:
    """One printed cell: its text, its mark ("best", "second" or "") and a footnote."""

    text: str
    mark: str = ""
    note: str = ""


def _cell_text(metric, mean, std) -> str:
    fmt = info(metric)
    places = fmt.places(mean) if math.isfinite(mean) else None
    if not math.isfinite(std):
        return fmt.format(mean, places)
    return f"{fmt.format(mean, places)} ± {fmt.format(std, places)}"


def section_cells(part: pd.DataFrame, metrics) -> dict[tuple[str, str], Cell]:
    """The cells of one (dataset, degradation) section of a :func:`summarise` table."""
    cells = {}
    by_metric = dict(tuple(part.groupby("metric", sort=False)))
    for metric in metrics:
        rows = by_metric.get(metric, part.iloc[:0])
        fmt = info(metric)
        printed = {}
        for r in rows.itertuples():
            if r.n_ok == 0 or pd.isna(r.mean):
                cells[r.entry, metric] = Cell("failed" if r.n_ok == 0 else "–",
                                              note=f"{r.n_failed} of {r.n_failed} failed"
                                              if r.n_ok == 0 else "")
                continue
            note = f"{r.n_failed} of {r.n_ok + r.n_failed} failed" if r.n_failed else ""
            cells[r.entry, metric] = Cell(_cell_text(metric, r.mean, r.std), note=note)
            if not r.n_failed:
                printed[r.entry] = float(fmt.format(r.mean)) if math.isfinite(r.mean) else r.mean
        distinct = sorted(set(printed.values()), reverse=fmt.higher_better)
        for entry, value in printed.items():
            mark = ("best" if value == distinct[0] else
                    "second" if len(distinct) > 1 and value == distinct[1] else "")
            if mark:
                cells[entry, metric] = Cell(cells[entry, metric].text, mark, cells[entry, metric].note)
    return cells


def _sections(summary: pd.DataFrame, order, sections=None):
    """(dataset, degradation, part, metrics, entries, cells) for each section, in table order
    (``sections`` when given: :func:`write_tables` computes them once for every format)."""
    if sections is not None:
        return sections
    rank = {e: i for i, e in enumerate(order or method_order_from_summary(summary))}
    out = []
    for (dataset, degradation), part in summary.groupby(["dataset", "degradation"], sort=True):
        has = part.groupby("metric")["mean"].apply(lambda v: v.notna().any())
        metrics = [m for m in order_metrics(part["metric"].unique())
                   if m not in COST_COLUMNS and has.get(m, False)]
        entries = _section_order(part, metrics, rank)
        cells = section_cells(part, metrics + (["fuse_s"] if has.get("fuse_s", False) else []))
        if not metrics:  # no run of the section has a score: the table still shows who failed
            metrics = ["status"]
            n_ok = part.groupby("entry")["n_ok"].max()
            cells.update({(e, "status"): Cell("failed" if n_ok.get(e, 0) == 0 else "ok")
                          for e in entries})
        out.append((dataset, degradation, part, metrics, entries, cells))
    return out


def _section_order(part: pd.DataFrame, metrics, rank) -> list[str]:
    """A section's rows: by family, then by the section's primary metric (best first), entries
    without a value last; ties keep the global order ``rank``."""
    from hmifbench.report.metricinfo import primary_metric
    from hmifbench.report.records import FAMILY_ORDER

    primary = primary_metric(metrics)
    rows = part[part["metric"] == primary].set_index("entry") if primary else part.iloc[:0]
    sign = -1.0 if primary and info(primary).higher_better else 1.0
    family = part.groupby("entry")["family"].first()

    def key(entry):
        mean = rows["mean"].get(entry, np.nan) if len(rows) else np.nan
        return (FAMILY_ORDER.get(family.get(entry), 2), bool(np.isnan(mean)),
                0.0 if np.isnan(mean) else sign * mean, rank.get(entry, len(rank)))

    return sorted(part["entry"].unique(), key=key)


def method_order_from_summary(summary: pd.DataFrame) -> list[str]:
    """:func:`~hmifbench.report.records.method_order` from a summary (no per-run table)."""
    from hmifbench.report.metricinfo import primary_metric

    metrics = [m for m in summary["metric"].unique() if m not in COST_COLUMNS]
    primary = primary_metric(order_metrics(metrics))
    wide = summary[summary["metric"] == primary].rename(columns={"mean": primary})
    wide = wide.assign(status=np.where(wide["n_ok"] > 0, "ok", "failed"))
    return method_order(wide[KEYS + ["family", "status", primary]], primary)


def _caption(dataset, degradation, part) -> str:
    n = int((part["n_ok"] + part["n_failed"]).max())
    profiles = ", ".join(sorted(set(",".join(part["profile"].dropna()).split(",")) - {""})) or "n/a"
    return (f"{dataset}, {degradation}: mean ± std (population) over {n} scene(s); metric "
            f"profile {profiles}. ↑ higher is better, ↓ lower is better; best in bold, second "
            "underlined, among the methods that succeeded on every scene.")


def _family_of(part):
    return part.groupby("entry")["family"].first().to_dict()


def markdown(summary: pd.DataFrame, order=None, sections=None) -> str:
    """GitHub Markdown: one table per (dataset, degradation); second best is ``<ins>``."""
    lines = ["# hmifbench results", ""]
    for dataset, degradation, part, metrics, entries, cells in _sections(summary, order, sections):
        family = _family_of(part)
        lines += [f"## {dataset} — {degradation}", "", _caption(dataset, degradation, part), "",
                  "| Family | Method | " + " | ".join(info(m).title() for m in metrics) + " |",
                  "|:--|:--|" + "--:|" * len(metrics)]
        notes = []
        for entry in entries:
            row = []
            for m in metrics:
                c = cells.get((entry, m), Cell("–"))
                text = {"best": f"**{c.text}**", "second": f"<ins>{c.text}</ins>"}.get(c.mark, c.text)
                if c.note and c.text != "failed":
                    text += "†"
                    notes.append(f"{entry}: {c.note}")
                row.append(text)
            lines.append(f"| {family.get(entry, '')} | {entry} | " + " | ".join(row) + " |")
        lines += [""] + ([f"† {n}." for n in dict.fromkeys(notes)] + [""] if notes else [])
    return "\n".join(lines)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "°": r"\textdegree{}", "λ": r"$\lambda$",
                  "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "–": "--",
                  "−": "$-$", "∞": r"$\infty$", "†": r"$^\dagger$", "—": "---", "×": r"$\times$"}


def latex_escape(text) -> str:
    """``text`` with LaTeX's special characters escaped (and the few Unicode symbols the tables
    use written as LaTeX), so that it typesets as written."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_label(*parts) -> str:
    return "tab:" + "-".join("".join(ch if ch.isalnum() else "-" for ch in str(p)) for p in parts)


def latex(summary: pd.DataFrame, order=None, sections=None) -> str:
    """LaTeX (booktabs): one ``table`` per section, ready for ``\\input``; needs
    ``\\usepackage{booktabs}`` (and ``textcomp`` for ° on old TeX installations)."""
    out = ["% Written by `hmifbench report`; needs \\usepackage{booktabs}.", ""]
    for dataset, degradation, part, metrics, entries, cells in _sections(summary, order, sections):
        family = _family_of(part)
        out += [r"\begin{table}[t]", r"\centering", r"\small",
                rf"\caption{{{latex_escape(_caption(dataset, degradation, part))}}}",
                rf"\label{{{_latex_label(dataset, degradation)}}}",
                r"\begin{tabular}{ll" + "r" * len(metrics) + "}", r"\toprule",
                "Family & Method & " + " & ".join(latex_escape(info(m).title()) for m in metrics)
                + r" \\", r"\midrule"]
        notes, previous = [], None
        for entry in entries:
            if previous is not None and family.get(entry) != previous:
                out.append(r"\midrule")
            previous = family.get(entry)
            row = []
            for m in metrics:
                c = cells.get((entry, m), Cell("–"))
                text = latex_escape(c.text)
                text = {"best": rf"\textbf{{{text}}}", "second": rf"\underline{{{text}}}"}.get(c.mark, text)
                if c.note and c.text != "failed":
                    text += r"$^\dagger$"
                    notes.append(f"{entry}: {c.note}")
                row.append(text)
            out.append(f"{latex_escape(family.get(entry, ''))} & {latex_escape(entry)} & "
                       + " & ".join(row) + r" \\")
        out.append(r"\bottomrule")
        out.append(r"\end{tabular}")
        if notes:
            out.append(r"\par\footnotesize " + "; ".join(
                r"$^\dagger$" + latex_escape(n) for n in dict.fromkeys(notes)) + ".")
        out += [r"\end{table}", ""]
    return "\n".join(out)


HTML_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{padding:.25em .6em;border-bottom:1px solid #ccc;text-align:right;white-space:nowrap}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
thead th{border-bottom:2px solid #333} caption{caption-side:top;text-align:left;max-width:60em}
.failed{color:#a00}
</style>"""


def html_page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title>{HTML_STYLE}</head><body>"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n")


def html_table(summary: pd.DataFrame, order=None, sections=None) -> str:
    """The same tables as a standalone HTML page (bold best, underlined second)."""
    body = []
    for dataset, degradation, part, metrics, entries, cells in _sections(summary, order, sections):
        family = _family_of(part)
        body.append(f"<h2>{html.escape(f'{dataset} — {degradation}')}</h2><table>"
                    f"<caption>{html.escape(_caption(dataset, degradation, part))}</caption><thead><tr>"
                    "<th>Family</th><th>Method</th>"
                    + "".join(f"<th>{html.escape(info(m).title())}</th>" for m in metrics)
                    + "</tr></thead><tbody>")
        for entry in entries:
            tds = []
            for m in metrics:
                c = cells.get((entry, m), Cell("–"))
                text = html.escape(c.text) + ("†" if c.note and c.text != "failed" else "")
                text = {"best": f"<b>{text}</b>", "second": f"<u>{text}</u>"}.get(c.mark, text)
                cls = " class='failed'" if c.text == "failed" else ""
                tds.append(f"<td{cls} title='{html.escape(c.note)}'>{text}</td>")
            body.append(f"<tr><td>{html.escape(str(family.get(entry, '')))}</td>"
                        f"<td>{html.escape(entry)}</td>{''.join(tds)}</tr>")
        body.append("</tbody></table>")
    return html_page("hmifbench results", body)


def machine_table(summary: pd.DataFrame, order=None, sections=None) -> pd.DataFrame:
    """``summary`` with the direction, printed cell, mark and rank of each row."""
    out = summary.copy()
    out["direction"] = [info(m).arrow for m in out["metric"]]
    text, mark = [], []
    cells = {}
    for dataset, degradation, _, _, _, section in _sections(summary, order, sections):
        for (entry, metric), cell in section.items():
            cells[entry, dataset, degradation, metric] = cell
    for r in out.itertuples():
        c = cells.get((r.entry, r.dataset, r.degradation, r.metric))
        text.append(c.text if c else None)
        mark.append(c.mark if c else "")
    out["text"], out["mark"] = text, mark
    sign = np.where([info(m).higher_better for m in out["metric"]], -1.0, 1.0)
    out["rank"] = (out.assign(key=sign * out["mean"])
                   .groupby(["dataset", "degradation", "metric"])["key"].rank(method="min"))
    return out


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return path


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def write_tables(score_paths, out_dir, df: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write per_scene.csv and summary.{csv,md,tex,html} into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    df = load_scores(score_paths) if df is None else df
    order = method_order(df)
    rank = {e: i for i, e in enumerate(order)}
    df = df.assign(_order=df["entry"].map(rank)).sort_values(
        ["dataset", "degradation", "_order", "scene"], kind="stable").drop(columns="_order")
    summary = summarise(df)
    sections = _sections(summary, order)
    return {
        "per_scene": write_csv(out / "per_scene.csv", df.drop(columns="extra_profile", errors="ignore")),
        "summary": write_csv(out / "summary.csv", machine_table(summary, order, sections)),
        "markdown": write_text(out / "summary.md", markdown(summary, order, sections)),
        "latex": write_text(out / "summary.tex", latex(summary, order, sections)),
        "html": write_text(out / "summary.html", html_table(summary, order, sections)),
    }
