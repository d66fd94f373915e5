import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brats_unet.evaluation.comparison import (
    bootstrap_mean_interval,
    mean_dice_ranking,
    pair_verdict,
    paired_comparison,
    paradox_test,
    smallest_wilcoxon_p,
    underpowered,
    wilcoxon_p,
)


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(0.05, 0.1, size=10)
    large = rng.normal(0.05, 0.1, size=1000)
    lo_s, hi_s = bootstrap_mean_interval(small, seed=1)
    lo_l, hi_l = bootstrap_mean_interval(large, seed=1)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert hi_l - lo_l < hi_s - lo_s
    # the interval of a constant is that constant
    assert bootstrap_mean_interval(np.full(5, 0.2)) == pytest.approx((0.2, 0.2))


def test_wilcoxon_matches_scipy_and_handles_ties_to_zero():
    d = np.array([0.1, 0.2, -0.05, 0.3, 0.15, 0.12])
    assert wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d).pvalue)
    assert np.isnan(wilcoxon_p(np.zeros(4)))
    assert np.isnan(wilcoxon_p(np.array([])))


def test_paired_comparison_pairs_subjects_per_region():
    rows = []
    for i in range(8):
        for region in ("WT", "ET"):
            rows.append({"model": "a", "subject": f"s{i}", "region": region, "dice": 0.9})
            rows.append({"model": "b", "subject": f"s{i}", "region": region, "dice": 0.8})
    rows.append({"model": "a", "subject": "only_a", "region": "WT", "dice": 0.1})
    table = paired_comparison(pd.DataFrame(rows), n_boot=200)
    assert set(table["region"]) == {"WT", "ET"}
    wt = table[table["region"] == "WT"].iloc[0]
    assert (wt["model_a"], wt["model_b"], wt["n_subjects"]) == ("a", "b", 8)
    assert wt["mean_difference"] == pytest.approx(0.1)
    assert wt["ci95_low"] == pytest.approx(0.1) and wt["ci95_high"] == pytest.approx(0.1)
    assert wt["wilcoxon_p"] < 0.01


def _comparison_rows(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["region", "metric", "model_a", "model_b", "n_subjects",
                                       "mean_difference", "ci95_low", "ci95_high", "wilcoxon_p"])


def test_pair_verdict_turns_the_row_to_read_better_minus_other():
    table = _comparison_rows(("WT", "dice", "b", "a", 10, -0.3, -0.32, -0.28, 0.002))
    pair = pair_verdict(table, "WT", "a", "b")
    assert (pair.difference, pair.low, pair.high) == (0.3, 0.28, 0.32)
    assert pair.wilcoxon_significant and pair.interval_excludes_zero and pair.n_subjects == 10
    assert pair_verdict(table, "TC", "a", "b") is None
    assert pair_verdict(table, "WT", "a", "c") is None


def test_pair_verdict_keeps_the_two_criteria_apart():
    table = _comparison_rows(("WT", "dice", "a", "b", 8, 0.02, -0.01, 0.05, 0.01),
                             ("TC", "dice", "a", "b", 8, 0.02, 0.01, 0.03, 0.2),
                             ("ET", "dice", "a", "b", 8, 0.0, 0.0, 0.0, np.nan))
    wt, tc, et = (pair_verdict(table, r, "a", "b") for r in ("WT", "TC", "ET"))
    assert wt.wilcoxon_significant and not wt.interval_excludes_zero
    assert not tc.wilcoxon_significant and tc.interval_excludes_zero
    assert not et.wilcoxon_significant  # an undefined p is not significant


def test_the_smallest_wilcoxon_p_is_what_the_exact_test_gives_when_every_pair_agrees():
    for n in (3, 5, 6):
        assert smallest_wilcoxon_p(n) == pytest.approx(wilcoxon_p(np.arange(1.0, n + 1)))
    assert underpowered(5) and not underpowered(6)


def test_mean_dice_ranking_breaks_ties_by_name():
    per_case = pd.DataFrame({"model": ["b", "a", "c"], "subject": ["s"] * 3,
                             "region": ["WT"] * 3, "dice": [0.8, 0.8, 0.9]})
    assert list(mean_dice_ranking(per_case, "WT").index) == ["c", "a", "b"]


def _paradox_frame(components_3d: float, share_3d: float, error_3d: float) -> pd.DataFrame:
    rows = [("unet2d", 2.0, 0.9, 1.0), ("unet3d", components_3d, share_3d, error_3d)]
    return pd.DataFrame([
        {"model": m, "subject": s, "region": "WT", "components_pred": c,
         "largest_component_share_pred": sh, "volume_error_ml": e}
        for m, c, sh, e in rows for s in ("s1", "s2")
    ])


def test_paradox_test_needs_both_kinds_of_model():
    frame = _paradox_frame(1.0, 1.0, 2.0)
    assert paradox_test(frame, ["unet2d"], ["unet3d"]).supported
    assert paradox_test(frame[frame["model"] == "unet3d"], ["unet2d"], ["unet3d"]) is None
    assert paradox_test(frame.drop(columns="volume_error_ml"), ["unet2d"], ["unet3d"]) is None


def test_paradox_connectivity_must_not_be_worse_on_either_measure():
    fewer_but_smaller_share = paradox_test(_paradox_frame(1.0, 0.5, 2.0), ["unet2d"], ["unet3d"])
    assert not fewer_but_smaller_share.more_connected and fewer_but_smaller_share.larger
    assert not fewer_but_smaller_share.supported
    smaller = paradox_test(_paradox_frame(1.0, 0.95, 0.5), ["unet2d"], ["unet3d"])
    assert smaller.more_connected and not smaller.larger
