"""Every lesion dialect of one region of one case: the per-case columns and the per-lesion rows.

Column names say their dialect (:mod:`brats_unet.evaluation.dialects`):

* ``lesionwise2023_dice``, ``lesionwise2023_hd95_mm`` - the 2023-2024 lesion-wise scores, as
  the official scripts compute them; ``lesionwise2023_tp`` / ``_fp`` / ``_fn`` - counted truth
  lesions matched and missed, and false-positive components; ``lesionwise2023_below_threshold``
  - truth lesions left out for their size; ``lesionwise2023_full_hd95_mm`` - the scripts'
  "Legacy_HD95" (DeepMind's surfel HD95 of the whole region), which is not the 2018-2021 HD95
  in ``hd95_mm``.
* ``panoptica_dsc``, ``panoptica_hd95_mm``, ``panoptica_nsd`` - means over matched instance
  pairs (the 2025 "lesion-wise" figures); ``panoptica_rq`` - instance F1; ``panoptica_tp`` /
  ``_fp`` / ``_fn``; ``panoptica_global_dsc``, ``panoptica_global_hd95_mm``,
  ``panoptica_global_nsd`` - of the whole region, in mm; ``panoptica_official_global_hd95``
  (voxels) and ``panoptica_official_global_nsd`` - the same as the package gives them. NaN where panoptica gives NaN (a region empty
  in both masks); see :mod:`brats_unet.evaluation.instances` for the corrections.

A lesion row has ``dialect``, ``lesion`` (its number within the region and dialect),
``status`` (``matched``, ``missed``, ``false_positive``), ``counted``, ``volume_true_ml``,
``volume_pred_ml`` (the matched prediction's), ``dice`` and ``hd95_mm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from brats_unet.evaluation.dialects import (
    DIALECTS,
    check_dialects,
    lesionwise_2023_parameters,
)
from brats_unet.evaluation.instances import panoptica_scores
from brats_unet.evaluation.lesionwise import Lesion, lesionwise_2023
from brats_unet.evaluation.volumetry import voxel_volume_ml
from brats_unet.voxels import bounding_box, box_slices

LESION_COLUMNS = ["model", "subject", "region", "dialect", "lesion", "status", "counted",
                  "volume_true_ml", "volume_pred_ml", "dice", "hd95_mm"]


@dataclass(frozen=True)
class EvaluationSettings:
    """Which dialects to compute, and the 2023 challenge whose lesion parameters apply."""

    dialects: tuple[str, ...] = DIALECTS
    challenge: str = "GLI"

    def __post_init__(self):
        object.__setattr__(self, "dialects", check_dialects(self.dialects))
        lesionwise_2023_parameters(self.challenge)  # refuses an unknown challenge


#: The default: every dialect, glioma (GLI) parameters.
DEFAULT_EVALUATION = EvaluationSettings()


def _lesion_rows(dialect: str, lesions: Sequence[Lesion], voxel_ml: float) -> list[dict]:
    return [{"dialect": dialect, "lesion": lesion.lesion, "status": lesion.status,
             "counted": lesion.counted, "volume_true_ml": lesion.voxels_true * voxel_ml,
             "volume_pred_ml": lesion.voxels_pred * voxel_ml, "dice": lesion.dice,
             "hd95_mm": lesion.hd95_mm} for lesion in lesions]


def dialect_scores(truth: np.ndarray, pred: np.ndarray, spacing_mm: Sequence[float],
                   settings: EvaluationSettings = DEFAULT_EVALUATION
                   ) -> tuple[dict, list[dict]]:
    """The lesion dialects' per-case columns and per-lesion rows of one region.

    Args:
        truth: reference mask of the region, 3-D.
        pred: predicted mask, same shape.
        spacing_mm: voxel size along each array axis, in mm (the file's pixdim).
        settings: the dialects and the challenge.

    Returns:
        ``(columns, lesion_rows)`` as the module docstring names them; the legacy dialect's
        columns come from :func:`brats_unet.evaluation.metrics.region_metrics`, not from here.
    """
    voxel_ml = voxel_volume_ml(spacing_mm)
    dilation, threshold = lesionwise_2023_parameters(settings.challenge)
    columns: dict = {}
    rows: list[dict] = []
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    if truth.any() or pred.any():
        # every figure is the same in the box of both masks grown past the reach of the
        # dilations (the array's own border stays a border), and far cheaper there
        box = box_slices(*bounding_box(truth | pred, margin=dilation + 2))
        truth, pred = truth[box], pred[box]
    if "lesionwise2023" in settings.dialects:
        scores, lesions = lesionwise_2023(truth, pred, spacing_mm, dilation=dilation,
                                          volume_threshold_mm3=threshold)
        columns.update({f"lesionwise2023_{key}": value for key, value in scores.items()})
        rows += _lesion_rows("lesionwise2023", lesions, voxel_ml)
    if "panoptica" in settings.dialects:
        scores, lesions = panoptica_scores(truth, pred, spacing_mm)
        columns.update({f"panoptica_{key}": value for key, value in scores.items()})
        rows += _lesion_rows("panoptica", lesions, voxel_ml)
    return columns, rows


#: Truth-lesion size classes of the detection table, in ml (upper bounds; the last is open).
LESION_SIZE_EDGES_ML: tuple[float, ...] = (0.0, 0.1, 1.0, 10.0, np.inf)

#: The headline figure of each dialect: (label, per-case column), Dice first, then HD95.
DIALECT_HEADLINES: dict[str, tuple[tuple[str, str], ...]] = {
    "legacy": (("Dice", "dice"), ("HD95 (mm)", "hd95_mm")),
    "lesionwise2023": (("lesion-wise Dice", "lesionwise2023_dice"),
                       ("lesion-wise HD95 (mm)", "lesionwise2023_hd95_mm")),
    "panoptica": (("matched-instance DSC", "panoptica_dsc"), ("instance F1 (RQ)", "panoptica_rq"),
                  ("matched-instance HD95 (mm)", "panoptica_hd95_mm")),
}


def dialect_summary(per_case: pd.DataFrame) -> pd.DataFrame:
    """Mean of each dialect's headline figures per model and region, with the number of cases
    each mean is over (panoptica's NaN, a region empty in both masks, is left out as the
    official means leave it out)."""
    rows = []
    for (model, region), group in per_case.groupby(["model", "region"], sort=False):
        for dialect, figures in DIALECT_HEADLINES.items():
            for label, column in figures:
                if column not in group:
                    continue
                values = group[column].dropna()
                rows.append({"model": model, "region": region, "dialect": dialect,
                             "figure": label, "mean": values.mean() if len(values) else np.nan,
                             "n_cases": len(values), "n_undefined": len(group) - len(values)})
    return pd.DataFrame(rows, columns=["model", "region", "dialect", "figure", "mean",
                                       "n_cases", "n_undefined"])


def detection_by_size(lesions: pd.DataFrame,
                      edges_ml: Sequence[float] = LESION_SIZE_EDGES_ML) -> pd.DataFrame:
    """Truth lesions found per dialect, model, region and lesion size class, with the
    false-positive components beside them.

    Returns one row per (dialect, model, region, size) with ``lesions`` (truth lesions,
    counted or not), ``detected`` (matched), ``detection_rate`` and ``false_positives``
    (components of the prediction matched to no truth lesion, any size, repeated per row of
    the same dialect, model and region).
    """
    columns = ["dialect", "model", "region", "size_ml", "lesions", "detected", "detection_rate",
               "false_positives"]
    if lesions.empty:
        return pd.DataFrame(columns=columns)
    truth = lesions[lesions["status"] != "false_positive"]
    labels = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">{lo:g}"
              for lo, hi in pairwise(edges_ml)]
    size = pd.cut(truth["volume_true_ml"], list(edges_ml), labels=labels, right=False)
    keys = ["dialect", "model", "region"]
    table = (truth.assign(size_ml=size, found=truth["status"] == "matched")
             .groupby(keys + ["size_ml"], observed=True, sort=False)
             .agg(lesions=("found", "size"), detected=("found", "sum")).reset_index())
    table["detection_rate"] = table["detected"] / table["lesions"]
    fps = lesions[lesions["status"] == "false_positive"].groupby(keys).size()
    table["false_positives"] = [int(fps.get(tuple(k), 0)) for k in table[keys].values]
    return table[columns]
