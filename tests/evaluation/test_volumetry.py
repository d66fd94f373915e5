"""Volumes from the header's pixdim, components and slice consistency, worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brats_unet.evaluation.volumetry import (
    axis_consistency,
    components,
    region_volumes_ml,
    resection_cavity_ml,
    volume_errors,
    voxel_volume_ml,
)
from brats_unet.labels import ENHANCING, RESECTION_CAVITY

PIXDIM = (1.2, 0.9, 3.0)


def test_voxel_volume_from_pixdim():
    assert voxel_volume_ml(PIXDIM) == pytest.approx(1.2 * 0.9 * 3.0 / 1000)
    assert voxel_volume_ml((1.0, 1.0, 1.0, 2.5)) == pytest.approx(0.001)  # time step ignored
    with pytest.raises(ValueError, match="three"):
        voxel_volume_ml((1.0, 1.0))


def test_volume_of_a_box_with_anisotropic_voxels():
    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[2:5, 3:7, 1:6] = 2  # 3 * 4 * 5 = 60 voxels
    volumes = region_volumes_ml(labels, PIXDIM)
    assert volumes["WT"] == pytest.approx(60 * 1.2 * 0.9 * 3.0 / 1000)  # 0.1944 ml
    assert volumes["TC"] == 0.0 and volumes["ET"] == 0.0


def test_region_volumes_of_a_small_label_map():
    labels = np.array([[[0, 1, 2, 2], [4, 4, 4, 2]]], dtype=np.uint8)
    volumes = region_volumes_ml(labels, (1.0, 2.0, 5.0))  # 10 mm³ = 0.01 ml a voxel
    assert list(volumes) == ["WT", "TC", "ET"]
    assert volumes["WT"] == pytest.approx(7 * 0.01)
    assert volumes["TC"] == pytest.approx(4 * 0.01)
    assert volumes["ET"] == pytest.approx(3 * 0.01)


def test_two_separated_blobs():
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[0:2, 0:2, 0:2] = True  # 8 voxels
    mask[5:8, 5:8, 5:8] = True  # 27 voxels
    assert components(mask) == (2, pytest.approx(27 / 35))


def test_corner_contact_is_one_component():
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # 26-connected through a corner
    assert components(mask) == (1, 1.0)


def test_components_of_an_empty_mask():
    n, share = components(np.zeros((3, 3, 3), dtype=bool))
    assert n == 0 and math.isnan(share)


def _stepped_shape():
    # Along k: slice 1 a 2x2 square, slice 2 a 3x3 square, slice 3 two pieces (1 + 4 voxels).
    mask = np.zeros((5, 5, 5), dtype=bool)
    mask[0:2, 0:2, 1] = True
    mask[0:3, 0:3, 2] = True
    mask[0, 0, 3] = True
    mask[3:5, 3:5, 3] = True
    return mask


def test_axis_consistency_of_a_stepped_shape():
    result = axis_consistency(_stepped_shape(), (1.0, 2.0, 3.0))
    assert list(result) == ["i", "j", "k"]
    # k slices: pixel area 1 * 2 mm², areas [8, 18, 10] mm², jumps 10 and 8;
    # components per slice 1, 1, 2.
    assert result["k"] == {"slices": 3, "max_area_mm2": 18.0,
                           "max_area_jump": pytest.approx(10 / 18), "component_changes": 1}
    # i slices: pixel area 2 * 3 mm², voxel counts [6, 5, 3, 2, 2] -> areas
    # [36, 30, 18, 12, 12] mm², largest jump 12; one component in every slice.
    assert result["i"] == {"slices": 5, "max_area_mm2": 36.0,
                           "max_area_jump": pytest.approx(12 / 36), "component_changes": 0}


def test_axis_consistency_counts_gaps_but_not_caps():
    mask = np.zeros((6, 4, 4), dtype=bool)
    mask[1:5, 1:3, 1:3] = True
    assert axis_consistency(mask, (1, 1, 1))["i"]["max_area_jump"] == 0.0  # a box is smooth
    mask[3] = False  # a missing slice inside the extent
    result = axis_consistency(mask, (1, 1, 1), names=("sagittal", "coronal", "axial"))
    assert result["sagittal"] == {"slices": 3, "max_area_mm2": 4.0, "max_area_jump": 1.0,
                                  "component_changes": 2}


def test_axis_consistency_of_an_empty_mask():
    result = axis_consistency(np.zeros((3, 3, 3), dtype=bool), PIXDIM)
    assert result["k"]["slices"] == 0 and math.isnan(result["k"]["max_area_jump"])


def test_volume_errors():
    assert volume_errors(10.0, 12.5) == {"error_ml": 2.5, "abs_error_ml": 2.5, "rel_error": 0.25}
    assert volume_errors(10.0, 7.5)["abs_error_ml"] == 2.5
    assert volume_errors(10.0, 7.5)["rel_error"] == -0.25
    errors = volume_errors(0.0, 3.0)
    assert errors["error_ml"] == 3.0 and math.isnan(errors["rel_error"])


def test_the_resection_cavity_volume_counts_only_its_own_label():
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[0, :2, :] = RESECTION_CAVITY  # 8 voxels
    labels[3, 3, 3] = ENHANCING
    assert resection_cavity_ml(labels, (2.0, 1.0, 1.5)) == pytest.approx(8 * 3.0 / 1000)
    assert resection_cavity_ml(np.zeros((2, 2, 2)), (1, 1, 1)) == 0.0
