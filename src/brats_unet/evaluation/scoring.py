"""Scoring predictions per case on the original grid, and the benchmark tables.

Conventions, stated once (the report repeats them):

- every metric is computed per case, per region (WT, TC, ET), on the input's
  own voxel grid, against the label file as distributed (never a resized or
  cropped copy); distances and volumes use the file's pixdim;
- the per-case Dice is the main figure; the slice-wise Dice (per axial slice,
  averaged, as slice-level studies report it) sits beside it only to show the
  difference;
- model summaries (means, medians) are over test subjects; nothing is chosen on
  the test set;
- ``dice``, ``hd95_mm``, ``sensitivity`` and ``specificity`` are the legacy (2018-2021) dialect;
  the lesion dialects' columns are named by dialect (``lesionwise2023_*``, ``panoptica_*``,
  :mod:`brats_unet.evaluation.dialect_scores`), and their lesions go to a table of their own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brats_unet.data.validation import InvalidSubject, read_label_map
from brats_unet.evaluation.comparison import paired_comparison
from brats_unet.evaluation.cross_validation import (
    ensemble_gain,
    out_of_fold_table,
    predictor_rank,
    split_test_rows,
    summary_value,
)
from brats_unet.evaluation.dialect_scores import (
    DEFAULT_EVALUATION,
    LESION_COLUMNS,
    EvaluationSettings,
    dialect_scores,
)
from brats_unet.evaluation.dialects import LESIONWISE_2023_CHALLENGES
from brats_unet.evaluation.intervals import (
    calibration_table,
    coverage_table,
    per_scan_coverage,
    with_intervals,
)
from brats_unet.evaluation.metrics import region_metrics, slicewise_dice
from brats_unet.evaluation.volumetry import (
    axis_consistency,
    components,
    necrotic_core_ml,
    region_volumes_ml,
    resection_cavity_ml,
    volume_errors,
)
from brats_unet.io import Geometry, read_json
from brats_unet.labels import region_masks, region_rank
from brats_unet.training.summary import TrainingSummary
from brats_unet.voxels import anatomical_axes, axis_codes, bounding_box, box_slices

#: Voxels kept around the labelled box: more than any lesion dialect's dilation reaches.
CROP_MARGIN = 1 + max(dilation for dilation, _ in LESIONWISE_2023_CHALLENGES.values()) + 1

#: Columns every per-case row has first (the issue's contract), then the rest.
PER_CASE_COLUMNS = ["model", "subject", "region", "dice", "hd95_mm", "sensitivity",
                    "specificity", "volume_true_ml", "volume_pred_ml"]


def evaluate_case(*, model: str, subject: str, prediction: np.ndarray, truth: np.ndarray,
                  geometry: Geometry, settings: EvaluationSettings = DEFAULT_EVALUATION
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(rows, lesions)``: one row per region of overlap, distance, volume and shape figures in
    every dialect of ``settings``, and one row per lesion of each lesion dialect.

    ``prediction`` and ``truth`` are canonical label maps on the same grid
    (the input's), ``geometry`` its affine and pixdim (mm).
    """
    if prediction.shape != truth.shape:
        raise ValueError(f"{model}/{subject}: prediction shape {prediction.shape} differs from "
                         f"the label map's {truth.shape}")
    spacing = tuple(geometry.pixdim[:3])
    axes = anatomical_axes(geometry.affine)
    if None in axes or len(set(axes)) != 3:
        raise ValueError(f"{model}/{subject}: the affine does not say which voxel axis is "
                         f"sagittal, coronal and axial (axis codes "
                         f"{axis_codes(geometry.affine)})")
    axial = axes.index("axial")
    # Every figure is the same in the box of both maps' labelled voxels (grown past the
    # lesion dialects' dilations), which is a small part of a head: score that box only.
    outside = 0
    if (labelled := (prediction != 0) | (truth != 0)).any():
        box = box_slices(*bounding_box(labelled, margin=CROP_MARGIN))
        prediction, truth = prediction[box], truth[box]
        outside = labelled.size - prediction.size
    pred_masks, true_masks = region_masks(prediction), region_masks(truth)
    vol_true, vol_pred = region_volumes_ml(truth, spacing), region_volumes_ml(prediction, spacing)
    cavity_ml = resection_cavity_ml(truth, spacing)
    necrotic_true, necrotic_pred = necrotic_core_ml(truth, spacing), necrotic_core_ml(prediction,
                                                                                     spacing)
    rows, lesions = [], []
    for index, scores in enumerate(region_metrics(prediction, truth, spacing, outside=outside)):
        region = scores["region"]
        pred, true = pred_masks[..., index], true_masks[..., index]
        n_true, share_true = components(true)
        n_pred, share_pred = components(pred)
        row = {
            "model": model, "subject": subject, **scores,
            "dice_slicewise": slicewise_dice(pred, true, axis=axial),
            "volume_true_ml": vol_true[region], "volume_pred_ml": vol_pred[region],
            **{f"volume_{k}": v for k, v in volume_errors(vol_true[region], vol_pred[region]).items()},
            # the case's reference cavity (BraTS 2024 post-treatment), in no region: 0 elsewhere
            "resection_cavity_true_ml": cavity_ml,
            # the case's necrotic core (label 1), for its volume intervals: no row of its own
            "necrotic_core_true_ml": necrotic_true, "necrotic_core_pred_ml": necrotic_pred,
            "components_true": n_true, "components_pred": n_pred,
            "largest_component_share_true": share_true,
            "largest_component_share_pred": share_pred,
        }
        consistency = axis_consistency(pred, spacing, names=axes)
        for plane, figures in consistency.items():
            for key, value in figures.items():
                row[f"pred_{plane}_{key}"] = value
        columns, lesion_rows = dialect_scores(true, pred, spacing, settings)
        rows.append({**row, **columns})
        lesions += [{"model": model, "subject": subject, "region": region, **r}
                    for r in lesion_rows]
    return rows, lesions


def evaluate_model(model: str, subjects: Sequence[str], predictions: Sequence[str | os.PathLike],
                   labels: Sequence[str | os.PathLike], timings: Sequence[str | os.PathLike], *,
                   label_convention: str = "brats2020",
                   settings: EvaluationSettings = DEFAULT_EVALUATION
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per_case, lesions)`` of one model over its test subjects, read from files.

    The prediction must sit on the label file's grid (same shape and affine).
    """
    rows, lesions = [], []
    for subject, pred_path, label_path, timing_path in zip(subjects, predictions, labels, timings):
        truth, geometry = read_label_map(subject, label_path, label_convention=label_convention)
        prediction, pred_geometry = read_label_map(subject, pred_path,
                                                   label_convention=label_convention)
        if not np.allclose(pred_geometry.affine, geometry.affine, atol=1e-4):
            raise InvalidSubject(subject, pred_path, "prediction is not on the label map's grid "
                                 "(affines differ)")
        case_rows, case_lesions = evaluate_case(model=model, subject=subject,
                                                prediction=prediction, truth=truth,
                                                geometry=geometry, settings=settings)
        seconds = read_json(timing_path)["predict_seconds"]
        for row in case_rows:
            row["predict_seconds"] = seconds
        rows += case_rows
        lesions += case_lesions
    table = pd.DataFrame(rows)
    return (table[PER_CASE_COLUMNS + [c for c in table.columns if c not in PER_CASE_COLUMNS]],
            pd.DataFrame(lesions, columns=LESION_COLUMNS))


def benchmark_table(per_case: pd.DataFrame,
                    summaries: dict[str, TrainingSummary]) -> pd.DataFrame:
    """One row per predictor and region: Dice and HD95 (mean, sd, median), mean absolute volume
    error (ml), inference seconds per case, trainable parameters, training time.

    ``per_case`` may carry a ``predictor`` column (a k-fold run's folds and ensemble beside
    the model's name); without it each model is its own predictor. ``summaries`` are keyed
    by trained model (``unet3d``, ``unet3d.fold0``, ...)."""
    if "predictor" not in per_case:
        per_case = per_case.assign(predictor=per_case["model"])
    grouped = per_case.groupby(["model", "predictor", "region"], sort=False)
    table = grouped.agg(
        n_subjects=("subject", "nunique"),
        dice_mean=("dice", "mean"), dice_sd=("dice", "std"), dice_median=("dice", "median"),
        dice_slicewise_mean=("dice_slicewise", "mean"),
        hd95_mm_mean=("hd95_mm", "mean"), hd95_mm_sd=("hd95_mm", "std"),
        hd95_mm_median=("hd95_mm", "median"),
        volume_abs_error_ml_mean=("volume_abs_error_ml", "mean"),
        predict_seconds_per_case=("predict_seconds", "mean"),
    ).reset_index()
    for key, column in (("trainable_parameters", "trainable_parameters"),
                        ("training_seconds_total", "training_seconds"),
                        ("backend", "backend"), ("precision", "precision"),
                        ("best_epoch", "best_epoch"), ("best_val_dice_mean", "best_val_dice_mean")):
        table[column] = table["predictor"].map(lambda p, k=key: summary_value(summaries, p, k))
    table["_rank"] = table["predictor"].map(predictor_rank)
    table["_region"] = table["region"].map(region_rank)
    return (table.sort_values(["model", "_rank", "_region"]).drop(columns=["_rank", "_region"])
            .reset_index(drop=True))


def metrics_json(benchmark: pd.DataFrame) -> dict[str, Any]:
    """The headline figures, nested model -> region -> figure, for ``dvc metrics``."""
    out: dict[str, Any] = {}
    headline = benchmark if "predictor" not in benchmark else benchmark[
        benchmark["predictor"].map(predictor_rank) == 0]
    for row in headline.itertuples():
        out.setdefault(row.model, {})[row.region] = {
            "dice_mean": row.dice_mean, "dice_median": row.dice_median,
            "hd95_mm_mean": row.hd95_mm_mean,
            "volume_abs_error_ml_mean": row.volume_abs_error_ml_mean,
        }
    return out


@dataclass(frozen=True)
class IntervalSettings:
    """The volume intervals' nominal coverage and the relative score's floor (ml); the
    longitudinal change's coverage, whose per-scan rules are calibrated too (None: none)."""

    coverage: float = 0.9
    relative_floor_ml: float = 1.0
    change_coverage: float | None = None


def build_tables(per_case_tables: Sequence[pd.DataFrame], summaries: dict[str, TrainingSummary],
                 calibration_tables: Sequence[pd.DataFrame] = (), *,
                 intervals: IntervalSettings = IntervalSettings(),
                 bootstrap_samples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Every table of a run from each model's test rows (by each of its predictors) and its
    calibration rows (out of fold, or validation): ``per_case`` (the headline predictors, with
    volume intervals), ``fold_test`` (the folds' own test rows), ``benchmark`` (every
    predictor), ``comparison`` (paired, headline test rows), ``out_of_fold`` (the calibration
    rows), ``cross_validation`` (their statistics, all and per fold),
    ``cross_validation_comparison`` (paired, out of fold), ``ensemble_gain``,
    ``volume_calibration``, ``volume_coverage`` (the test set's, per predictor), ``metrics``
    (the headline figures)."""
    headline, folds = split_test_rows(pd.concat(per_case_tables, ignore_index=True))
    calibration_cases = (pd.concat(calibration_tables, ignore_index=True)
                         if calibration_tables else pd.DataFrame(columns=PER_CASE_COLUMNS))
    calibration = calibration_table(calibration_cases, coverage=intervals.coverage,
                                    floor_ml=intervals.relative_floor_ml)
    if intervals.change_coverage is not None:
        calibration = pd.concat([calibration, calibration_table(
            calibration_cases, coverage=per_scan_coverage(intervals.change_coverage),
            floor_ml=intervals.relative_floor_ml, purpose="change")], ignore_index=True)
    headline, folds = (with_intervals(t, calibration) for t in (headline, folds))
    every_predictor = pd.concat([headline, folds], ignore_index=True)
    benchmark = benchmark_table(every_predictor, summaries)
    coverage = coverage_table(every_predictor, by="predictor")
    paired = {"n_boot": bootstrap_samples, "seed": seed}
    return {
        "per_case": headline, "fold_test": folds, "benchmark": benchmark,
        "comparison": paired_comparison(headline, metric="dice", **paired),
        "out_of_fold": calibration_cases,
        "cross_validation": out_of_fold_table(calibration_cases),
        "cross_validation_comparison": paired_comparison(calibration_cases, metric="dice",
                                                         **paired),
        "ensemble_gain": ensemble_gain(benchmark),
        "volume_calibration": calibration, "volume_coverage": coverage,
        "metrics": metrics_json(benchmark),
    }
