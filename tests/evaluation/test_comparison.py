import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brats_unet.evaluation.comparison import bootstrap_mean_interval, paired_comparison, wilcoxon_p


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
