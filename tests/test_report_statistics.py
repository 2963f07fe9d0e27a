"""The report's statistics against scipy and against published values (Demšar 2006)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hmifbench.report import load_scores, statistics as S
from tests.report_fixtures import write_scores


def test_holm_adjusted_p_values():
    # sorted 0.01, 0.03, 0.04 -> 3·0.01, max(0.03, 2·0.03), max(0.06, 1·0.04)
    assert S.holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert S.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    out = S.holm([np.nan, 0.02])
    assert math.isnan(out[0]) and out[1] == pytest.approx(0.02)   # NaN is not a comparison


def test_wilcoxon_and_friedman_equal_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=12)
    y = x + rng.normal(0.4, 0.5, size=12)
    assert S.wilcoxon_p(x, y) == pytest.approx(stats.wilcoxon(x - y).pvalue)
    m = rng.normal(size=(9, 4)) + np.array([0, 0.5, 1.0, 1.5])
    chi2, p = S.friedman(m)
    ref = stats.friedmanchisquare(*m.T)
    assert (chi2, p) == pytest.approx((ref.statistic, ref.pvalue))
    assert math.isnan(S.friedman(m[:, :2])[0])        # fewer than three methods


def test_min_wilcoxon_p_is_scipys_exact_extreme():
    for n in range(1, 9):
        assert S.min_wilcoxon_p(n) == pytest.approx(stats.wilcoxon(np.arange(1.0, n + 1)).pvalue)


def test_nemenyi_q_and_cd_match_demsar_2006():
    # Demšar (2006), Table 5(a): critical values q_0.05 of the two-tailed Nemenyi test
    table = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}
    for k, q in table.items():
        assert S.nemenyi_q(k) == pytest.approx(q, abs=1e-3)
    # his worked example: four classifiers on 14 data sets, CD = 1.25
    assert S.critical_difference(4, 14) == pytest.approx(1.25, abs=0.01)


def test_mean_ranks_direction_and_ties():
    m = np.array([[30.0, 20.0, 20.0], [31.0, 25.0, 10.0]])
    assert S.mean_ranks(m, higher_better=True) == pytest.approx([1.0, 2.25, 2.75])
    assert S.mean_ranks(m, higher_better=False) == pytest.approx([3.0, 1.75, 1.25])


def test_bootstrap_ci_close_to_normal_theory_and_seeded():
    x = np.random.default_rng(0).normal(10.0, 2.0, size=400)
    low, high = S.bootstrap_ci(x, n_resamples=4000, seed=1)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert S.bootstrap_ci(x, 500, seed=7) == S.bootstrap_ci(x, 500, seed=7)
    assert all(math.isnan(v) for v in S.bootstrap_ci([1.0]))
    assert S.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


def _section(values, metric="psnr"):
    return S.section_statistics(pd.DataFrame(values), metric, n_resamples=200)


def test_too_few_scenes_are_said_to_be_too_few():
    rows, section = _section({"a": [30, 31, 32], "b": [29, 30, 31.5], "c": [20, 21, 22]})
    by = {r["entry"]: r for r in rows}
    assert by["a"]["best"] and by["a"]["p_holm"] != by["a"]["p_holm"]   # NaN for the best
    for e in ("b", "c"):
        assert "too few scenes" in by[e]["note"] and not by[e]["significant"]
        assert by[e]["min_p_holm"] == pytest.approx(min(1, 2 * 2 ** (1 - 3)))
    assert section["k"] == 3 and section["n_scenes"] == 3 and "rough" in section["note"]


def test_enough_scenes_give_a_significant_holm_test():
    rng = np.random.default_rng(1)
    base = rng.normal(30, 1, size=10)
    rows, section = _section({"a": base + 3, "b": base + 2.5 + rng.normal(0, 0.1, 10), "c": base})
    by = {r["entry"]: r for r in rows}
    assert by["c"]["note"] == "" and by["c"]["significant"]
    p_raw = [stats.wilcoxon(by_e - (base + 3)).pvalue for by_e in (base + 0,)]
    assert by["c"]["p_wilcoxon"] == pytest.approx(p_raw[0])
    assert by["c"]["p_holm"] == pytest.approx(S.holm([by["b"]["p_wilcoxon"], p_raw[0]])[1])
    assert section["cd"] == pytest.approx(S.nemenyi_q(3) * math.sqrt(3 * 4 / 60))
    assert [by[e]["mean_rank"] for e in "abc"] == pytest.approx([1.0, 2.0, 3.0])


def test_sam_best_is_the_lowest_and_failed_method_left_out_of_ranks(tmp_path):
    df = load_scores(write_scores(tmp_path, {"lo": {"sam": [1.0, 1.2, 1.1]}, "hi": {"sam": [3.0, 3.3, 3.1]},
                                             "mid": {"sam": [2.0, 2.1, 2.2]},
                                             "gap": {"sam": [0.5, 0.5, 0.5]}},
                                  failed={("gap", "scene02")}))
    per_entry, per_section = S.compute(df, n_resamples=100)
    by = per_entry.set_index("entry")
    assert by.loc["gap", "best"]    # best mean over the scenes it has
    assert math.isnan(by.loc["gap", "mean_rank"])   # not in the complete blocks of Friedman
    assert by.loc["lo", "mean_rank"] == 1.0 and by.loc["hi", "mean_rank"] == 3.0
    assert per_section.iloc[0]["k"] == 3
