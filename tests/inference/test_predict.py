"""Whole-case prediction: labels from probabilities, written files in the input's geometry."""

from __future__ import annotations

import keras
import nibabel as nib
import numpy as np
import pytest

from brats_unet.data.subjects import CONTRASTS, discover_subjects
from brats_unet.data.validation import load_subject
from brats_unet.inference.predict import (
    probabilities_to_labels,
    segment_case,
    write_probabilities,
    write_segmentation,
)
from brats_unet.models.unets import LOGITS_LAYER, build_model
from brats_unet.preprocessing.cases import preprocess_subject

from builders import AFFINE, write_subject

SMALL = {"base_filters": 4, "depth": 3}  # size divisor 4


@pytest.fixture(scope="module")
def unet3d():
    keras.utils.set_random_seed(0)
    return build_model("unet3d", **SMALL)


def test_thresholds_enforce_the_brats_nesting():
    probabilities = np.array([[
        [0.1, 0.1, 0.1],  # nothing -> 0
        [0.9, 0.1, 0.1],  # WT only -> oedema 2
        [0.9, 0.8, 0.1],  # WT and TC -> core 1
        [0.9, 0.8, 0.7],  # all -> ET 4
        [0.1, 0.1, 0.9],  # ET alone still means ET (within TC within WT)
        [0.2, 0.6, 0.1],  # TC without WT -> core 1
    ]], np.float32)
    labels = probabilities_to_labels(probabilities)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, [[0, 2, 1, 4, 4, 1]])
    # one threshold per region
    np.testing.assert_array_equal(probabilities_to_labels(probabilities, (0.5, 0.5, 0.75)),
                                  [[0, 2, 1, 1, 4, 1]])


def test_small_enhancing_tumour_becomes_core():
    probabilities = np.zeros((2, 3, 3), np.float32)
    probabilities[0] = [0.9, 0.1, 0.1]
    probabilities[1] = [0.9, 0.9, 0.9]
    probabilities[1, 0] = [0.9, 0.9, 0.1]  # 2 ET voxels, 1 core voxel, 3 oedema
    assert (probabilities_to_labels(probabilities, min_et_voxels=2) == 4).sum() == 2
    relabelled = probabilities_to_labels(probabilities, min_et_voxels=3)
    np.testing.assert_array_equal(relabelled, [[2, 2, 2], [1, 1, 1]])
    assert (probabilities_to_labels(probabilities, min_et_voxels=0) == 4).sum() == 2


# --- a whole case, written back ----------------------------------------------------------

SHAPE = (37, 41, 23)
BRAIN = (slice(3, 30), slice(5, 36), slice(2, 20))  # crop (27, 31, 18) -> storage (18, 31, 27)


def _untrained(model: keras.Model) -> keras.Model:
    # logits start near -4 (tumour prior); 0 makes thresholds at 0.5 give every label
    model.get_layer(LOGITS_LAYER).bias.assign(np.zeros(3, np.float32))
    return model


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(3)
    images = {}
    for contrast in CONTRASTS:
        volume = np.zeros(SHAPE, np.int16)
        volume[BRAIN] = rng.integers(100, 1000, size=(27, 31, 18))
        images[contrast] = volume
    folder = write_subject(root, "BraTS20_Training_001", images, with_label=False)
    (files,) = discover_subjects(root).subjects
    return preprocess_subject(load_subject(files)), folder / "BraTS20_Training_001_flair.nii.gz"


@pytest.mark.parametrize("name, spatial_dims", [("unet3d", 3), ("unet2d", 2)])
def test_segmentation_file_has_the_input_geometry(case, tmp_path, name, spatial_dims):
    pre, input_file = case
    assert pre.image.shape == (18, 31, 27, 4)
    keras.utils.set_random_seed(1)
    model = _untrained(build_model(name, **SMALL))
    labels, probabilities = segment_case(
        model, pre.image, pre.properties, spatial_dims=spatial_dims, patch_size=(16, 32, 16),
        overlap=0.5, batch_size=2, mirror=False, threshold=0.5, min_et_voxels=0)
    assert probabilities.shape == (18, 31, 27, 3) and probabilities.dtype == np.float32
    assert labels.shape == SHAPE and labels.dtype == np.uint8
    reference = nib.load(input_file)
    outside = np.ones(SHAPE, bool)
    outside[BRAIN] = False
    for convention, allowed in (("brats2020", {0, 1, 2, 4}), ("brats2021", {0, 1, 2, 4}),
                                ("brats2023", {0, 1, 2, 3})):
        path = tmp_path / f"{convention}.nii.gz"
        write_segmentation(labels, pre.properties, path, label_convention=convention)
        written = nib.load(path)
        voxels = np.asanyarray(written.dataobj)
        assert written.shape == SHAPE and np.issubdtype(voxels.dtype, np.integer)
        assert np.array_equal(written.affine, reference.affine)
        np.testing.assert_allclose(written.affine, AFFINE, rtol=1e-6)
        assert written.header.get_zooms() == reference.header.get_zooms()
        assert set(np.unique(voxels)) <= allowed and len(np.unique(voxels[BRAIN])) >= 3
        assert not voxels[outside].any()
    np.testing.assert_array_equal(voxels == 3, labels == 4)


def test_probabilities_file_is_4d_in_the_input_space(case, tmp_path, unet3d):
    pre, input_file = case
    _, probabilities = segment_case(unet3d, pre.image, pre.properties, spatial_dims=3,
                                    patch_size=(16, 32, 16))
    path = tmp_path / "probabilities.nii.gz"
    write_probabilities(probabilities, pre.properties, path)
    written = nib.load(path)
    assert written.shape == SHAPE + (3,) and written.get_data_dtype() == np.float32
    assert np.array_equal(written.affine, nib.load(input_file).affine)
    data = np.asanyarray(written.dataobj)
    # storage (k, j, i) back to (i, j, k) at the crop
    np.testing.assert_array_equal(data[3:30, 5:36, 2:20], probabilities.transpose(2, 1, 0, 3))
