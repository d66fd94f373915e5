"""Surface distances the way the 2023-2024 BraTS lesion-wise scripts measure them.

Those scripts take HD95 from DeepMind's ``surface-distance`` library, which differs from the
MedPy HD95 of :mod:`brats_unet.evaluation.metrics` (the 2018-2021 evaluation's) in three ways:

* surface elements ("surfels") sit on the dual grid: one per 2 x 2 x 2 block of voxels whose
  eight values are not all equal, i.e. at voxel corners, not at voxel centres;
* each surfel carries the area of the marching-cubes surface through its block
  (:func:`brats_unet.evaluation.surfels.neighbour_code_areas`), and the percentile is taken
  over the area, not over the count of points;
* HD95 is the larger of the two directed 95th percentiles, not the 95th percentile of both
  directed sets pooled; a percentile is the first sorted distance whose cumulative area share
  reaches 0.95 (no interpolation).

Written here rather than imported because the library is not a maintained package (its PyPI
release 0.1 fails on numpy 2: ``np.Inf``); the tests compare this code with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from brats_unet.evaluation.metrics import nearest_distances
from brats_unet.evaluation.surfels import neighbour_code_areas
from brats_unet.voxels import bounding_box

#: Weight of each voxel of a 2 x 2 x 2 block in its neighbourhood code (DeepMind's kernel).
NEIGHBOUR_CODE_KERNEL = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]], dtype=np.uint8)


def _dual_grid(mask: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Neighbourhood codes of every 2 x 2 x 2 block touching the box [start, stop)."""
    crop = np.zeros(tuple(stop - start + 1), dtype=np.uint8)
    crop[:-1, :-1, :-1] = mask[tuple(slice(a, b) for a, b in zip(start, stop))]
    # cval 0 adds the blocks below the box; the zero layer above adds those above it
    return ndimage.correlate(crop, NEIGHBOUR_CODE_KERNEL, mode="constant", cval=0)


def surfel_distances_mm(truth: np.ndarray, pred: np.ndarray, spacing_mm: Sequence[float]
                        ) -> dict[str, np.ndarray]:
    """Directed distances between the surfels of two 3-D masks, with the surfels' areas.

    Args:
        truth: reference mask, 3-D.
        pred: predicted mask, same shape.
        spacing_mm: voxel size along each array axis, in mm.

    Returns:
        ``truth_to_pred`` and ``pred_to_truth`` (mm, sorted ascending), ``truth_areas`` and
        ``pred_areas`` (mm², in the same order). A mask without surfels has empty arrays,
        and the other mask's distances to it are all infinite.
    """
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    if truth.shape != pred.shape or truth.ndim != 3:
        raise ValueError(f"need two 3-D masks of one shape, got {truth.shape} and {pred.shape}")
    spacing = tuple(float(s) for s in spacing_mm)
    empty = np.array([])
    if not (truth | pred).any():
        return {"truth_to_pred": empty, "pred_to_truth": empty,
                "truth_areas": empty, "pred_areas": empty}
    start, stop = (np.array(ends) for ends in bounding_box(truth | pred))
    areas = neighbour_code_areas(spacing)
    codes = [_dual_grid(mask, start, stop) for mask in (truth, pred)]
    borders = [(code != 0) & (code != 255) for code in codes]
    points = [np.argwhere(border) for border in borders]
    out = {}
    for name, own, other in (("truth", 0, 1), ("pred", 1, 0)):
        distances = nearest_distances(points[own], points[other], spacing)
        surfel_areas = areas[codes[own][borders[own]]]
        order = np.lexsort((surfel_areas, distances))  # the library sorts (distance, area) pairs
        out[f"{name}_to_{'pred' if name == 'truth' else 'truth'}"] = distances[order]
        out[f"{name}_areas"] = surfel_areas[order]
    return out


def _directed_percentile(distances: np.ndarray, areas: np.ndarray, percent: float) -> float:
    if distances.size == 0:
        return np.inf
    cumulative = np.cumsum(areas) / np.sum(areas)
    index = int(np.searchsorted(cumulative, percent / 100.0))
    return float(distances[min(index, distances.size - 1)])


def surfel_hd95_mm(truth: np.ndarray, pred: np.ndarray, spacing_mm: Sequence[float],
                   percent: float = 95.0) -> float:
    """Robust Hausdorff distance by surfel area (DeepMind's ``compute_robust_hausdorff``).

    Args:
        truth: reference mask, 3-D.
        pred: predicted mask, same shape.
        spacing_mm: voxel size along each array axis, in mm.
        percent: the percentile, 95 for HD95.

    Returns:
        The larger directed percentile distance in mm; ``inf`` when either mask is empty,
        both included, as in the library (the lesion-wise scripts replace it by their
        penalty and treat two empty masks before asking).
    """
    d = surfel_distances_mm(truth, pred, spacing_mm)
    return max(_directed_percentile(d["truth_to_pred"], d["truth_areas"], percent),
               _directed_percentile(d["pred_to_truth"], d["pred_areas"], percent))
