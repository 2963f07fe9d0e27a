"""The cost table: what each method costs per dataset × degradation.

Columns (from the score records, which copy them from the run and training records):

* **parameters** — learned parameters (``Fused.n_params``; 0 for model-based methods), the
  median over the runs (a method may adapt its size to the scene);
* **GFLOPs** — FLOPs of one forward pass at the stated input size, when the method recorded
  them (``Fused.extras["flops"] = {"flops": F, "input": [H, W, B]}``, counted with
  :func:`hmifbench.metrics.cost.count_flops`); "–" when not counted;
* **train (s)** — wall time of the training job (dataset-trained methods), **fuse (s)** — mean
  wall time of one fuse call per scene, with its std;
* **peak RSS (MB)** and **peak GPU (MB)** — the largest over the runs;
* **iterations** — median over the runs; **device** — where the runs ran; **input** — the
  size of the fused image (rows × cols × bands).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hmifbench.report.records import method_order

COLUMNS = [("n_params", "Parameters"), ("gflops", "GFLOPs"), ("flops_input", "FLOPs input"),
           ("train_s", "Train (s)"), ("fuse_s", "Fuse (s/scene)"), ("peak_rss_mb", "Peak RSS (MB)"),
           ("peak_gpu_mb", "Peak GPU (MB)"), ("iterations", "Iterations"), ("device", "Device"),
           ("shape", "Input"), ("runs", "Runs ok")]


def _median(s):
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.median()) if len(s) else np.nan


def _max(s):
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.max()) if len(s) else np.nan


def _joined(s):
    values = sorted({str(v) for v in s.dropna()})
    return ", ".join(values) if values else None


def cost_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, degradation, entry), in the tables' method order."""
    rank = {e: i for i, e in enumerate(method_order(df))}
    rows = []
    for (dataset, degradation, entry), g in df.groupby(["dataset", "degradation", "entry"], sort=False):
        ok = g[g["status"] == "ok"]
        fuse = pd.to_numeric(ok["fuse_s"], errors="coerce").dropna()
        flops = _median(ok["flops"])
        rows.append({"dataset": dataset, "degradation": degradation, "entry": entry,
                     "family": g["family"].iloc[0], "method": g["method"].iloc[0],
                     "n_params": _median(ok["n_params"]),
                     "gflops": flops / 1e9 if np.isfinite(flops) else np.nan,
                     "flops_input": _joined(ok["flops_input"]), "train_s": _median(ok["train_s"]),
                     "fuse_s": float(fuse.mean()) if len(fuse) else np.nan,
                     "fuse_s_std": float(fuse.std(ddof=0)) if len(fuse) else np.nan,
                     "peak_rss_mb": _max(ok["peak_rss_mb"]), "peak_gpu_mb": _max(ok["peak_gpu_mb"]),
                     "iterations": _median(ok["iterations"]), "device": _joined(ok["device"]),
                     "shape": _joined(ok["shape"]), "runs": f"{len(ok)}/{len(g)}"})
    out = pd.DataFrame(rows)
    out["_rank"] = out["entry"].map(rank)
    return out.sort_values(["dataset", "degradation", "_rank"], kind="stable").drop(columns="_rank")


def _text(col, row) -> str:
    v = row[col]
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if col == "n_params":
        return f"{int(v):,}"
    if col == "gflops":
        return f"{v:.1f}"
    if col == "fuse_s":
        std = row["fuse_s_std"]
        return f"{v:.3g} ± {std:.2g}" if np.isfinite(std) else f"{v:.3g}"
    if col in ("train_s",):
        return f"{v:.3g}"
    if col in ("peak_rss_mb", "peak_gpu_mb"):
        return f"{v:,.0f}"
    if col == "iterations":
        return f"{v:.0f}"
    return str(v)


def cost_sections(table: pd.DataFrame):
    for (dataset, degradation), part in table.groupby(["dataset", "degradation"], sort=True):
        yield dataset, degradation, [(r["entry"], r["family"], [_text(c, r) for c, _ in COLUMNS])
                                     for _, r in part.iterrows()]


CAPTION = ("Cost per method: learned parameters; GFLOPs of one forward pass at the stated input "
           "(– where the method does not count them); training time; fuse time per scene "
           "(mean ± std over scenes); peak resident memory and peak GPU memory of the job; "
           "iterations; device.")


def markdown(table: pd.DataFrame) -> str:
    lines = ["# hmifbench cost", "", CAPTION, ""]
    for dataset, degradation, rows in cost_sections(table):
        lines += [f"## {dataset} — {degradation}", "",
                  "| Family | Method | " + " | ".join(t for _, t in COLUMNS) + " |",
                  "|:--|:--|" + "--:|" * len(COLUMNS)]
        lines += [f"| {fam} | {entry} | " + " | ".join(cells) + " |" for entry, fam, cells in rows]
        lines.append("")
    return "\n".join(lines)


def latex(table: pd.DataFrame) -> str:
    from hmifbench.report.tables import _latex_label, latex_escape

    out = ["% Written by `hmifbench report`; needs \\usepackage{booktabs}.", ""]
    for dataset, degradation, rows in cost_sections(table):
        out += [r"\begin{table*}[t]", r"\centering", r"\scriptsize",
                rf"\caption{{{latex_escape(f'{dataset}, {degradation}. ' + CAPTION)}}}",
                rf"\label{{{_latex_label('cost', dataset, degradation)}}}",
                r"\begin{tabular}{ll" + "r" * len(COLUMNS) + "}", r"\toprule",
                "Family & Method & " + " & ".join(latex_escape(t) for _, t in COLUMNS) + r" \\",
                r"\midrule"]
        out += [f"{latex_escape(fam)} & {latex_escape(entry)} & "
                + " & ".join(latex_escape(c) for c in cells) + r" \\" for entry, fam, cells in rows]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table*}", ""]
    return "\n".join(out)


def html(table: pd.DataFrame) -> str:
    import html as H

    from hmifbench.report.tables import html_page

    body = [f"<p>{H.escape(CAPTION)}</p>"]
    for dataset, degradation, rows in cost_sections(table):
        body.append(f"<h2>{H.escape(f'{dataset} — {degradation}')}</h2><table><thead><tr>"
                    "<th>Family</th><th>Method</th>"
                    + "".join(f"<th>{H.escape(t)}</th>" for _, t in COLUMNS) + "</tr></thead><tbody>")
        body += [f"<tr><td>{H.escape(str(fam))}</td><td>{H.escape(entry)}</td>"
                 + "".join(f"<td>{H.escape(c)}</td>" for c in cells) + "</tr>"
                 for entry, fam, cells in rows]
        body.append("</tbody></table>")
    return html_page("hmifbench cost", body)


def write_cost(df: pd.DataFrame, out_dir) -> dict:
    from hmifbench.report.tables import write_csv, write_text

    out = Path(out_dir)
    table = cost_table(df)
    return {"cost": write_csv(out / "cost.csv", table),
            "cost_md": write_text(out / "cost.md", markdown(table)),
            "cost_tex": write_text(out / "cost.tex", latex(table)),
            "cost_html": write_text(out / "cost.html", html(table))}
