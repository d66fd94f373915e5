"""Tumour volumes and shape consistency from label maps and the NIfTI header.

``pixdim`` is the voxel size in mm along the three array axes (NIfTI
``pixdim[1:4]``, in array axis order); volumes are in millilitres (1 ml =
1000 mm³), slice areas in mm². Masks are 3-D boolean arrays.

Conventions:

* Components are 26-connected in 3-D and 8-connected within a slice.
* An empty mask has 0 components and a largest share of NaN (undefined).
* Shape consistency is measured between consecutive slices inside the
  region's extent along each axis (first to last occupied slice), so the
  entry and exit caps are not counted as jumps.
* Relative volume error is ``(pred - true) / true``, NaN when ``true`` is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from brats_unet.labels import NECROSIS, REGION_LABELS, REGIONS, RESECTION_CAVITY
from brats_unet.voxels import bounding_box, box_slices


def voxel_volume_ml(pixdim: Sequence[float]) -> float:
    """Volume of one voxel in ml.

    Args:
        pixdim: voxel size in mm along the array axes; only the first three
            values are used (so a 4-D ``pixdim[1:5]`` works too).

    Returns:
        ``pixdim[0] * pixdim[1] * pixdim[2] / 1000``, in ml.
    """
    if len(pixdim) < 3:
        raise ValueError(f"pixdim needs three voxel sizes, got {tuple(pixdim)}")
    return float(np.prod([float(p) for p in pixdim[:3]])) / 1000.0


def region_volumes_ml(labels: np.ndarray, pixdim: Sequence[float]) -> dict[str, float]:
    """Volumes of WT, TC and ET of a canonical label map.

    Args:
        labels: canonical label map (BraTS 2020 values 0, 1, 2, 4), 3-D.
        pixdim: voxel size in mm along the array axes.

    Returns:
        ``{"WT": ml, "TC": ml, "ET": ml}`` in ``REGIONS`` order, in ml.
    """
    labels = np.asarray(labels)
    per_voxel = voxel_volume_ml(pixdim)
    return {
        region: int(np.count_nonzero(np.isin(labels, REGION_LABELS[region]))) * per_voxel
        for region in REGIONS
    }


#: The necrotic core (canonical label 1: TC without ET), beside the three regions where a
#: volume is wanted per tissue (longitudinal change).
NECROTIC_CORE = "NCR"


def necrotic_core_ml(labels: np.ndarray, pixdim: Sequence[float]) -> float:
    """Volume of the necrotic (non-enhancing) core, canonical label 1, in ml."""
    return int(np.count_nonzero(np.asarray(labels) == NECROSIS)) * voxel_volume_ml(pixdim)


def tissue_volumes_ml(labels: np.ndarray, pixdim: Sequence[float]) -> dict[str, float]:
    """WT, TC, ET (:func:`region_volumes_ml`) and the necrotic core, in ml."""
    return {**region_volumes_ml(labels, pixdim), NECROTIC_CORE: necrotic_core_ml(labels, pixdim)}


def resection_cavity_ml(labels: np.ndarray, pixdim: Sequence[float]) -> float:
    """Volume of the resection cavity (canonical :data:`~brats_unet.labels.RESECTION_CAVITY`,
    BraTS 2024 post-treatment's label 4) in ml; 0 where the dataset has no such label."""
    return int(np.count_nonzero(np.asarray(labels) == RESECTION_CAVITY)) * voxel_volume_ml(pixdim)


def components(mask: np.ndarray) -> tuple[int, float]:
    """Number of 26-connected components and the share of the largest.

    Args:
        mask: boolean mask, 3-D (any dimension works, with full connectivity).

    Returns:
        ``(n_components, largest_share)``, where ``largest_share`` is the
        largest component's voxel count over the mask's (unitless, in (0, 1]);
        ``(0, nan)`` for an empty mask, since the share is undefined there.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return 0, float("nan")
    full = np.ones((3,) * mask.ndim, dtype=bool)
    # components lie inside the mask's bounding box: labelling it alone is the same, and cheaper
    labelled, n = ndimage.label(mask[box_slices(*bounding_box(mask))], structure=full)
    sizes = np.bincount(labelled.ravel())[1:]
    return int(n), float(sizes.max() / sizes.sum())


def _slice_component_counts(mask: np.ndarray, axis: int) -> np.ndarray:
    """8-connected component count of every slice along ``axis``, with one labelling call."""
    # A structure that connects only within a slice makes each 3-D label one
    # 2-D component, so counting labels per slice needs no loop over slices.
    structure = np.zeros((3, 3, 3), dtype=bool)
    index = [slice(None)] * 3
    index[axis] = 1
    structure[tuple(index)] = True
    labelled, n = ndimage.label(mask, structure=structure)
    slice_of_label = np.zeros(n + 1, dtype=np.intp)
    voxels = np.nonzero(labelled)
    slice_of_label[labelled[voxels]] = voxels[axis]
    return np.bincount(slice_of_label[1:], minlength=mask.shape[axis])


def axis_consistency(
    mask: np.ndarray,
    pixdim: Sequence[float],
    names: Sequence[str] = ("i", "j", "k"),
) -> dict[str, dict[str, float]]:
    """Slice-to-slice smoothness of a region along each array axis.

    Axes are named by array index; the caller maps them to sagittal, coronal
    and axial for its orientation. Consecutive slices are compared only inside
    the region's extent along the axis (first to last occupied slice), so a
    box scores no jump and no component change.

    Args:
        mask: boolean 3-D mask of one region.
        pixdim: voxel size in mm along the three array axes.
        names: names of the axes 0, 1, 2 used as keys.

    Returns:
        ``{name: {"slices": int, "max_area_mm2": float, "max_area_jump": float,
        "component_changes": int}}`` per axis, where ``slices`` counts the
        slices containing the region, ``max_area_mm2`` is the largest slice
        area in mm², ``max_area_jump`` is the largest absolute area change
        between consecutive slices over the largest area (unitless, 0 for a
        single slice, NaN for an empty mask) and ``component_changes`` counts
        the slices whose 8-connected component count differs from the
        previous slice's.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"axis consistency needs a 3-D mask, got {mask.ndim}-D")
    if len(names) != 3:
        raise ValueError(f"names needs three axis names, got {tuple(names)}")
    spacing = [float(p) for p in pixdim[:3]]
    if not mask.any():
        empty = {"slices": 0, "max_area_mm2": 0.0, "max_area_jump": float("nan"),
                 "component_changes": 0}
        return {name: dict(empty) for name in names}
    # Cropping to the bounding box makes every axis's range the region's extent.
    mask = mask[ndimage.find_objects(mask.astype(np.uint8))[0]]
    result = {}
    for axis, name in enumerate(names):
        others = tuple(a for a in range(3) if a != axis)
        area_mm2 = np.count_nonzero(mask, axis=others) * (spacing[others[0]] * spacing[others[1]])
        counts = _slice_component_counts(mask, axis)
        result[name] = {
            "slices": int(np.count_nonzero(area_mm2)),
            "max_area_mm2": float(area_mm2.max()),
            "max_area_jump": float(np.abs(np.diff(area_mm2)).max(initial=0.0) / area_mm2.max()),
            "component_changes": int(np.count_nonzero(np.diff(counts))),
        }
    return result


def volume_errors(true_ml: float, pred_ml: float) -> dict[str, float]:
    """Volume errors of a prediction against the reference.

    Args:
        true_ml: reference volume, in ml.
        pred_ml: predicted volume, in ml.

    Returns:
        ``{"error_ml": pred - true, "abs_error_ml": |pred - true|,
        "rel_error": (pred - true) / true}``; errors in ml, ``rel_error``
        unitless and NaN when ``true_ml`` is 0 (undefined).
    """
    error = float(pred_ml) - float(true_ml)
    return {
        "error_ml": error,
        "abs_error_ml": abs(error),
        "rel_error": error / float(true_ml) if true_ml != 0 else float("nan"),
    }
