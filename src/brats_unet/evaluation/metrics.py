"""Per-case segmentation metrics on the original voxel grid, BraTS conventions.

Masks are boolean numpy arrays of equal shape; ``spacing_mm`` is the voxel size
along each array axis in millimetres (the NIfTI ``pixdim[1:4]``, in array axis
order). Every function is pure and vectorised (numpy + scipy.ndimage).

Conventions: those of the BraTS 2018-2021 evaluation and MedPy (the ``legacy`` dialect of
:mod:`brats_unet.evaluation.dialects`), not those of today's official package: since 2023 the
challenges rank by lesion-wise scores (:mod:`~brats_unet.evaluation.lesionwise`, with
DeepMind's surfel HD95) and since 2025 by panoptica's instance scores
(:mod:`~brats_unet.evaluation.instances`), computed beside these.

* Dice: both masks empty -> 1.0; exactly one empty -> 0.0.
* HD95: surface voxels are mask voxels with a face (6-connected) neighbour
  outside the mask or on the array border; HD95 is the 95th percentile (numpy
  linear interpolation) of the concatenation of both directed surface-distance
  sets (MedPy ``hd95``); both empty -> 0.0; exactly one empty -> 373.128664 mm.
* Sensitivity: empty truth -> 1.0 if the prediction is empty, else 0.0.
* Specificity: over all voxels or those in ``within``; no negatives -> 1.0.
* Slice-wise Dice: mean of per-slice Dice over slices non-empty in truth or
  prediction (optionally counting slices empty in both as 1.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from brats_unet.labels import REGION_LABELS, REGIONS
from brats_unet.voxels import bounding_box, box_slices

#: HD95 when exactly one of the masks is empty, in mm: the BraTS value, the
#: diagonal of a 240 x 240 x 155 volume of 1 mm voxels,
#: sqrt(240**2 + 240**2 + 155**2) = 373.128664 mm.
HD95_ONE_EMPTY_MM = 373.128664


def _as_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    return pred, truth


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient ``2|A ∩ B| / (|A| + |B|)`` of two boolean masks.

    Args:
        pred: predicted mask, any shape.
        truth: reference mask, same shape.

    Returns:
        Dice in [0, 1] (unitless); 1.0 when both masks are empty, 0.0 when
        exactly one is.
    """
    pred, truth = _as_pair(pred, truth)
    total = np.count_nonzero(pred) + np.count_nonzero(truth)
    if total == 0:
        return 1.0
    return 2.0 * np.count_nonzero(pred & truth) / total


def _surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels with a face neighbour outside the mask; border_value=0 makes the array border count as outside."""
    face = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=face, border_value=0)


def nearest_distances(points: np.ndarray, targets: np.ndarray, spacing_mm: Sequence[float]
                      ) -> np.ndarray:
    """Euclidean distance in mm from each point to the nearest target (rows of voxel indices);
    ``inf`` for every point when there is no target.

    A k-d tree over the surface points instead of a distance transform over the whole box:
    exact distances at a cost that grows with the surfaces, not the volume. The distance is
    recomputed from the integer offsets, as the distance transform does, so that a distance
    of exactly one voxel size stays exact (tolerances compare against it).
    """
    if len(targets) == 0:
        return np.full(len(points), np.inf)
    if len(points) == 0:
        return np.empty(0)
    scale = np.asarray([float(s) for s in spacing_mm])
    nearest = cKDTree(targets * scale).query(points * scale, k=1)[1]
    offsets = (points - targets[nearest]) * scale
    return np.sqrt(np.sum(offsets * offsets, axis=1))


def surface_distances_mm(
    pred: np.ndarray, truth: np.ndarray, spacing_mm: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances between two non-empty masks.

    Args:
        pred: predicted mask, non-empty.
        truth: reference mask, non-empty, same shape.
        spacing_mm: voxel size along each array axis, in mm.

    Returns:
        ``(pred_to_truth, truth_to_pred)``: for each surface voxel of one mask
        (in C order), the Euclidean distance in mm to the nearest surface voxel
        of the other.
    """
    pred, truth = _as_pair(pred, truth)
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing_mm has {len(spacing)} values for a {pred.ndim}-D mask")
    if not pred.any() or not truth.any():
        raise ValueError("surface distances need two non-empty masks")
    # Both surfaces lie inside the union's box; the 1-voxel margin keeps a mask
    # voxel off the cropped border unless it was on the original border, so the
    # surfaces and hence the distances are exactly those of the full grid.
    box = box_slices(*bounding_box(pred | truth, margin=1))
    pred_points = np.argwhere(_surface(pred[box]))
    truth_points = np.argwhere(_surface(truth[box]))
    # a k-d tree over the surface points (nearest_distances): the distance transform's exact
    # distances, at a cost that grows with the surfaces, not the box
    return (nearest_distances(pred_points, truth_points, spacing),
            nearest_distances(truth_points, pred_points, spacing))


def hd95_mm(pred: np.ndarray, truth: np.ndarray, spacing_mm: Sequence[float]) -> float:
    """95th percentile symmetric Hausdorff distance, in mm (BraTS / MedPy ``hd95``).

    The 95th percentile (numpy's linear interpolation) of the concatenation of
    both directed surface-distance sets (pred -> truth and truth -> pred), not
    the maximum of the two directed percentiles. Surface voxels are mask voxels
    with at least one face (6-connected) neighbour outside the mask or on the
    array border.

    Args:
        pred: predicted mask, any dimension.
        truth: reference mask, same shape.
        spacing_mm: voxel size along each array axis, in mm.

    Returns:
        HD95 in mm; 0.0 when both masks are empty, ``HD95_ONE_EMPTY_MM``
        (373.128664 mm) when exactly one is.
    """
    pred, truth = _as_pair(pred, truth)
    pred_empty, truth_empty = not pred.any(), not truth.any()
    if pred_empty and truth_empty:
        return 0.0
    if pred_empty or truth_empty:
        return HD95_ONE_EMPTY_MM
    pred_to_truth, truth_to_pred = surface_distances_mm(pred, truth, spacing_mm)
    return float(np.percentile(np.concatenate([pred_to_truth, truth_to_pred]), 95))


def sensitivity(pred: np.ndarray, truth: np.ndarray) -> float:
    """True-positive rate ``TP / (TP + FN)``.

    Args:
        pred: predicted mask.
        truth: reference mask, same shape.

    Returns:
        Sensitivity in [0, 1] (unitless); with an empty truth, 1.0 if the
        prediction is empty too, else 0.0 (BraTS-like: a false alarm fails).
    """
    pred, truth = _as_pair(pred, truth)
    positives = np.count_nonzero(truth)
    if positives == 0:
        return 0.0 if pred.any() else 1.0
    return np.count_nonzero(pred & truth) / positives


def specificity(pred: np.ndarray, truth: np.ndarray, within: np.ndarray | None = None,
                outside: int = 0) -> float:
    """True-negative rate ``TN / (TN + FP)``, over all voxels or those in ``within``.

    Args:
        pred: predicted mask.
        truth: reference mask, same shape.
        within: optional mask (e.g. the brain) restricting the voxels counted;
            without it every voxel of the array counts, background included,
            which makes the score close to 1 on a whole head.
        outside: voxels beyond the arrays, negative in both masks (the rest of a volume
            the masks were cropped from), counted as true negatives; only without ``within``.

    Returns:
        Specificity in [0, 1] (unitless); 1.0 when there are no negatives to
        count.
    """
    pred, truth = _as_pair(pred, truth)
    negatives = ~truth
    if within is not None:
        within = np.asarray(within, dtype=bool)
        if within.shape != truth.shape:
            raise ValueError(f"within shape {within.shape} differs from truth shape {truth.shape}")
        negatives &= within
        if outside:
            raise ValueError("specificity: outside voxels cannot be counted within a mask")
    n_negatives = np.count_nonzero(negatives) + outside
    if n_negatives == 0:
        return 1.0
    return (np.count_nonzero(negatives & ~pred) + outside) / n_negatives


def region_metrics(
    pred_labels: np.ndarray,
    true_labels: np.ndarray,
    spacing_mm: Sequence[float],
    within: np.ndarray | None = None,
    outside: int = 0,
) -> list[dict]:
    """All per-case metrics for WT, TC and ET of two canonical label maps.

    Args:
        pred_labels: predicted label map, canonical (BraTS 2020 values 0, 1, 2, 4).
        true_labels: reference label map, canonical, same shape.
        spacing_mm: voxel size along each array axis, in mm.
        within: optional mask restricting the voxels counted by specificity.
        outside: background voxels beyond the arrays (a crop's surroundings), counted by
            specificity as true negatives.

    Returns:
        One dict per region in ``REGIONS`` order with keys ``region``,
        ``dice``, ``hd95_mm`` (mm), ``sensitivity``, ``specificity`` and the
        voxel counts ``voxels_true``, ``voxels_pred``.
    """
    pred_labels = np.asarray(pred_labels)
    true_labels = np.asarray(true_labels)
    if pred_labels.shape != true_labels.shape:
        raise ValueError(
            f"prediction shape {pred_labels.shape} differs from truth shape {true_labels.shape}"
        )
    rows = []
    for region in REGIONS:
        # Per region rather than region_masks(): contiguous masks, no strided last-axis views.
        pred = np.isin(pred_labels, REGION_LABELS[region])
        truth = np.isin(true_labels, REGION_LABELS[region])
        rows.append({
            "region": region,
            "dice": dice(pred, truth),
            "hd95_mm": hd95_mm(pred, truth, spacing_mm),
            "sensitivity": sensitivity(pred, truth),
            "specificity": specificity(pred, truth, within, outside),
            "voxels_true": int(np.count_nonzero(truth)),
            "voxels_pred": int(np.count_nonzero(pred)),
        })
    return rows


def slicewise_dice(
    pred: np.ndarray, truth: np.ndarray, axis: int = 2, include_empty: bool = False
) -> float:
    """Mean of per-slice Dice along ``axis``, the way slice-level 2D studies report it.

    Each slice's Dice is ``2|A ∩ B| / (|A| + |B|)`` within that slice; the mean
    is over the slices where truth or prediction is non-empty. It weighs a
    small tumour slice as much as a large one, so it differs from the per-case
    :func:`dice`, which is what BraTS reports.

    Args:
        pred: predicted mask, at least 2-D.
        truth: reference mask, same shape.
        axis: the slicing axis (2 is axial for BraTS 240 x 240 x 155 arrays).
        include_empty: also average the slices empty in both, each scoring
            1.0; this inflates the score with trivially correct background.

    Returns:
        Mean slice Dice in [0, 1] (unitless); 1.0 when no slice is averaged
        (both masks empty), as for :func:`dice`.
    """
    pred, truth = _as_pair(pred, truth)
    if pred.ndim < 2:
        raise ValueError("slice-wise Dice needs at least a 2-D mask")
    other = tuple(a for a in range(pred.ndim) if a != axis % pred.ndim)
    intersection = np.count_nonzero(pred & truth, axis=other)
    total = np.count_nonzero(pred, axis=other) + np.count_nonzero(truth, axis=other)
    occupied = total > 0
    per_slice = np.ones(total.shape)
    per_slice[occupied] = 2.0 * intersection[occupied] / total[occupied]
    averaged = per_slice if include_empty else per_slice[occupied]
    return float(averaged.mean()) if averaged.size else 1.0
