"""Voxel-grid facts every stage shares: which plane each voxel axis indexes, bounding boxes.

Orientation is read from the image's affine with :func:`nibabel.aff2axcodes`, never
assumed; only where no affine exists (an array without a file) does the BraTS order
(i, j, k) = (left-right, posterior-anterior, inferior-superior) stand in for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import nibabel as nib
import numpy as np

#: The BraTS voxel order's axis codes, used where an array comes without an affine.
BRATS_AXIS_CODES = ("R", "A", "S")

_PLANE_OF_CODE = {"L": "sagittal", "R": "sagittal", "A": "coronal", "P": "coronal",
                  "S": "axial", "I": "axial"}


def axis_codes(affine: np.ndarray | None) -> tuple[str | None, ...]:
    """The world direction each voxel axis points to (``nib.aff2axcodes``), BraTS's without one."""
    return tuple(nib.aff2axcodes(affine)) if affine is not None else BRATS_AXIS_CODES


def anatomical_axes(affine: np.ndarray | None) -> tuple[str | None, ...]:
    """The plane that slices along each voxel axis are: an L-R axis gives sagittal slices,
    A-P coronal, I-S axial; None for an axis the affine leaves undefined."""
    return tuple(_PLANE_OF_CODE.get(code) for code in axis_codes(affine))


def plane_axes(affine: np.ndarray | None) -> dict[str, int]:
    """Voxel axis normal to each plane, ``{"sagittal": i, "coronal": j, "axial": k}``.

    An affine that does not name all three planes falls back to the BraTS order.
    """
    axes = {plane: axis for axis, plane in enumerate(anatomical_axes(affine)) if plane}
    if sorted(axes.values()) != [0, 1, 2]:
        return plane_axes(None)
    return axes


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(start, stop)`` of the smallest box holding every true voxel (stop exclusive), grown
    by ``margin`` voxels on each side and clipped to the array."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("cannot take the bounding box of an empty mask")
    start, stop = [], []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        start.append(max(int(hits[0]) - margin, 0))
        stop.append(min(int(hits[-1]) + 1 + margin, mask.shape[axis]))
    return tuple(start), tuple(stop)


def box_slices(start: Sequence[int], stop: Sequence[int]) -> tuple[slice, ...]:
    """The index of the box ``[start, stop)`` over the leading ``len(start)`` axes."""
    return tuple(slice(a, b) for a, b in zip(start, stop))


def union_box(boxes: Sequence[tuple[slice, ...]]) -> tuple[slice, ...]:
    """The smallest box (a tuple of slices, as ``ndimage.find_objects`` gives) holding every
    box of ``boxes``."""
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
                 for a in range(len(boxes[0])))
