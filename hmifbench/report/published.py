"""Published numbers next to the measured ones: does this run reproduce the paper?

Published figures live in YAML files: the package's own ``hmifbench/report/published/*.yaml``
(installed with hmifbench, so ``hmifbench report`` finds them anywhere) plus any folder given
with ``--published DIR``. A file has a ``source`` (paper, arXiv id and/or DOI, ``checked``:
whether the values were read from the paper itself) and ``results``, one per number::

    - {method: mossfuse, dataset: cave, degradation: mossfuse-x32, profile: mossfuse,
       metric: psnr, value: 42.15, where: "Table 2", tolerance: 0.5, note: "..."}

``degradation`` is the protocol name (or ``real`` for real pairs), ``profile`` the metric
profile; ``tolerance`` (optional) the |measured − published| still read as reproduced
(default: the metric's, :mod:`.metricinfo`). A result with ``value: null`` is a slot to fill
and is skipped.

The measured value is the mean over the scenes of each configured entry of that method on
that dataset. Only a run with the same protocol and profile is compared; a run of the method
on the dataset under another protocol or profile is shown with its value and the note
"protocol differs", never with a verdict.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hmifbench.errors import InputError
from hmifbench.report.metricinfo import info

REQUIRED = ("method", "dataset", "degradation", "profile", "metric", "value", "where")


def published_files(extra_dirs=()) -> list[Path]:
    """The packaged YAML files, then those in ``extra_dirs``."""
    files = sorted(Path(str(p)) for p in resources.files("hmifbench.report").joinpath("published").iterdir()
                   if str(p).endswith(".yaml"))
    for d in extra_dirs:
        d = Path(d)
        if not d.is_dir():
            raise InputError(f"published folder {d}: not a folder")
        files += sorted(d.glob("*.yaml"))
    return files


def load_published(files) -> list[dict]:
    """Every result of every file, each with its ``source`` and ``file``; InputError names the
    file and the result that is malformed."""
    out = []
    for f in files:
        try:
            doc = yaml.safe_load(Path(f).read_text()) or {}
        except yaml.YAMLError as err:
            raise InputError(f"published file {f}: not valid YAML ({err})") from None
        source = doc.get("source")
        if not isinstance(source, dict) or not (source.get("arxiv") or source.get("doi") or source.get("paper")):
            raise InputError(f"published file {f}: 'source' must give the paper, arxiv or doi")
        for i, r in enumerate(doc.get("results") or []):
            missing = [k for k in REQUIRED if k not in (r or {})]
            if missing:
                raise InputError(f"published file {f}: results[{i}] lacks {', '.join(missing)}")
            if r["value"] is None:
                continue
            if not isinstance(r["value"], (int, float)):
                raise InputError(f"published file {f}: results[{i}].value must be a number, "
                                 f"got {r['value']!r}")
            out.append({**r, "source": source, "file": Path(f).name})
    return out


def _cite(source: dict) -> str:
    ids = [f"arXiv:{source['arxiv']}" if source.get("arxiv") else None,
           f"doi:{source['doi']}" if source.get("doi") else None]
    text = ", ".join(i for i in ids if i) or source.get("paper", "")
    return text + ("" if source.get("checked") else " (unchecked)")


def _measured(df: pd.DataFrame, r: dict) -> list[dict]:
    """Measured values of each entry of the result's method on its dataset."""
    runs = df[(df["method"] == r["method"]) & (df["dataset"] == r["dataset"])]
    rows = []
    for (entry, degradation, profile), g in runs.groupby(["entry", "degradation", "profile"],
                                                         sort=True, dropna=False):
        ok = g[g["status"] == "ok"]
        profile = None if pd.isna(profile) else profile
        if r["metric"] == "gflops":
            values = pd.to_numeric(ok["flops"], errors="coerce").dropna() / 1e9
        else:
            values = ok[r["metric"]].dropna() if r["metric"] in ok else pd.Series(dtype=float)
        rows.append({"entry": entry, "measured_degradation": degradation, "measured_profile": profile,
                     "measured": float(values.mean()) if len(values) else math.nan,
                     "n": len(values), "n_runs": len(g)})
    return rows


def _verdict(r: dict, m: dict) -> tuple[str, str]:
    """(verdict, note) for one published result and one measured entry."""
    notes = [r.get("note")] if r.get("note") else []
    same = (m["measured_degradation"] == r["degradation"] and m["measured_profile"] == r["profile"])
    if not same:
        notes.insert(0, f"protocol differs: measured under {m['measured_degradation']} / profile "
                        f"{m['measured_profile']}, published under {r['degradation']} / {r['profile']}")
        return "not comparable", "; ".join(notes)
    if not np.isfinite(m["measured"]):
        return "failed" if m["n_runs"] else "not run", "; ".join(notes)
    fmt = info(r["metric"])
    tol = r.get("tolerance", fmt.tolerance)
    delta = m["measured"] - r["value"]
    if abs(delta) <= tol:
        verdict = "reproduced"
    else:
        verdict = "better" if (delta > 0) == fmt.higher_better else "worse"
    notes.append(f"tolerance ±{tol:g}")
    return verdict, "; ".join(notes)


def compare(df: pd.DataFrame, results: list[dict]) -> pd.DataFrame:
    """One row per published result and measured entry (one row 'not run' when none ran)."""
    rows = []
    for r in results:
        base = {k: r[k] for k in ("method", "dataset", "degradation", "profile", "metric")}
        base.update(published=float(r["value"]), where=r["where"], source=_cite(r["source"]),
                    file=r["file"])
        measured = _measured(df, r)
        if not measured:
            rows.append({**base, "entry": None, "measured": math.nan, "n": 0, "delta": math.nan,
                         "verdict": "not run", "note": r.get("note") or ""})
            continue
        # Matching runs first; other protocols of the same method and dataset after them.
        measured.sort(key=lambda m: (m["measured_degradation"] != r["degradation"], m["entry"]))
        for m in measured:
            verdict, note = _verdict(r, m)
            rows.append({**base, "entry": m["entry"], "measured": m["measured"], "n": m["n"],
                         "measured_degradation": m["measured_degradation"],
                         "measured_profile": m["measured_profile"],
                         "delta": m["measured"] - r["value"], "verdict": verdict, "note": note})
    return pd.DataFrame(rows)


COLUMNS = ["Method", "Dataset", "Protocol", "Profile", "Metric", "Published", "Measured", "Δ",
           "Verdict", "Source", "Note"]
CAPTION = ("Published vs measured. Measured: mean over this run's scenes (n) of each entry of the "
           "method; Δ = measured − published; 'reproduced' when |Δ| is within the tolerance; "
           "values under another protocol or metric profile are shown but not compared.")


def _cells(row) -> list[str]:
    fmt = info(row["metric"])
    measured = (f"{fmt.format(row['measured'])} (n={row['n']})"
                if np.isfinite(row["measured"]) else "–")
    delta = f"{row['delta']:+.{fmt.places(row['published'])}f}" if np.isfinite(row["delta"]) else "–"
    method = row["method"] + (f" ({row['entry']})" if row.get("entry") and row["entry"] != row["method"] else "")
    return [method, row["dataset"], row["degradation"], row["profile"], fmt.title(),
            fmt.format(row["published"]), measured, delta, row["verdict"],
            f"{row['source']}, {row['where']}", row["note"] or ""]


def markdown(table: pd.DataFrame) -> str:
    lines = ["# Published vs measured", "", CAPTION, "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "--|" * len(COLUMNS)]
    for _, row in table.iterrows():
        cells = _cells(row)
        cells[8] = {"reproduced": "✅ reproduced", "better": "⬆ better", "worse": "❌ worse"}.get(
            cells[8], cells[8])
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines + [""])


def latex(table: pd.DataFrame) -> str:
    from hmifbench.report.tables import latex_escape

    out = ["% Written by `hmifbench report`; needs \\usepackage{booktabs}.",
           r"\begin{table*}[t]", r"\centering", r"\scriptsize",
           rf"\caption{{{latex_escape(CAPTION)}}}", r"\label{tab:published}",
           r"\begin{tabular}{lllllrrrlp{3cm}p{4cm}}", r"\toprule",
           " & ".join(latex_escape(c) for c in COLUMNS) + r" \\", r"\midrule"]
    out += [" & ".join(latex_escape(c) for c in _cells(row)) + r" \\" for _, row in table.iterrows()]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table*}", ""]
    return "\n".join(out)


def html(table: pd.DataFrame) -> str:
    import html as H

    from hmifbench.report.tables import html_page

    colour = {"reproduced": "#1a7f37", "worse": "#b00", "better": "#0550ae"}
    body = [f"<p>{H.escape(CAPTION)}</p><table><thead><tr>"
            + "".join(f"<th>{H.escape(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>"]
    for _, row in table.iterrows():
        cells = [H.escape(str(c)) for c in _cells(row)]
        if row["verdict"] in colour:
            cells[8] = f"<b style='color:{colour[row['verdict']]}'>{cells[8]}</b>"
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    body.append("</tbody></table>")
    return html_page("Published vs measured", body)


def write_published(df: pd.DataFrame, out_dir, extra_dirs=()) -> dict:
    from hmifbench.report.tables import write_csv, write_text

    out = Path(out_dir)
    table = compare(df, load_published(published_files(extra_dirs)))
    if table.empty:
        table = pd.DataFrame(columns=["method", "dataset", "degradation", "profile", "metric",
                                      "published", "entry", "measured", "n", "delta", "verdict",
                                      "where", "source", "note"])
    return {"published": write_csv(out / "published.csv", table),
            "published_md": write_text(out / "published.md", markdown(table)),
            "published_tex": write_text(out / "published.tex", latex(table)),
            "published_html": write_text(out / "published.html", html(table))}
