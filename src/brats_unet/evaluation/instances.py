"""Instance-wise scores of the 2025 BraTS evaluation (``BraTS-evaluation`` on ``panoptica``).

What panoptica 2.1.7 does with the glioma configuration (``config_gli.yaml``), for one region:

* instances are the 26-connected components of each mask (``cc3d``);
* a reference and a predicted instance are a candidate pair when their Dice reaches
  :data:`~brats_unet.evaluation.dialects.PANOPTICA_MATCHING_THRESHOLD` (so they overlap); the
  pairs are matched one to one by maximum bipartite matching on Dice
  (``scipy.optimize.linear_sum_assignment`` on ``1 - Dice``, non-candidates at ``1 + 1e-6``);
* ``tp`` matched pairs, ``fn`` unmatched reference instances, ``fp`` unmatched predicted ones;
  ``rq = tp / (tp + fp/2 + fn/2)`` (instance F1);
* ``dsc``, ``hd95_mm``, ``nsd``: means over matched pairs only (misses and false positives are
  in ``rq``, not here). HD95 is MedPy's (voxel surfaces by a 6-connected erosion, 95th
  percentile of both directed sets pooled, numpy's linear interpolation), so it equals
  :func:`brats_unet.evaluation.metrics.hd95_mm`; NSD is GaNDLF's normalised surface Dice at a
  tolerance of the smallest voxel size. No matched pair: ``dsc`` and ``nsd`` 0, ``hd95_mm`` the
  parser's penalty 373; no instance in either mask: NaN, which the official means skip;
* ``global_dsc``, ``global_hd95_mm``, ``global_nsd``: the same of the whole region.

Corrected here, and why (each shown by a test against the official package):

* distances are in mm of the file's own voxel size along each array axis. Given file paths,
  ``BraTS-evaluation`` 0.0.10 reads SimpleITK's (z, y, x) arrays with the (x, y, z) spacing,
  which is wrong unless the voxels are isotropic;
* the global figures use the voxel size too: panoptica computes ``global_bin_hd95`` in voxels
  and ``global_bin_nsd`` at a 0.5-voxel tolerance whatever the spacing, and gives two
  non-overlapping masks HD95 infinity (373 after the parser) instead of their distance. The
  package's own numbers are kept beside them as ``official_global_hd95`` (voxels) and
  ``official_global_nsd``;
* a region with no matched pair gets ``hd95_mm`` 373, the parser's own penalty; the parser
  leaves panoptica's infinity there, which makes every mean over cases infinite.

Reproduced as they are: NaN for a region empty in both masks (the official means skip it),
and the one-to-one matching (a prediction split in two is one match and one false positive).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from brats_unet.evaluation.dialects import (
    PANOPTICA_HD95_PENALTY_MM,
    PANOPTICA_MATCHING_THRESHOLD,
)
from brats_unet.evaluation.lesionwise import Lesion, components
from brats_unet.evaluation.metrics import surface_distances_mm
from brats_unet.voxels import union_box


def _nsd(to_truth: np.ndarray, to_pred: np.ndarray, tolerance: float) -> float:
    """GaNDLF's normalised surface Dice as panoptica computes it (same operations, so the
    same rounding): each mask's share of surface voxels within ``tolerance`` of the other's."""
    near_a, near_b = np.sum(to_pred <= tolerance) / to_pred.size, np.sum(
        to_truth <= tolerance) / to_truth.size
    far_a, far_b = np.sum(to_pred > tolerance) / to_pred.size, np.sum(
        to_truth > tolerance) / to_truth.size
    return float((near_a + near_b) / (near_a + near_b + far_a + far_b + sys.float_info.min))


def _figures(to_truth, to_pred, tolerance: float) -> tuple[float, float]:
    return (float(np.percentile(np.concatenate([to_truth, to_pred]), 95)),
            _nsd(to_truth, to_pred, tolerance))


def surface_figures(truth: np.ndarray, pred: np.ndarray, spacing_mm: Sequence[float],
                    tolerance_mm: float | None = None) -> tuple[float, float]:
    """``(HD95 in mm, NSD)`` of two non-empty masks, panoptica's way: MedPy's HD95 and the
    normalised surface Dice at ``tolerance_mm`` (default: the smallest voxel size)."""
    tolerance = min(float(s) for s in spacing_mm) if tolerance_mm is None else tolerance_mm
    return _figures(*surface_distances_mm(pred, truth, spacing_mm), tolerance)


def matched_pairs(truth_labels: np.ndarray, truth_sizes: np.ndarray, pred_labels: np.ndarray,
                  pred_sizes: np.ndarray) -> list[tuple[int, int, float]]:
    """``(truth instance, predicted instance, Dice)`` of panoptica's one-to-one matching.

    ``*_sizes`` are the voxel counts of each label array's values (``np.bincount``), the
    background's first.
    """
    n_truth, n_pred = len(truth_sizes) - 1, len(pred_sizes) - 1
    if n_truth == 0 or n_pred == 0:
        return []
    both = (truth_labels > 0) & (pred_labels > 0)
    pair_index = truth_labels[both].astype(np.int64) * (n_pred + 1) + pred_labels[both]
    overlap = np.bincount(pair_index, minlength=(n_truth + 1) * (n_pred + 1)).reshape(
        n_truth + 1, n_pred + 1)[1:, 1:]
    dice = 2.0 * overlap / (truth_sizes[1:, None] + pred_sizes[None, 1:])
    cost = np.where(dice >= PANOPTICA_MATCHING_THRESHOLD, 1.0 - dice, 1.0 + 1e-6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r) + 1, int(c) + 1, float(dice[r, c]))
            for r, c in zip(rows, cols) if cost[r, c] < 1.0]


def panoptica_scores(truth: np.ndarray, pred: np.ndarray, spacing_mm: Sequence[float]
                     ) -> tuple[dict, list[Lesion]]:
    """The 2025 instance scores of one region, and its instances.

    Args:
        truth: reference mask of the region, 3-D.
        pred: predicted mask, same shape.
        spacing_mm: voxel size along each array axis, in mm.

    Returns:
        ``(scores, lesions)``: ``scores`` has ``dsc``, ``hd95_mm``, ``nsd``, ``rq``, ``tp``,
        ``fp``, ``fn``, ``global_dsc``, ``global_hd95_mm``, ``global_nsd`` (see the module
        docstring); ``lesions`` one :class:`~brats_unet.evaluation.lesionwise.Lesion` per
        reference instance (matched or missed) and per unmatched predicted instance.
    """
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    spacing = tuple(float(s) for s in spacing_mm)
    truth_labels, n_truth = components(truth)
    pred_labels, n_pred = components(pred)
    truth_sizes = np.bincount(truth_labels.ravel(), minlength=n_truth + 1)
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
    pairs = matched_pairs(truth_labels, truth_sizes, pred_labels, pred_sizes)
    truth_boxes, pred_boxes = ndimage.find_objects(truth_labels), ndimage.find_objects(pred_labels)
    lesions, hd95s, nsds = [], [], []
    for t, p, dice in pairs:
        box = union_box([truth_boxes[t - 1], pred_boxes[p - 1]])
        hd95, nsd = surface_figures(truth_labels[box] == t, pred_labels[box] == p, spacing)
        hd95s.append(hd95)
        nsds.append(nsd)
        lesions.append(Lesion(t, "matched", True, int(truth_sizes[t]), int(pred_sizes[p]),
                              dice, hd95))
    matched_truth, matched_pred = {t for t, _, _ in pairs}, {p for _, p, _ in pairs}
    lesions += [Lesion(t, "missed", True, int(truth_sizes[t]), 0, 0.0,
                       PANOPTICA_HD95_PENALTY_MM) for t in range(1, n_truth + 1)
                if t not in matched_truth]
    lesions += [Lesion(p, "false_positive", True, 0, int(pred_sizes[p]), 0.0,
                       PANOPTICA_HD95_PENALTY_MM) for p in range(1, n_pred + 1)
                if p not in matched_pred]
    tp = len(pairs)
    fp, fn = n_pred - tp, n_truth - tp
    scores = {"tp": tp, "fp": fp, "fn": fn}
    if n_truth == 0 and n_pred == 0:
        scores.update(dsc=np.nan, hd95_mm=np.nan, nsd=np.nan, rq=np.nan)
    elif tp == 0:
        scores.update(dsc=0.0, hd95_mm=PANOPTICA_HD95_PENALTY_MM, nsd=0.0, rq=0.0)
    else:
        scores.update(dsc=float(np.mean([d for _, _, d in pairs])), hd95_mm=float(np.mean(hd95s)),
                      nsd=float(np.mean(nsds)), rq=tp / (tp + 0.5 * fp + 0.5 * fn))
    scores.update(_global_scores(truth, pred, spacing))
    return scores, lesions


def _global_scores(truth, pred, spacing) -> dict:
    """The whole region's figures: corrected (mm, any distance) and as the package gives them
    (``official_*``: unit spacing, a 0.5-voxel NSD tolerance, 373 without overlap)."""
    nan = {"global_dsc": np.nan, "global_hd95_mm": np.nan, "global_nsd": np.nan,
           "official_global_hd95": np.nan, "official_global_nsd": np.nan}
    if not truth.any() and not pred.any():
        return nan
    overlap = np.count_nonzero(truth & pred)
    out = {**nan, "global_dsc": 2.0 * overlap / (np.count_nonzero(truth) + np.count_nonzero(pred))}
    if not truth.any() or not pred.any():
        return {**out, "global_hd95_mm": PANOPTICA_HD95_PENALTY_MM, "global_nsd": 0.0,
                "official_global_hd95": PANOPTICA_HD95_PENALTY_MM, "official_global_nsd": 0.0}
    distances = surface_distances_mm(pred, truth, spacing)
    out["global_hd95_mm"], out["global_nsd"] = _figures(*distances, min(spacing))
    if overlap == 0:
        out["official_global_hd95"], out["official_global_nsd"] = PANOPTICA_HD95_PENALTY_MM, 0.0
    else:  # in voxels: the same distances on a 1 mm grid
        unit = (distances if spacing == (1.0, 1.0, 1.0)
                else surface_distances_mm(pred, truth, (1.0, 1.0, 1.0)))
        out["official_global_hd95"], out["official_global_nsd"] = _figures(*unit, 0.5)
    return out
