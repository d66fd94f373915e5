"""The change between two scans: interval arithmetic, calls, coverage, tables."""

import math

import numpy as np
import pandas as pd
import pytest

from brats_unet.evaluation.intervals import (
    VolumeCalibration,
    calibrate,
    calibration_table,
    per_scan_coverage,
    rules_for,
    with_intervals,
)
from brats_unet.evaluation.longitudinal import (
    CHANGE_REGIONS,
    ChangeThresholds,
    call,
    change_coverage,
    change_table,
    file_volumes,
    volume_change,
    volume_rows,
)

ABSOLUTE_2ML = VolumeCalibration("absolute", 2.0, 40, 0.95, 1.0)


def test_absolute_rule_gives_the_change_and_ratio_bounds_by_hand():
    row = volume_change(10.0, 30.0, ABSOLUTE_2ML)
    assert (row["volume_before_low_ml"], row["volume_before_high_ml"]) == (8.0, 12.0)
    assert (row["volume_after_low_ml"], row["volume_after_high_ml"]) == (28.0, 32.0)
    assert row["change_ml"] == 20.0
    assert (row["change_low_ml"], row["change_high_ml"]) == (16.0, 24.0)
    assert row["ratio"] == 3.0
    assert row["ratio_low"] == pytest.approx(28 / 12) and row["ratio_high"] == 4.0
    assert row["call"] == "progression"  # 28 / 12 = 2.33 > 1.40


def test_relative_rule_and_clipping_at_zero():
    rule = VolumeCalibration("relative", 0.5, 40, 0.95, 1.0)
    row = volume_change(1.0, 0.0, rule)  # half-width 0.5 (v + 1): before [0, 2], after [0, 1]
    assert (row["volume_before_low_ml"], row["volume_before_high_ml"]) == (0.0, 2.0)
    assert (row["volume_after_low_ml"], row["volume_after_high_ml"]) == (0.0, 0.5)
    assert row["ratio"] == 0.0 and row["ratio_low"] == 0.0
    assert math.isinf(row["ratio_high"])  # 0.5 / 0
    assert row["call"] == "indeterminate"


@pytest.mark.parametrize("low, high, expected", [
    (1.5, 3.0, "progression"), (0.1, 0.3, "response"), (0.5, 1.3, "stable"),
    (0.35, 1.40, "stable"),  # on a threshold is inside it
    (1.2, 1.6, "indeterminate"), (0.2, 0.5, "indeterminate"), (0.2, math.inf, "indeterminate"),
    (math.nan, math.nan, "indeterminate"),
])
def test_calls(low, high, expected):
    assert call(low, high, ChangeThresholds()) == expected


def test_a_follow_up_segmented_empty_is_response_never_complete_response():
    rule = VolumeCalibration("absolute", 0.5, 40, 0.95, 1.0)
    row = volume_change(20.0, 0.0, rule)
    assert row["call"] == "response" and row["ratio_high"] == pytest.approx(0.5 / 19.5)


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match="response_ratio < 1 < progression_ratio"):
        ChangeThresholds(progression_ratio=0.9)


def test_per_scan_coverage_and_back():
    assert per_scan_coverage(0.9) == pytest.approx(0.95)
    assert change_coverage(per_scan_coverage(0.8)) == 0.8


def test_change_intervals_cover_the_true_change_at_least_nominally_on_exchangeable_errors():
    """Calibration and test scans' volume errors from one distribution (relative to the volume,
    as segmentation errors are): over many draws, the true change falls inside the change
    interval at least at the nominal rate, up to sampling error."""
    rng = np.random.default_rng(0)
    coverage, n_cal, draws, hits = 0.8, 19, 2000, 0
    for _ in range(draws):
        true_cal = rng.uniform(5, 100, n_cal)
        pred_cal = true_cal * np.exp(rng.normal(0, 0.15, n_cal))
        rule = calibrate(pred_cal, true_cal, coverage=per_scan_coverage(coverage))
        before = rng.uniform(5, 100)
        after = before * rng.choice([0.3, 1.0, 2.0])
        row = volume_change(before * np.exp(rng.normal(0, 0.15)),
                            after * np.exp(rng.normal(0, 0.15)), rule)
        hits += row["change_low_ml"] <= after - before <= row["change_high_ml"]
    # at least nominal, minus three standard errors; the union bound makes it conservative
    assert hits / draws >= coverage - 3 * math.sqrt(coverage * (1 - coverage) / draws)


def test_factor_one_is_never_called_progression_when_the_intervals_hold_the_truth():
    rng = np.random.default_rng(1)
    for _ in range(500):
        before = rng.uniform(1, 100)
        error = rng.uniform(0, 0.3)
        rule = VolumeCalibration("relative", 0.3, 40, 0.95, 0.0)
        # both predictions within the rule's half-width of the same true volume
        row = volume_change(before * (1 + rng.uniform(-error, error) / (1 + error)),
                            before * (1 + rng.uniform(-error, error) / (1 + error)), rule)
        assert row["ratio_low"] <= 1.0 <= row["ratio_high"]
        assert row["call"] in ("stable", "indeterminate")


def _volumes(model, subject, pred, true=None):
    return [{"model": model, "subject": subject, "region": r, "volume_pred_ml": pred[i],
             "volume_true_ml": np.nan if true is None else true[i]}
            for i, r in enumerate(CHANGE_REGIONS)]


def test_change_table_with_truth_missing_scans_and_unlabelled_follow_ups():
    volumes = pd.DataFrame(
        _volumes("unet3d", "A0", [50, 20, 10, 10], [50, 20, 10, 10])
        + _volumes("unet3d", "A1", [100, 40, 20, 20], [100, 40, 21, 19])
        + _volumes("unet3d", "B0", [30, 10, 5, 5], [30, 10, 5, 5])
        + _volumes("unet3d", "B1", [30, 10, 5, 5]))  # unlabelled follow-up
    calibration = pd.DataFrame([{"model": "unet3d", "region": r, "nonconformity": "absolute",
                                 "quantile": 1.0, "n_cases": 30, "coverage": 0.95,
                                 "floor_ml": 1.0, "cases": "validation", "purpose": "change"}
                                for r in CHANGE_REGIONS])
    pairs = pd.DataFrame([{"patient": "A", "baseline": "A0", "follow_up": "A1", "factor": 2.0},
                          {"patient": "B", "baseline": "B0", "follow_up": "B1", "factor": 1.0},
                          {"patient": "C", "baseline": "C0", "follow_up": "C1", "factor": 1.0}])
    table = change_table(pairs, volumes, calibration)
    a = table[table["patient"] == "A"].set_index("region")
    assert list(a.index) == list(CHANGE_REGIONS)
    assert a.loc["WT", "call"] == "progression" and a.loc["WT", "coverage"] == 0.9
    assert a.loc["WT", "change_low_ml"] == 48.0 and a.loc["WT", "change_high_ml"] == 52.0
    assert a.loc["ET", "true_change_ml"] == 11.0 and bool(a.loc["ET", "change_covered"])
    assert a.loc["NCR", "true_ratio"] == 1.9 and a["factor_nominal"].eq(2.0).all()
    b = table[table["patient"] == "B"].set_index("region")
    assert b["call"].isin(["stable", "indeterminate"]).all()
    assert b["true_ratio"].isna().all()  # no labels on the follow-up: no truth, still measured
    assert (b["status"] == "measured").all()
    (c,) = table[table["patient"] == "C"].itertuples()
    assert c.status == "not measured: no segmentation of C0 and C1"


def test_pairs_whose_scans_were_all_excluded_get_not_measured_rows():
    pairs = pd.DataFrame([{"patient": "A", "baseline": "A0", "follow_up": "A1"}])
    empty = pd.DataFrame(columns=["model", "subject", "region", "volume_pred_ml"])
    (row,) = change_table(pairs, empty, pd.DataFrame(), models=["unet3d"]).itertuples()
    assert row.model == "unet3d" and row.status.startswith("not measured")
    table = change_table(pairs, empty, pd.DataFrame())
    assert table.empty and list(table.columns)[:2] == ["model", "patient"]


def test_without_a_rule_the_intervals_are_unbounded_and_say_so():
    volumes = pd.DataFrame(_volumes("m", "A0", [5, 4, 3, 1]) + _volumes("m", "A1", [9, 8, 7, 1]))
    pairs = pd.DataFrame([{"patient": "A", "baseline": "A0", "follow_up": "A1"}])
    table = change_table(pairs, volumes, pd.DataFrame(columns=["model", "region"]))
    assert (table["call"] == "indeterminate").all()
    assert table["status"].str.contains("no calibration").all()
    assert np.isinf(table["change_high_ml"]).all()


def _calibration_cases(n=12):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        for region in ("WT", "TC", "ET"):
            true = rng.uniform(5, 50)
            rows.append({"model": "m", "subject": f"s{i}", "region": region,
                         "volume_true_ml": true, "volume_pred_ml": true + rng.normal(0, 2),
                         "necrotic_core_true_ml": 3.0 + i, "necrotic_core_pred_ml": 3.0 + i
                         + (i % 3 - 1), "cases": "validation"})
    return pd.DataFrame(rows)


def test_calibration_table_has_the_necrotic_core_and_change_rules_beside_the_volume_ones():
    cases = _calibration_cases()
    volume = calibration_table(cases, coverage=0.9)
    assert list(volume["region"]) == ["WT", "TC", "ET", "NCR"]
    ncr = volume.set_index("region").loc["NCR"]
    # NCR errors: -1, 0, +1 in turn over 12 cases; the 12th smallest of 12 at 0.9: rank 12
    assert ncr["n_cases"] == 12 and ncr["nonconformity"] == "absolute" and ncr["quantile"] == 1.0
    change = calibration_table(cases, coverage=per_scan_coverage(0.9), purpose="change")
    both = pd.concat([volume, change], ignore_index=True)
    assert len(rules_for(both, "change")) == 4 and set(rules_for(both, "change")["coverage"]) == {
        0.95}
    # 12 cases cannot give 95 %: the change rules are unbounded, the volume ones are not
    assert np.isinf(rules_for(both, "change")["quantile"]).all()
    # per_case's intervals come from the volume rules only
    per_case = cases[cases["subject"] == "s0"].drop(columns="cases")
    assert np.isfinite(with_intervals(per_case, both)["volume_pred_high_ml"]).all()
    with pytest.raises(ValueError, match="purpose"):
        calibration_table(cases, purpose="other")


def test_file_volumes_from_each_files_own_header_and_rows_without_truth(tmp_path):
    from brats_unet.io import save_nifti

    labels = np.zeros((10, 10, 10), np.uint8)
    labels[:2, :5] = 1   # 100 voxels necrosis
    labels[5:, :2] = 4   # 100 enhancing
    labels[:, 8:] = 2    # 200 oedema
    save_nifti(labels, np.diag([2.0, 2.0, 3.0, 1.0]), tmp_path / "seg.nii.gz",
               pixdim=(2.0, 2.0, 3.0))
    volumes = file_volumes("S", tmp_path / "seg.nii.gz")
    assert volumes == pytest.approx({"WT": 4.8, "TC": 2.4, "ET": 1.2, "NCR": 1.2})  # 12 ul
    assert file_volumes("S", None) == {}
    rows = volume_rows("m", "S", volumes, {})
    assert [r["region"] for r in rows] == list(CHANGE_REGIONS)
    assert all(np.isnan(r["volume_true_ml"]) for r in rows)
