"""Per-case metrics on small arrays whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from brats_unet.evaluation.metrics import (
    HD95_ONE_EMPTY_MM,
    dice,
    hd95_mm,
    region_metrics,
    sensitivity,
    slicewise_dice,
    specificity,
    surface_distances_mm,
)


def _brute_force_hd95(pred, truth, spacing):
    """MedPy's definition written out: surfaces by neighbour tests, all pairwise distances."""
    def surface(mask):
        padded = np.pad(mask, 1)  # outside the array counts as background
        core = tuple(slice(1, -1) for _ in mask.shape)
        inside = mask.copy()
        for axis in range(mask.ndim):
            for lo, hi in ((0, -2), (2, None)):
                shifted = list(core)
                shifted[axis] = slice(lo, hi)
                inside &= padded[tuple(shifted)]
        return np.argwhere(mask & ~inside) * np.asarray(spacing)

    distances = cdist(surface(pred), surface(truth))
    both = np.concatenate([distances.min(axis=1), distances.min(axis=0)])
    return np.percentile(both, 95)


def _ellipsoid(shape, centre, semi_axes):
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / a) ** 2 for g, c, a in zip(grid, centre, semi_axes)) <= 1.0


# --- Dice -------------------------------------------------------------------

def test_dice_of_a_2x2_image_is_0_8():
    pred = np.array([[1, 1], [1, 0]], dtype=bool)
    truth = np.array([[1, 1], [0, 0]], dtype=bool)
    assert dice(pred, truth) == pytest.approx(0.8)  # 2*2 / (3+2)


def test_dice_of_two_boxes():
    pred = np.zeros((6, 6, 6), dtype=bool)
    truth = np.zeros((6, 6, 6), dtype=bool)
    pred[0:4, 0:2, 0:2] = True  # 16 voxels
    truth[2:6, 0:2, 0:2] = True  # 16 voxels, 8 shared
    assert dice(pred, truth) == pytest.approx(0.5)


def test_dice_empty_conventions():
    empty = np.zeros((3, 3), dtype=bool)
    full = np.ones((3, 3), dtype=bool)
    assert dice(empty, empty) == 1.0
    assert dice(full, empty) == 0.0
    assert dice(empty, full) == 0.0


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2)), np.zeros((2, 3)))


# --- HD95 -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spacing", "axis", "expected_mm"),
    [((1.0, 1.0, 1.0), 2, 3.0), ((1.0, 1.0, 3.0), 2, 9.0), ((0.5, 1.0, 3.0), 0, 1.5)],
)
def test_hd95_of_a_plane_shifted_by_three_voxels(spacing, axis, expected_mm):
    # Every voxel of a 1-voxel-thick plane is surface, and each one's nearest
    # voxel on the other plane is straight across: all distances are 3 voxels.
    truth = np.zeros((12, 12, 12), dtype=bool)
    pred = np.zeros_like(truth)
    index = [slice(1, 11)] * 3
    index[axis] = 4
    truth[tuple(index)] = True
    index[axis] = 7
    pred[tuple(index)] = True
    assert hd95_mm(pred, truth, spacing) == pytest.approx(expected_mm)


@pytest.mark.parametrize(("spacing", "expected_mm"), [((1, 1, 1), 3.6), ((1, 1, 2.5), 9.0)])
def test_hd95_is_the_percentile_of_both_directions_together(spacing, expected_mm):
    # pred -> truth: [0]; truth -> pred: [0, 4 voxels]. Together [0, 0, 4]
    # gives 3.6 voxels at the 95th percentile; the max of the two directed
    # percentiles would give 3.8.
    truth = np.zeros((3, 3, 7), dtype=bool)
    truth[1, 1, 1] = truth[1, 1, 5] = True
    pred = np.zeros_like(truth)
    pred[1, 1, 1] = True
    assert hd95_mm(pred, truth, spacing) == pytest.approx(expected_mm)
    assert hd95_mm(truth, pred, spacing) == pytest.approx(expected_mm)


def test_hd95_of_a_sphere_against_itself_is_zero():
    sphere = _ellipsoid((21, 21, 21), (10, 10, 10), (7, 7, 7))
    assert hd95_mm(sphere, sphere, (1.2, 0.9, 3.0)) == 0.0


def test_hd95_empty_conventions():
    empty = np.zeros((4, 4, 4), dtype=bool)
    one = empty.copy()
    one[1, 1, 1] = True
    assert hd95_mm(empty, empty, (1, 1, 1)) == 0.0
    assert hd95_mm(one, empty, (1, 1, 1)) == HD95_ONE_EMPTY_MM
    assert hd95_mm(empty, one, (1, 1, 1)) == HD95_ONE_EMPTY_MM
    assert HD95_ONE_EMPTY_MM == pytest.approx(math.sqrt(240**2 + 240**2 + 155**2), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.2, 0.9, 3.0)])
def test_cropped_hd95_matches_brute_force(seed, spacing):
    rng = np.random.default_rng(seed)
    pred = np.zeros((16, 14, 12), dtype=bool)
    truth = np.zeros_like(pred)
    # Small random blobs away from the border, so the crop really cuts.
    pred[4:10, 3:9, 3:8] = rng.random((6, 6, 5)) < 0.6
    truth[5:12, 4:10, 2:7] = rng.random((7, 6, 5)) < 0.6
    assert hd95_mm(pred, truth, spacing) == pytest.approx(_brute_force_hd95(pred, truth, spacing))


def test_the_array_border_counts_as_outside():
    # Blobs touching the border: the crop must keep the border voxels as surface.
    rng = np.random.default_rng(7)
    pred = rng.random((6, 7, 5)) < 0.7
    truth = rng.random((6, 7, 5)) < 0.7
    pred[0, 0, 0] = truth[-1, -1, -1] = True
    spacing = (1.0, 2.0, 0.5)
    assert hd95_mm(pred, truth, spacing) == pytest.approx(_brute_force_hd95(pred, truth, spacing))


def test_hd95_works_in_2d():
    truth = np.zeros((8, 8), dtype=bool)
    pred = np.zeros_like(truth)
    truth[2, 1:7] = True
    pred[5, 1:7] = True
    assert hd95_mm(pred, truth, (2.0, 1.0)) == pytest.approx(6.0)


def test_surface_distances_need_matching_spacing():
    mask = np.ones((2, 2, 2), dtype=bool)
    with pytest.raises(ValueError, match="spacing"):
        surface_distances_mm(mask, mask, (1.0, 1.0))


def test_hd95_of_a_full_size_case_does_not_depend_on_the_crop():
    # A 240 x 240 x 155 case with ~60 mm ellipsoids; the timing is reported, not asserted.
    shape = (240, 240, 155)
    truth = _ellipsoid(shape, (120, 120, 77), (30, 25, 20))
    pred = _ellipsoid(shape, (124, 117, 80), (28, 26, 21))
    spacing = (1.0, 1.0, 1.0)
    pred_to_truth, truth_to_pred = surface_distances_mm(pred, truth, spacing)
    small = (slice(80, 165), slice(80, 160), slice(50, 110))  # contains both, off the border
    assert np.allclose(surface_distances_mm(pred[small], truth[small], spacing)[0], pred_to_truth)
    assert hd95_mm(pred, truth, spacing) == pytest.approx(
        np.percentile(np.concatenate([pred_to_truth, truth_to_pred]), 95))


# --- sensitivity, specificity ----------------------------------------------

def test_sensitivity_and_specificity_of_a_small_array():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    assert sensitivity(pred, truth) == pytest.approx(3 / 4)
    assert specificity(pred, truth) == pytest.approx(5 / 6)


def test_specificity_within_a_brain_mask():
    truth = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    pred = np.array([1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    brain = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    assert specificity(pred, truth) == pytest.approx(5 / 6)
    assert specificity(pred, truth, within=brain) == pytest.approx(1 / 2)


def test_sensitivity_and_specificity_empty_conventions():
    empty = np.zeros(4, dtype=bool)
    some = np.array([1, 0, 0, 0], dtype=bool)
    full = np.ones(4, dtype=bool)
    assert sensitivity(empty, empty) == 1.0
    assert sensitivity(some, empty) == 0.0
    assert specificity(some, full) == 1.0  # no negatives to count
    assert specificity(some, empty, within=empty) == 1.0


# --- per region -------------------------------------------------------------

def test_region_metrics_follow_the_brats_nesting():
    true_labels = np.zeros((4, 4, 4), dtype=np.uint8)
    true_labels[0:2, 0:2, 0:2] = 2  # 8 voxels oedema
    true_labels[0, 0, 0:2] = 4  # 2 of them enhancing
    pred_labels = np.zeros_like(true_labels)
    pred_labels[0:2, 0:2, 0:2] = 2
    pred_labels[0, 0, 0] = 1  # core found, enhancing missed
    rows = region_metrics(pred_labels, true_labels, (1.0, 1.0, 1.0))
    assert [r["region"] for r in rows] == ["WT", "TC", "ET"]
    assert set(rows[0]) == {"region", "dice", "hd95_mm", "sensitivity", "specificity",
                            "voxels_true", "voxels_pred"}
    wt, tc, et = rows
    assert (wt["dice"], wt["hd95_mm"], wt["voxels_true"], wt["voxels_pred"]) == (1.0, 0.0, 8, 8)
    assert tc["dice"] == pytest.approx(2 / 3)  # 2*1 / (1+2)
    assert tc["sensitivity"] == pytest.approx(1 / 2)
    assert tc["specificity"] == 1.0
    assert tc["hd95_mm"] == pytest.approx(np.percentile([0, 0, 1], 95))
    assert (et["dice"], et["hd95_mm"], et["voxels_pred"]) == (0.0, HD95_ONE_EMPTY_MM, 0)


# --- slice-wise Dice --------------------------------------------------------

def test_slicewise_dice_differs_from_per_case_dice():
    # Truth: 4 voxels on slice 0 and 4 on slice 1; the prediction finds slice 0 only.
    truth = np.zeros((2, 2, 4), dtype=bool)
    truth[:, :, 0:2] = True
    pred = np.zeros_like(truth)
    pred[:, :, 0] = True
    assert dice(pred, truth) == pytest.approx(2 / 3)  # 2*4 / (4+8)
    assert slicewise_dice(pred, truth) == pytest.approx(0.5)  # (1 + 0) / 2
    # The two empty slices each add a free 1.0: (1 + 0 + 1 + 1) / 4.
    assert slicewise_dice(pred, truth, include_empty=True) == pytest.approx(0.75)
    # Along axis 0 both slices hold half of each mask: Dice 2*2/(2+4) each.
    assert slicewise_dice(pred, truth, axis=0) == pytest.approx(2 / 3)


def test_slicewise_dice_of_empty_masks():
    empty = np.zeros((3, 3, 3), dtype=bool)
    assert slicewise_dice(empty, empty) == 1.0
    assert slicewise_dice(empty, empty, include_empty=True) == 1.0
