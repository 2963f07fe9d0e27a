"""Result, cost and published-vs-measured tables from hand-written score files."""

import pandas as pd
import pytest

from hmifbench.cli import main
from hmifbench.errors import InputError
from hmifbench.report import load_scores, summarise, write_report
from hmifbench.report.metricinfo import info
from hmifbench.report.tables import latex_escape, section_cells
from tests.report_fixtures import score_record, write_score, write_scores

# Three entries over three scenes. 'a' is best on PSNR, 'b' best on SAM (lower is better);
# 'deepnet' is deep; 'dead' failed everywhere, 'shaky' on one scene.
VALUES = {
    "a": {"psnr": [40.0, 41.0, 42.0], "sam": [3.0, 3.1, 3.2], "ssim": [0.91234, 0.91, 0.92],
          "rmse": [0.0123456, 0.0123456, 0.0123456]},
    "b": {"psnr": [35.0, 35.5, 36.0], "sam": [1.0, 1.1, 1.2], "ssim": [0.95, 0.96, 0.97],
          "rmse": [0.02, 0.02, 0.02]},
    "c": {"psnr": [30.0, 30.0, 30.0], "sam": [2.0, 2.0, 2.0], "ssim": [0.5, 0.5, 0.5],
          "rmse": [0.1, 0.1, 0.1]},
    "deepnet": {"psnr": [38.0, 38.0, 38.0], "sam": [2.5, 2.5, 2.5], "ssim": [0.8, 0.8, 0.8],
                "rmse": [0.05, 0.05, 0.05]},
    "shaky": {"psnr": [50.0, 50.0, 50.0], "sam": [0.1, 0.1, 0.1], "ssim": [0.99, 0.99, 0.99],
              "rmse": [0.001, 0.001, 0.001]},
    "dead": {"psnr": [0, 0, 0], "sam": [0, 0, 0], "ssim": [0, 0, 0], "rmse": [0, 0, 0]},
}


@pytest.fixture()
def tables(tmp_path):
    paths = write_scores(tmp_path, VALUES, failed={"dead", ("shaky", "scene02")},
                         families={"deepnet": "deep"})
    out = tmp_path / "tables"
    write_report(paths, out, n_resamples=200)
    return out, paths


def _md_rows(text):
    return {line.split("|")[2].strip(): line for line in text.splitlines()
            if line.startswith("| linear") or line.startswith("| deep")}


def test_precision_per_metric(tables):
    out, _ = tables
    rows = _md_rows((out / "summary.md").read_text())
    # PSNR and SAM 2 decimals, SSIM 4, RMSE 4 significant digits; std at the mean's precision
    assert "41.00 ± 0.82" in rows["a"]
    assert "3.10 ± 0.08" in rows["a"]
    assert "0.9141 ± 0.0043" in rows["a"]
    assert "0.01235 ± 0.00000" in rows["a"]
    assert info("rmse").format(0.000123456) == "0.0001235"


def test_best_bold_second_underlined_by_direction(tables):
    out, _ = tables
    rows = _md_rows((out / "summary.md").read_text())
    assert "**41.00 ± 0.82**" in rows["a"]            # PSNR: higher is better
    assert "<ins>38.00 ± 0.00</ins>" in rows["deepnet"]
    assert "**1.10 ± 0.08**" in rows["b"]             # SAM: lower is better
    assert "<ins>2.00 ± 0.00</ins>" in rows["c"]
    assert "**0.9600 ± 0.0082**" in rows["b"]         # SSIM
    # 'shaky' has the best means but failed on a scene: shown with †, never marked
    assert "50.00 ± 0.00†" in rows["shaky"] and "**50" not in rows["shaky"]
    tex = (out / "summary.tex").read_text()
    assert r"\textbf{41.00 $\pm$ 0.82}" in tex and r"\underline{38.00 $\pm$ 0.00}" in tex
    assert r"\textbf{1.10 $\pm$ 0.08}" in tex
    html = (out / "summary.html").read_text()
    assert "<b>41.00 ± 0.82</b>" in html and "<u>38.00 ± 0.00</u>" in html


def test_arrows_order_and_failed_rows(tables):
    out, _ = tables
    text = (out / "summary.md").read_text()
    assert "| PSNR (dB) ↑ | SSIM ↑ | SAM (°) ↓ | RMSE ↓ |" in text
    order = list(_md_rows(text))
    # linear by mean PSNR rank (best first; failed last), then deep
    assert order == ["shaky", "a", "b", "c", "dead", "deepnet"]
    assert _md_rows(text)["dead"].count("failed") == 4
    assert "† shaky: 1 of 3 failed." in text


def test_machine_csv_marks_and_ranks(tables):
    out, _ = tables
    summary = pd.read_csv(out / "summary.csv")
    psnr = summary[summary["metric"] == "psnr"].set_index("entry")
    assert psnr.loc["a", "mark"] == "best" and psnr.loc["deepnet", "mark"] == "second"
    assert psnr.loc["a", "direction"] == "↑"
    sam = summary[summary["metric"] == "sam"].set_index("entry")
    assert sam.loc["b", "mark"] == "best" and sam.loc["shaky", "rank"] == 1
    assert psnr.loc["dead", "n_ok"] == 0 and psnr.loc["dead", "n_failed"] == 3
    per_scene = pd.read_csv(out / "per_scene.csv")
    assert len(per_scene) == 18 and (per_scene.loc[per_scene["entry"] == "dead", "status"] == "failed").all()


def test_ties_share_the_mark(tmp_path):
    df = load_scores(write_scores(tmp_path, {"x": {"psnr": [30.001, 30.0]}, "y": {"psnr": [30.0, 30.0]},
                                             "z": {"psnr": [20.0, 20.0]}}))
    cells = section_cells(summarise(df), ["psnr"])
    assert cells["x", "psnr"].mark == cells["y", "psnr"].mark == "best"   # 30.00 both, as printed
    assert cells["z", "psnr"].mark == "second"


def test_latex_escape():
    assert latex_escape("mtf_glp & 50% #1 {x} ~ ^ \\") == (
        r"mtf\_glp \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{}")
    assert latex_escape("SAM (°) ↓") == r"SAM (\textdegree{}) $\downarrow$"


def test_cost_table(tmp_path):
    paths = write_scores(tmp_path, {"net": {"psnr": [30.0, 31.0]}, "lin": {"psnr": [29.0, 29.0]}},
                         families={"net": "deep"}, n_params={"net": 12345}, fuse_s={"net": 2.0})
    out = tmp_path / "t"
    write_report(paths, out, n_resamples=0)
    cost = pd.read_csv(out / "cost.csv").set_index("entry")
    assert cost.loc["net", "n_params"] == 12345 and cost.loc["net", "fuse_s"] == pytest.approx(2.0)
    md = (out / "cost.md").read_text()
    assert "| deep | net | 12,345 |" in md and "2 ± 0 |" in md
    assert "booktabs" in (out / "cost.tex").read_text()


def _mossfuse_scores(tmp_path, psnr, degradation="mossfuse-x32", profile="mossfuse", flops=None):
    paths = []
    for i, v in enumerate(psnr):
        rec = score_record("mossfuse", f"s{i}", {"psnr": v}, family="deep", dataset="cave",
                           degradation=degradation, flops=flops)
        rec["profile"] = profile
        paths.append(write_score(tmp_path, rec))
    return paths


def test_published_vs_measured_reproduced_and_worse(tmp_path):
    paths = _mossfuse_scores(tmp_path, [42.0, 42.2], flops={"flops": 300e9, "input": [512, 512, 31]})
    out = tmp_path / "t"
    write_report(paths, out, n_resamples=0)
    pub = pd.read_csv(out / "published.csv")
    cave = pub[(pub["dataset"] == "cave") & (pub["metric"] == "psnr")].iloc[0]
    assert cave["published"] == 42.15 and cave["measured"] == pytest.approx(42.1)
    assert cave["delta"] == pytest.approx(-0.05) and cave["verdict"] == "reproduced"
    gflops = pub[pub["metric"] == "gflops"].iloc[0]
    assert gflops["measured"] == pytest.approx(300.0) and gflops["verdict"] == "worse"
    assert (pub.loc[pub["dataset"] == "harvard", "verdict"] == "not run").all()
    md = (out / "published.md").read_text()
    assert "✅ reproduced" in md and "arXiv:2412.04802" in md


def test_published_other_protocol_is_not_compared(tmp_path):
    out = tmp_path / "t"
    write_report(_mossfuse_scores(tmp_path, [30.0], degradation="gauss-fwhm-x8", profile="canonical"),
                 out, n_resamples=0)
    row = pd.read_csv(out / "published.csv").query("dataset == 'cave' and metric == 'psnr'").iloc[0]
    assert row["verdict"] == "not comparable" and "protocol differs" in row["note"]


def test_published_extra_folder_and_bad_file(tmp_path):
    paths = write_scores(tmp_path, {"gsa": {"psnr": [33.0, 35.0]}})
    mine = tmp_path / "pub"
    mine.mkdir()
    (mine / "gsa.yaml").write_text(
        "source: {paper: My paper, doi: 10.1/x, checked: true}\n"
        "results:\n  - {method: gsa, dataset: synthetic, degradation: gauss-fwhm-x4,"
        " profile: canonical, metric: psnr, value: 36.5, where: Table 1}\n")
    assert main(["report", *map(str, paths), "-o", str(tmp_path / "t"), "--published", str(mine)]) == 0
    row = pd.read_csv(tmp_path / "t" / "published.csv").query("method == 'gsa'").iloc[0]
    assert row["verdict"] == "worse" and row["delta"] == pytest.approx(-2.5)
    (mine / "bad.yaml").write_text("source: {doi: 10.1/y}\nresults:\n  - {method: gsa, value: 1}\n")
    with pytest.raises(InputError, match=r"bad.yaml: results\[0\] lacks dataset"):
        write_report(paths, tmp_path / "t2", published_dirs=[mine])


def test_report_cli_without_scores_is_a_clear_error(tmp_path, capsys):
    assert main(["report", "-o", str(tmp_path)]) == 2
    assert "no score files" in capsys.readouterr().err
