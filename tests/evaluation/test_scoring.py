import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brats_unet.evaluation.dialect_scores import LESION_COLUMNS, EvaluationSettings
from brats_unet.evaluation.intervals import calibrate
from brats_unet.evaluation.scoring import (
    PER_CASE_COLUMNS,
    benchmark_table,
    build_tables,
    evaluate_case,
    evaluate_model,
)
from brats_unet.io import Geometry, save_nifti
from brats_unet.labels import RESECTION_CAVITY

from builders import AFFINE, training_summary

GEOMETRY = Geometry((12, 10, 8), AFFINE, (1.2, 0.9, 3.0))


def _labels():
    truth = np.zeros(GEOMETRY.shape, np.uint8)
    truth[2:6, 2:6, 2:6] = 2
    truth[3:5, 3:5, 3:5] = 4
    prediction = np.zeros_like(truth)
    prediction[2:6, 2:6, 3:6] = 2  # WT: 48 of the 64 true voxels, nothing else
    prediction[3:5, 3:5, 3:5] = 4
    return prediction, truth


def test_case_rows_have_known_values():
    prediction, truth = _labels()
    case_rows, lesions = evaluate_case(model="m", subject="s", prediction=prediction,
                                       truth=truth, geometry=GEOMETRY)
    rows = {r["region"]: r for r in case_rows}
    voxel_ml = 1.2 * 0.9 * 3.0 / 1000
    wt = rows["WT"]
    assert wt["dice"] == pytest.approx(2 * 48 / (64 + 48))
    assert wt["volume_true_ml"] == pytest.approx(64 * voxel_ml)
    assert wt["volume_pred_ml"] == pytest.approx(48 * voxel_ml)
    assert wt["volume_abs_error_ml"] == pytest.approx(16 * voxel_ml)
    assert wt["hd95_mm"] == pytest.approx(3.0)  # one missing slice along the 3 mm axis
    assert wt["sensitivity"] == pytest.approx(0.75) and wt["specificity"] == 1.0
    assert rows["ET"]["dice"] == 1.0 and rows["ET"]["hd95_mm"] == 0.0
    # per axial slice: 3 perfect slices and one missed -> 0.75, against 0.857 per case
    assert wt["dice_slicewise"] == pytest.approx(0.75)
    assert wt["components_pred"] == 1 and wt["largest_component_share_pred"] == 1.0
    assert wt["pred_axial_slices"] == 3
    # one lesion per region, found, in both lesion dialects; its rows carry the case's keys
    assert wt["lesionwise2023_tp"] == wt["panoptica_tp"] == 1
    assert wt["lesionwise2023_dice"] == pytest.approx(wt["dice"])      # one lesion: the same
    assert wt["panoptica_dsc"] == pytest.approx(wt["dice"])
    assert wt["panoptica_hd95_mm"] == pytest.approx(wt["hd95_mm"])      # MedPy's HD95 both
    wt_lesions = [r for r in lesions if r["region"] == "WT"]
    assert {r["dialect"] for r in wt_lesions} == {"lesionwise2023", "panoptica"}
    assert all(r["volume_true_ml"] == pytest.approx(64 * voxel_ml) for r in wt_lesions)
    assert all(r["volume_pred_ml"] == pytest.approx(48 * voxel_ml) for r in wt_lesions)


def test_only_the_dialects_asked_for_are_computed():
    prediction, truth = _labels()
    rows, lesions = evaluate_case(model="m", subject="s", prediction=prediction, truth=truth,
                                  geometry=GEOMETRY,
                                  settings=EvaluationSettings(("legacy", "panoptica")))
    assert not any(k.startswith("lesionwise2023") for k in rows[0])
    assert {r["dialect"] for r in lesions} == {"panoptica"}
    with pytest.raises(ValueError, match="keep it in evaluation.dialects"):
        EvaluationSettings(("panoptica",))
    with pytest.raises(ValueError, match="unknown evaluation dialects"):
        EvaluationSettings(("legacy", "brats2019"))


def test_evaluate_model_reads_files_and_rejects_another_grid(tmp_path: Path):
    prediction, truth = _labels()
    save_nifti(truth, AFFINE, tmp_path / "truth.nii.gz")
    save_nifti(prediction, AFFINE, tmp_path / "pred.nii.gz")
    (tmp_path / "t.json").write_text(json.dumps({"predict_seconds": 1.5}))
    table, lesions = evaluate_model("m", ["s"], [tmp_path / "pred.nii.gz"],
                                    [tmp_path / "truth.nii.gz"], [tmp_path / "t.json"])
    assert list(table.columns[: len(PER_CASE_COLUMNS)]) == PER_CASE_COLUMNS
    assert list(lesions.columns) == LESION_COLUMNS and set(lesions["model"]) == {"m"}
    assert list(table["region"]) == ["WT", "TC", "ET"] and (table["predict_seconds"] == 1.5).all()
    shifted = AFFINE.copy()
    shifted[0, 3] += 5
    save_nifti(prediction, shifted, tmp_path / "pred.nii.gz")
    with pytest.raises(Exception, match="grid"):
        evaluate_model("m", ["s"], [tmp_path / "pred.nii.gz"], [tmp_path / "truth.nii.gz"],
                       [tmp_path / "t.json"])


def test_benchmark_and_comparison_tables():
    rows = []
    for model, dice in (("a", 0.9), ("b", 0.7)):
        for i in range(4):
            for region in ("WT", "TC", "ET"):
                rows.append({"model": model, "subject": f"s{i}", "region": region,
                             "dice": dice + 0.01 * i, "dice_slicewise": dice, "hd95_mm": 2.0 * i,
                             "volume_abs_error_ml": 1.0, "predict_seconds": 3.0})
    summaries = {m: training_summary(m, trainable_parameters=10, training_seconds_total=60.0,
                                     best_epoch=3) for m in ("a", "b")}
    tables = build_tables(
        [pd.DataFrame([r for r in rows if r["model"] == m]) for m in ("a", "b")], summaries,
        bootstrap_samples=200)
    per_case, bench, comparison, metrics = (tables[k] for k in ("per_case", "benchmark",
                                                                 "comparison", "metrics"))
    assert len(per_case) == 24 and tables["fold_test"].empty and tables["ensemble_gain"].empty
    assert per_case["volume_pred_low_ml"].isna().all()  # no calibration cases: no interval
    a_wt = bench[(bench["model"] == "a") & (bench["region"] == "WT")].iloc[0]
    assert a_wt["dice_mean"] == pytest.approx(0.915) and a_wt["dice_median"] == pytest.approx(0.915)
    assert a_wt["hd95_mm_mean"] == pytest.approx(3.0) and a_wt["n_subjects"] == 4
    assert a_wt["trainable_parameters"] == 10 and a_wt["predict_seconds_per_case"] == 3.0
    assert list(bench[bench["model"] == "a"]["region"]) == ["WT", "TC", "ET"]
    assert set(comparison["region"]) == {"WT", "TC", "ET"}
    assert comparison["mean_difference"].tolist() == pytest.approx([0.2] * 3)
    assert metrics["b"]["ET"]["dice_mean"] == pytest.approx(0.715)
    assert benchmark_table(per_case, summaries).equals(bench)


def test_k_fold_tables_head_with_the_ensemble_and_calibrate_on_the_out_of_fold_cases():
    def row(predictor, subject, region, dice, true, pred, **extra):
        return {"model": predictor, "subject": subject, "region": region, "dice": dice,
                "dice_slicewise": dice, "hd95_mm": 1.0, "volume_true_ml": true,
                "volume_pred_ml": pred, "volume_abs_error_ml": abs(true - pred),
                "predict_seconds": 1.0, **extra}

    test = [row(p, f"t{i}", "WT", dice, 20.0, 20.0 + i)
            for p, dice in (("a.fold0", 0.6), ("a.fold1", 0.8), ("a.ensemble", 0.75))
            for i in range(3)]
    oof = [row("a", f"v{i}", "WT", 0.5 + 0.01 * i, 10.0, 10.0 + i, fold=i % 2,
               cases="out-of-fold") for i in range(9)]  # errors 0..8 ml
    summaries = {f"a.fold{f}": training_summary("a", trainable_parameters=10,
                                                training_seconds_total=60.0) for f in (0, 1)}
    tables = build_tables([pd.DataFrame(test)], summaries, [pd.DataFrame(oof)],
                          bootstrap_samples=200)
    per_case = tables["per_case"]
    assert set(per_case["model"]) == {"a"} and set(per_case["predictor"]) == {"a.ensemble"}
    assert sorted(tables["fold_test"]["fold"].unique()) == [0, 1]
    bench = tables["benchmark"]
    assert list(bench["predictor"]) == ["a.ensemble", "a.fold0", "a.fold1"]
    ensemble = bench.iloc[0]
    assert ensemble["trainable_parameters"] == 20 and ensemble["training_seconds"] == 120.0
    gain = tables["ensemble_gain"].iloc[0]
    assert gain["dice_gain"] == pytest.approx(0.75 - 0.7) and gain["n_folds"] == 2
    rule = tables["volume_calibration"].iloc[0]
    expected = calibrate([r["volume_pred_ml"] for r in oof], [r["volume_true_ml"] for r in oof])
    assert (rule["nonconformity"], rule["quantile"], rule["n_cases"]) == (
        expected.kind, expected.quantile, 9)
    low, high = expected.interval([20.0, 21.0, 22.0])
    np.testing.assert_allclose(per_case["volume_pred_low_ml"], low)
    np.testing.assert_allclose(per_case["volume_pred_high_ml"], high)
    coverage = tables["volume_coverage"].set_index("predictor")
    assert coverage.loc["a.ensemble", "coverage_empirical"] == 1.0
    cv = tables["cross_validation"]
    assert list(cv["fold"]) == ["all", "0", "1"] and list(cv["n_cases"]) == [9, 5, 4]
    assert metrics_of(tables) == {"a"}


def metrics_of(tables):
    return set(tables["metrics"])


def test_a_case_whose_affine_names_no_axial_axis_is_refused_by_name():
    prediction, truth = _labels()
    degenerate = Geometry(GEOMETRY.shape, np.array([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 3, 0],
                                                    [0, 0, 0, 1]]), GEOMETRY.pixdim)
    with pytest.raises(ValueError, match="m/s: the affine does not say which voxel axis"):
        evaluate_case(model="m", subject="s", prediction=prediction, truth=truth,
                      geometry=degenerate)


def test_the_reference_resection_cavity_is_reported_in_ml_and_scored_in_no_region():
    prediction, truth = _labels()
    truth[8:10, 6:8, 5:7] = RESECTION_CAVITY  # 8 voxels outside the tumour
    rows, _ = evaluate_case(model="m", subject="s", prediction=prediction, truth=truth,
                            geometry=GEOMETRY)
    voxel_ml = 1.2 * 0.9 * 3.0 / 1000
    assert [r["resection_cavity_true_ml"] for r in rows] == pytest.approx([8 * voxel_ml] * 3)
    assert {r["region"]: r["volume_true_ml"] for r in rows}["WT"] == pytest.approx(64 * voxel_ml)
