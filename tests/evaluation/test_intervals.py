"""Split-conformal volume intervals: the quantile's known answers, the coverage it promises on
exchangeable errors, the choice between absolute and relative scores, and the tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from brats_unet.evaluation.intervals import (
    VolumeCalibration,
    calibrate,
    calibration_table,
    conformal_quantile,
    coverage_table,
    nonconformity,
    wilson_interval,
    with_intervals,
)
from brats_unet.reporting.cv_section import needed_cases


def test_the_quantile_is_the_ceil_n_plus_one_coverage_th_smallest_score():
    scores = [9.0, 1.0, 5.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0]  # 1..9, shuffled
    assert conformal_quantile(scores, 0.9) == 9.0   # ceil(10 * 0.9) = 9
    assert conformal_quantile(scores, 0.5) == 5.0   # ceil(10 * 0.5) = 5
    assert conformal_quantile(scores, 0.8) == 8.0
    assert conformal_quantile(scores[:8], 0.9) == math.inf  # ceil(9 * 0.9) = 9 > 8
    assert conformal_quantile([], 0.5) == math.inf


def test_too_few_cases_for_a_coverage_are_counted():
    assert needed_cases(0.9) == 9 and needed_cases(0.8) == 4 and needed_cases(0.5) == 1
    for coverage in (0.5, 0.8, 0.9, 0.95):
        n = needed_cases(coverage)
        assert conformal_quantile(np.arange(n), coverage) < math.inf
        assert conformal_quantile(np.arange(n - 1), coverage) == math.inf


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="coverage"):
        conformal_quantile([1.0], 1.0)
    with pytest.raises(ValueError, match="NaN"):
        conformal_quantile([1.0, np.nan], 0.5)
    with pytest.raises(ValueError, match="nonconformity"):
        nonconformity("squared", [1.0], [1.0], 1.0)
    with pytest.raises(ValueError, match="no calibration"):
        calibrate([], [])


def _coverage(n_calibration: int, kinds, coverage: float = 0.9, draws: int = 2000,
              tests: int = 20) -> float:
    rng = np.random.default_rng(n_calibration)
    inside = 0
    for _ in range(draws):
        true = rng.gamma(2.0, 20.0, size=n_calibration + tests)
        predicted = np.maximum(true * rng.lognormal(0, 0.2, size=true.size)
                               + rng.normal(0, 2.0, size=true.size), 0)
        rule = calibrate(predicted[:n_calibration], true[:n_calibration], coverage=coverage,
                         kinds=kinds)
        low, high = rule.interval(predicted[n_calibration:])
        inside += int(np.sum((true[n_calibration:] >= low) & (true[n_calibration:] <= high)))
    return inside / (draws * tests)


@pytest.mark.parametrize("kind", ["absolute", "relative"])
@pytest.mark.parametrize("n_calibration", [9, 19, 49])
def test_coverage_on_exchangeable_errors_is_at_least_nominal(n_calibration, kind):
    """Over many draws of calibration and test cases with the same error law, the share of
    true volumes inside their intervals lies in [1 - alpha, 1 - alpha + 1 / (n + 1)], the
    split-conformal bounds, within four standard errors of the estimate."""
    rate = _coverage(n_calibration, (kind,))
    # the test cases of one draw share its quantile: the draw, not the case, is independent
    se = math.sqrt(0.9 * 0.1 / 2000)
    assert 0.9 - 4 * se <= rate <= 0.9 + 1 / (n_calibration + 1) + 4 * se


@pytest.mark.parametrize("n_calibration", [9, 49])
def test_choosing_the_narrower_score_costs_at_most_the_union_bound(n_calibration):
    """Choosing between the two scores on the calibration cases themselves can cost coverage
    (each is valid alone; the chosen one misses at most as often as both together:
    1 - 2 alpha), less with more cases."""
    se = math.sqrt(0.9 * 0.1 / 2000)
    assert _coverage(n_calibration, ("absolute", "relative")) >= 0.8 - 4 * se


def test_the_narrower_score_is_chosen():
    true = np.array([1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 120.0, 160.0, 200.0, 250.0])
    proportional = true * np.array([1.1, 0.9] * 5)  # errors of 10% of the volume
    assert calibrate(proportional, true, coverage=0.8).kind == "relative"
    constant = true + np.array([2.0, -2.0] * 5)  # errors of 2 ml whatever the size
    rule = calibrate(constant, true, coverage=0.8)
    assert rule.kind == "absolute" and rule.quantile == 2.0


def test_intervals_absolute_relative_and_clipped_at_zero():
    low, high = VolumeCalibration("absolute", 3.0, 9, 0.9, 1.0).interval([10.0, 1.0])
    np.testing.assert_allclose(low, [7.0, 0.0])
    np.testing.assert_allclose(high, [13.0, 4.0])
    low, high = VolumeCalibration("relative", 0.5, 9, 0.9, 1.0).interval([9.0, 0.0])
    np.testing.assert_allclose(low, [4.0, 0.0])
    np.testing.assert_allclose(high, [14.0, 0.5])
    low, high = VolumeCalibration("absolute", math.inf, 3, 0.9, 1.0).interval([5.0])
    assert low[0] == 0.0 and high[0] == math.inf


def test_tables_calibrate_apply_and_count_coverage():
    calibration_cases = pd.DataFrame({
        "model": ["unet3d"] * 9, "region": ["WT"] * 9, "cases": ["out-of-fold"] * 9,
        "volume_true_ml": [10.0] * 9,
        "volume_pred_ml": [10.0 + d for d in (1, -2, 3, -4, 5, -6, 7, -8, 9)]})
    rules = calibration_table(calibration_cases, coverage=0.9, floor_ml=1.0)
    assert len(rules) == 1 and rules.loc[0, "n_cases"] == 9
    test = pd.DataFrame({"model": ["unet3d"] * 4, "predictor": ["unet3d.ensemble"] * 4,
                         "region": ["WT"] * 4, "volume_pred_ml": [20.0, 20.0, 20.0, 20.0],
                         "volume_true_ml": [20.0, 25.0, 40.0, 0.0]})
    rules.loc[0, ["nonconformity", "quantile"]] = ["absolute", 9.0]  # predicted +- 9 ml
    scored = with_intervals(test, rules)
    np.testing.assert_allclose(scored["volume_pred_low_ml"], 11.0)
    np.testing.assert_allclose(scored["volume_pred_high_ml"], 29.0)
    table = coverage_table(scored, by="predictor")
    row = table.iloc[0]
    assert (row["predictor"], row["n_cases"], row["covered"]) == ("unet3d.ensemble", 4, 2)
    assert row["coverage_empirical"] == 0.5 and row["width_ml_mean"] == 18.0
    assert row["coverage_low"] < 0.5 < row["coverage_high"]
    other = with_intervals(test.assign(model="unet2d"), rules)  # no rule for unet2d: NaN
    assert other["volume_pred_low_ml"].isna().all()


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and wilson_interval(0, 10)[0] == 0.0
    assert all(map(math.isnan, wilson_interval(0, 0)))
