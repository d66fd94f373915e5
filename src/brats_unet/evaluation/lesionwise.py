"""Lesion-wise Dice and HD95 of the 2023-2024 BraTS challenges, for one region of one case.

The definition is that of the 2023 scripts (see :mod:`brats_unet.evaluation.dialects`); the
computation is not: they dilate and compare every lesion over the whole volume, this works in
each lesion's bounding box grown by the dilation, which gives the same voxels (a dilation of
``d`` iterations reaches ``d`` voxels along each axis) in a fraction of the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from brats_unet.evaluation.dialects import LESIONWISE_HD95_PENALTY_MM
from brats_unet.evaluation.surfaces import surfel_hd95_mm
from brats_unet.voxels import bounding_box, box_slices, union_box

#: 26-connected components (the scripts' ``cc3d`` connectivity) and the 18-neighbourhood
#: dilation (``generate_binary_structure(3, 2)``).
CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)
DILATION_18 = ndimage.generate_binary_structure(3, 2)


@dataclass(frozen=True)
class Lesion:
    """One truth lesion or one false-positive component, as a lesion-wise dialect scores it.

    ``status`` is ``matched``, ``missed`` or ``false_positive``; ``counted`` says whether it
    enters the case's score (a truth lesion at or below the volume threshold does not);
    ``voxels_true`` / ``voxels_pred`` are the lesion's and its matched prediction's sizes.
    """

    lesion: int
    status: str
    counted: bool
    voxels_true: int
    voxels_pred: int
    dice: float
    hd95_mm: float


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of a 3-D mask: ``(label array, count)``, labels from 1."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=CONNECTIVITY_26)
    return labels, int(count)


def merged_lesions(truth: np.ndarray, dilation: int) -> tuple[np.ndarray, int]:
    """Truth components within ``dilation`` dilations of each other merged into lesions.

    Each truth voxel takes the number of the 26-connected component of the dilated truth it
    lies in, as ``get_GTseg_combinedByDilation`` of the 2023 scripts does.
    """
    truth = np.asarray(truth, dtype=bool)
    lesions = np.zeros(truth.shape, dtype=np.int32)
    if not truth.any():
        return lesions, 0
    box = box_slices(*bounding_box(truth, margin=dilation + 1))
    grown = ndimage.binary_dilation(truth[box], structure=DILATION_18, iterations=dilation)
    merged, count = components(grown)
    lesions[box] = np.where(truth[box], merged, 0)
    return lesions, count


def _grown_box(box: tuple[slice, ...], margin: int, shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n))
                 for s, n in zip(box, shape))


def _score_lesion(lesion_id, lesions, lesion_box, pred, pred_labels, pred_boxes, pred_sizes,
                  spacing, dilation):
    """(matched predicted components, lesion voxels, matched voxels, Dice, HD95) of one
    merged truth lesion."""
    near = _grown_box(lesion_box, dilation + 1, lesions.shape)
    own = lesions[near] == lesion_id
    reach = ndimage.binary_dilation(own, structure=DILATION_18, iterations=dilation)
    matched = np.unique(pred_labels[near][reach])
    matched = matched[matched != 0]
    voxels_true = int(np.count_nonzero(own))
    if matched.size == 0:
        return matched, voxels_true, 0, 0.0, LESIONWISE_HD95_PENALTY_MM
    voxels_pred = int(pred_sizes[matched].sum())
    # every predicted voxel inside the lesion belongs to a matched component
    overlap = int(np.count_nonzero(pred[near] & own))
    dice = 2.0 * overlap / (voxels_true + voxels_pred)
    box = union_box([lesion_box] + [pred_boxes[m - 1] for m in matched])
    hd95 = surfel_hd95_mm(lesions[box] == lesion_id, np.isin(pred_labels[box], matched), spacing)
    return matched, voxels_true, voxels_pred, dice, hd95


def lesionwise_2023(truth: np.ndarray, pred: np.ndarray, spacing_mm: Sequence[float], *,
                    dilation: int, volume_threshold_mm3: float) -> tuple[dict, list[Lesion]]:
    """The 2023 lesion-wise scores of one region, and its lesions.

    Args:
        truth: reference mask of the region, 3-D.
        pred: predicted mask, same shape.
        spacing_mm: voxel size along each array axis, in mm.
        dilation: dilation iterations that merge lesions and reach matches (3 for GLI).
        volume_threshold_mm3: truth lesions of at most this volume (mm³) are not counted.

    Returns:
        ``(scores, lesions)``: ``scores`` has ``dice``, ``hd95_mm`` (mm), the lesion counts
        ``tp``, ``fp``, ``fn`` (counted lesions only), ``below_threshold`` and ``full_hd95_mm``
        (the scripts' "Legacy_HD95": DeepMind's HD95 of the whole region, 374 where one mask
        is empty, 0 where both are); ``lesions`` has one :class:`Lesion` per merged truth
        lesion and per false-positive component.
    """
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    spacing = tuple(float(s) for s in spacing_mm)
    voxel_mm3 = float(np.prod(spacing))
    lesions, _ = merged_lesions(truth, dilation)
    pred_labels, n_pred = components(pred)
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
    pred_boxes = ndimage.find_objects(pred_labels)
    rows, touched = [], set()
    for lesion_id, lesion_box in enumerate(ndimage.find_objects(lesions), start=1):
        matched, n_true, n_pred_voxels, dice, hd95 = _score_lesion(
            lesion_id, lesions, lesion_box, pred, pred_labels, pred_boxes, pred_sizes, spacing,
            dilation)
        touched.update(matched.tolist())
        rows.append(Lesion(lesion_id, "matched" if matched.size else "missed",
                           n_true * voxel_mm3 > volume_threshold_mm3, n_true, n_pred_voxels,
                           dice, hd95))
    false_positives = [c for c in range(1, n_pred + 1) if c not in touched]
    rows += [Lesion(c, "false_positive", True, 0, int(pred_sizes[c]), 0.0,
                    LESIONWISE_HD95_PENALTY_MM) for c in false_positives]
    return _case_scores(rows, truth, pred, spacing), rows


def _case_scores(rows: list[Lesion], truth, pred, spacing) -> dict:
    counted = [r for r in rows if r.counted]
    scores = {
        "tp": sum(r.status == "matched" for r in counted),
        "fp": sum(r.status == "false_positive" for r in counted),
        "fn": sum(r.status == "missed" for r in counted),
        "below_threshold": sum(not r.counted for r in rows),
    }
    if counted:
        scores["dice"] = float(sum(r.dice for r in counted) / len(counted))
        scores["hd95_mm"] = float(sum(r.hd95_mm for r in counted) / len(counted))
    else:  # no lesion above the threshold and no false positive
        scores["dice"], scores["hd95_mm"] = 1.0, 0.0
    if not truth.any() and not pred.any():
        scores["full_hd95_mm"] = 0.0
    else:
        full = surfel_hd95_mm(truth, pred, spacing)
        scores["full_hd95_mm"] = LESIONWISE_HD95_PENALTY_MM if np.isinf(full) else full
    return scores
