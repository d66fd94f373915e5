"""Voxel-grid facts: which plane each axis indexes, from the affine; bounding boxes."""

import numpy as np
import pytest

from brats_unet.voxels import (
    anatomical_axes,
    axis_codes,
    bounding_box,
    box_slices,
    plane_axes,
    union_box,
)

RAS = np.diag([1.0, 1.0, 1.0, 1.0])


def test_anatomical_axes_follow_the_affine():
    assert anatomical_axes(RAS) == ("sagittal", "coronal", "axial")
    assert anatomical_axes(RAS[:, [2, 0, 1, 3]]) == ("axial", "sagittal", "coronal")
    assert anatomical_axes(None) == ("sagittal", "coronal", "axial")


def test_axis_codes_keep_the_direction():
    assert axis_codes(np.diag([-1.0, -1.0, 2.0, 1.0])) == ("L", "P", "S")
    assert axis_codes(None) == ("R", "A", "S")


def test_plane_axes_follow_the_affine():
    assert plane_axes(None) == {"sagittal": 0, "coronal": 1, "axial": 2}
    # voxel axes stored (axial, coronal, sagittal): i runs superior, k runs left
    swapped = np.array([[0, 0, -1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    assert plane_axes(swapped) == {"axial": 0, "coronal": 1, "sagittal": 2}


def test_plane_axes_fall_back_to_the_brats_order_on_an_affine_naming_a_plane_twice():
    degenerate = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    assert plane_axes(degenerate) == {"sagittal": 0, "coronal": 1, "axial": 2}


def test_bounding_box_is_tight_and_stop_exclusive():
    mask = np.zeros((5, 6, 7), bool)
    mask[1, 2, 3] = mask[3, 4, 5] = True
    assert bounding_box(mask) == ((1, 2, 3), (4, 5, 6))
    with pytest.raises(ValueError, match="empty"):
        bounding_box(np.zeros((2, 2, 2), bool))


def test_bounding_box_margin_is_clipped_to_the_array():
    mask = np.zeros((5, 6, 7), bool)
    mask[0, 2, 6] = True
    assert bounding_box(mask, margin=2) == ((0, 0, 4), (3, 5, 7))
    start, stop = bounding_box(mask, margin=1)
    assert mask[box_slices(start, stop)].sum() == 1


def test_union_box_holds_every_box():
    boxes = [(slice(2, 5), slice(0, 3), slice(4, 6)), (slice(1, 3), slice(2, 8), slice(5, 9))]
    assert union_box(boxes) == (slice(1, 5), slice(0, 8), slice(4, 9))
    assert union_box(boxes[:1]) == boxes[0]
