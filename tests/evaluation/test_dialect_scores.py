import numpy as np
import pandas as pd
import pytest

from brats_unet.evaluation.dialect_scores import (
    EvaluationSettings,
    detection_by_size,
    dialect_scores,
    dialect_summary,
)
from brats_unet.reporting.dialect_section import dialect_section


def _cube(mask, corner, size):
    mask[tuple(slice(c, c + s) for c, s in zip(corner, size))] = True
    return mask


def test_scores_in_a_cropped_box_equal_those_of_the_whole_volume():
    truth = _cube(np.zeros((60, 50, 40), bool), (5, 5, 5), (6, 6, 6))
    _cube(truth, (40, 30, 20), (5, 5, 5))
    pred = _cube(np.zeros_like(truth), (6, 5, 5), (6, 6, 6))
    _cube(pred, (50, 40, 30), (3, 3, 3))
    spacing = (0.9, 1.1, 2.0)
    columns, rows = dialect_scores(truth, pred, spacing)
    padded = [np.pad(m, 20) for m in (truth, pred)]
    again, rows_again = dialect_scores(*padded, spacing)
    assert columns == pytest.approx(again, nan_ok=True) and rows == rows_again
    assert (columns["panoptica_tp"], columns["panoptica_fp"], columns["panoptica_fn"]) == (1, 1, 1)
    assert columns["panoptica_rq"] == pytest.approx(1 / (1 + 0.5 + 0.5))
    matched = [r for r in rows if r["dialect"] == "panoptica" and r["status"] == "matched"]
    assert matched[0]["volume_true_ml"] == pytest.approx(216 * 0.9 * 1.1 * 2.0 / 1000)


def test_summary_leaves_undefined_cases_out_and_counts_them():
    per_case = pd.DataFrame({
        "model": ["m"] * 3, "subject": ["a", "b", "c"], "region": ["ET"] * 3,
        "dice": [1.0, 0.5, 0.0], "hd95_mm": [0.0, 2.0, 373.0],
        "lesionwise2023_dice": [1.0, 0.5, 0.0], "lesionwise2023_hd95_mm": [0.0, 1.0, 374.0],
        "panoptica_dsc": [np.nan, 0.5, 0.0], "panoptica_rq": [np.nan, 1.0, 0.0],
        "panoptica_hd95_mm": [np.nan, 2.0, 373.0]})
    summary = dialect_summary(per_case).set_index(["dialect", "figure"])
    assert summary.loc[("legacy", "Dice"), "mean"] == pytest.approx(0.5)
    assert summary.loc[("panoptica", "matched-instance DSC"), "mean"] == pytest.approx(0.25)
    assert summary.loc[("panoptica", "matched-instance DSC"), "n_undefined"] == 1
    assert summary.loc[("lesionwise2023", "lesion-wise HD95 (mm)"), "n_cases"] == 3


def test_detection_by_size_bins_truth_lesions_and_counts_false_positives():
    lesions = pd.DataFrame({
        "model": "m", "subject": "s", "region": "ET", "dialect": "panoptica",
        "lesion": [1, 2, 3, 4, 1], "counted": True,
        "status": ["matched", "missed", "matched", "matched", "false_positive"],
        "volume_true_ml": [0.05, 0.08, 0.5, 12.0, 0.0], "volume_pred_ml": 0.1,
        "dice": 0.5, "hd95_mm": 1.0})
    table = detection_by_size(lesions).set_index("size_ml")
    assert table.loc["0-0.1", "lesions"] == 2 and table.loc["0-0.1", "detected"] == 1
    assert table.loc["0-0.1", "detection_rate"] == 0.5
    assert table.loc[">10", "detection_rate"] == 1.0 and "1-10" not in table.index
    assert (table["false_positives"] == 1).all()
    assert detection_by_size(lesions.iloc[:0]).empty


def test_the_report_section_names_the_dialect_of_every_figure():
    truth = _cube(np.zeros((30, 30, 30), bool), (5, 5, 5), (6, 6, 6))
    pred = _cube(np.zeros_like(truth), (5, 5, 6), (6, 6, 6))
    columns, rows = dialect_scores(truth, pred, (1.0, 1.0, 1.0))
    per_case = pd.DataFrame([{"model": "m", "subject": "s", "region": "WT", "dice": 0.8,
                              "hd95_mm": 1.0, **columns}])
    lesions = pd.DataFrame([{"model": "m", "subject": "s", "region": "WT", **r} for r in rows])
    html = "".join(dialect_section(per_case, lesions, challenge="MEN"))
    for text in ("legacy", "lesionwise2023", "panoptica", "instance F1 (RQ)",
                 "Challenge MEN: 1 dilations", "Lesion detection by truth-lesion size"):
        assert text in html


def test_settings_refuse_an_unknown_challenge():
    with pytest.raises(ValueError, match="unknown BraTS challenge"):
        EvaluationSettings(challenge="XYZ")
