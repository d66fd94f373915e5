import numpy as np
import pytest

from brats_unet.labels import (
    from_canonical,
    ordered_regions,
    region_masks,
    region_rank,
    regions_to_labels,
    to_canonical,
)


def test_regions_are_nested_the_brats_way():
    labels = np.array([0, 1, 2, 4])
    masks = region_masks(labels)
    np.testing.assert_array_equal(masks[:, 0], [False, True, True, True])  # WT
    np.testing.assert_array_equal(masks[:, 1], [False, True, False, True])  # TC
    np.testing.assert_array_equal(masks[:, 2], [False, False, False, True])  # ET


def test_regions_back_to_labels_round_trip():
    labels = np.array([[0, 1], [2, 4]], dtype=np.uint8)
    np.testing.assert_array_equal(regions_to_labels(region_masks(labels)), labels)


def test_inconsistent_regions_resolve_to_the_innermost():
    # ET outside WT still becomes 4; TC without ET becomes 1
    masks = np.array([[False, False, True], [False, True, False], [True, False, False]])
    np.testing.assert_array_equal(regions_to_labels(masks), [4, 1, 2])


def test_2023_convention_round_trip():
    canonical = np.array([0, 1, 2, 4], dtype=np.uint8)
    in_file = from_canonical(canonical, "brats2023")
    np.testing.assert_array_equal(in_file, [0, 1, 2, 3])
    np.testing.assert_array_equal(to_canonical(in_file, "brats2023"), canonical)
    np.testing.assert_array_equal(to_canonical(canonical, "brats2020"), canonical)


def test_2021_labels_are_the_2020_values():
    # BraTS 2021 still labels enhancing tumour 4; 3 only from BraTS 2023 on
    canonical = np.array([0, 1, 2, 4], dtype=np.uint8)
    np.testing.assert_array_equal(from_canonical(canonical, "brats2021"), canonical)
    np.testing.assert_array_equal(to_canonical(canonical, "brats2021"), canonical)


def test_unknown_convention():
    with pytest.raises(ValueError, match="unknown label convention"):
        to_canonical(np.zeros(2), "brats2019")


def test_regions_sort_wt_tc_et_first_then_others_by_name():
    assert ordered_regions(["ET", "necrosis", "WT", "ET", "cavity", "TC"]) == [
        "WT", "TC", "ET", "cavity", "necrosis"]
    assert [region_rank(r) for r in ("WT", "TC", "ET", "other")] == [0, 1, 2, 3]
