"""Whole-case prediction: window tiling, blending, 2D slices, mirroring, labels, written files."""

from __future__ import annotations

import keras
import nibabel as nib
import numpy as np
import pytest

from brats_unet.data.subjects import CONTRASTS, discover_subjects
from brats_unet.data.validation import load_subject
from brats_unet.inference.predict import (
    axis_starts,
    gaussian_importance,
    predict_case,
    predict_slices_2d,
    probabilities_to_labels,
    segment_case,
    sliding_window_3d,
    window_starts,
    write_probabilities,
    write_segmentation,
)
from brats_unet.models.unets import LOGITS_LAYER, build_model
from brats_unet.preprocessing.cases import preprocess_subject

from builders import AFFINE, write_subject

SMALL = {"base_filters": 4, "depth": 3}  # size divisor 4
ODD = (13, 21, 17)


def _image(shape=ODD, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape + (4,)).astype(np.float32)


def _pointwise(spatial_dims: int) -> keras.Model:
    """Only 1x1(x1) convolutions: each voxel's output depends on that voxel alone,
    so no tiling, padding or flip can change it."""
    conv = (keras.layers.Conv2D, keras.layers.Conv3D)[spatial_dims - 2]
    x = inputs = keras.Input((None,) * spatial_dims + (4,))
    x = conv(6, 1, activation="relu")(x)
    outputs = conv(3, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def _whole(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x[None], training=False))[0]


@pytest.fixture(scope="module")
def unet3d():
    keras.utils.set_random_seed(0)
    return build_model("unet3d", **SMALL)


@pytest.fixture(scope="module")
def unet2d():
    keras.utils.set_random_seed(0)
    return build_model("unet2d", **SMALL)


# --- windows and weights ---------------------------------------------------------------

@pytest.mark.parametrize("size, patch, overlap", [(21, 8, 0.5), (17, 8, 0.5), (16, 8, 0.0),
                                                  (13, 8, 0.9), (100, 32, 0.25)])
def test_windows_cover_every_voxel_and_end_flush(size, patch, overlap):
    starts = axis_starts(size, patch, overlap)
    covered = np.zeros(size, int)
    for s in starts:
        covered[s:s + patch] += 1
    assert starts[0] == 0 and starts[-1] + patch == size
    assert covered.min() >= 1 and starts == sorted(set(starts))
    # as many windows as the nominal step gives, none further apart than it
    step = max(1.0, patch * (1 - overlap))
    assert len(starts) == int(np.ceil((size - patch) / step)) + 1
    assert max(np.diff(starts)) <= step


def test_window_starts_combine_the_axes_and_a_small_axis_gets_one_window():
    assert axis_starts(16, 8, 0.0) == [0, 8]
    assert axis_starts(5, 8, 0.5) == [0] and axis_starts(8, 8, 0.5) == [0]
    starts = window_starts((5, 12, 8), (8, 8, 8), 0.5)
    assert starts == [(0, 0, 0), (0, 4, 0)]
    with pytest.raises(ValueError):
        axis_starts(10, 4, 1.0)


def test_gaussian_weights_peak_at_the_centre_and_are_positive():
    odd = gaussian_importance((9, 7, 5))
    assert odd.dtype == np.float32 and odd.max() == 1.0
    assert np.unravel_index(odd.argmax(), odd.shape) == (4, 3, 2)
    even = gaussian_importance((8, 6))
    assert (even[3:5, 2:4] == even.max()).all()  # the central plateau
    for weights in (odd, even, gaussian_importance((64, 64, 64))):
        assert weights.min() > 0
        np.testing.assert_array_equal(weights, weights[::-1, ::-1])  # mirror-symmetric


# --- predicting ------------------------------------------------------------------------

def test_one_window_equals_the_whole_padded_volume_pass(unet3d):
    x = _image()
    padded_shape = (16, 24, 20)  # ODD rounded up to the divisor 4
    padded = np.pad(x, [(0, p - s) for p, s in zip(padded_shape, ODD)] + [(0, 0)])
    expected = _whole(unet3d, padded)[:13, :21, :17]
    got = sliding_window_3d(unet3d, x, patch_size=padded_shape, overlap=0.5)
    assert got.shape == ODD + (3,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    whole = predict_case(unet3d, x, spatial_dims=3, patch_size=None)
    np.testing.assert_allclose(whole, expected, atol=1e-5)


def test_patch_not_a_multiple_of_the_divisor_is_refused(unet3d):
    with pytest.raises(ValueError, match="multiple of 4"):
        sliding_window_3d(unet3d, _image(), patch_size=(8, 8, 6))


@pytest.mark.parametrize("patch", [(8, 16, 8), (16, 8, 8), (4, 32, 32)])
@pytest.mark.parametrize("gaussian", [True, False])
def test_overlapping_windows_of_a_pointwise_model_equal_the_whole_pass(patch, gaussian):
    model, x = _pointwise(3), _image()
    got = sliding_window_3d(model, x, patch_size=patch, overlap=0.5, batch_size=3,
                            gaussian=gaussian)
    np.testing.assert_allclose(got, _whole(model, x), atol=1e-5)


def test_slices_2d_equal_each_slice_alone(unet2d):
    model, x = _pointwise(2), _image()
    got = predict_slices_2d(model, x, batch_size=5)  # 13 slices: a short last batch
    expected = np.stack([_whole(model, s) for s in x])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # a real U-Net: each slice padded to the divisor 4 (21 x 17 -> 24 x 20) and cropped back
    got = predict_case(unet2d, x, spatial_dims=2, batch_size=4)
    assert got.shape == ODD + (3,)
    for z in (0, 12):
        expected = _whole(unet2d, np.pad(x[z], [(0, 3), (0, 3), (0, 0)]))[:21, :17]
        np.testing.assert_allclose(got[z], expected, atol=1e-5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_mirroring_a_pointwise_model_changes_nothing(spatial_dims):
    model, x = _pointwise(spatial_dims), _image()
    options = {"patch_size": (8, 8, 8)} if spatial_dims == 3 else {}
    plain = predict_case(model, x, spatial_dims=spatial_dims, **options)
    mirrored = predict_case(model, x, spatial_dims=spatial_dims, mirror=True, **options)
    np.testing.assert_allclose(mirrored, plain, atol=1e-5)


def test_mirroring_a_unet_averages_the_flips(unet3d, unet2d):
    x = _image()
    for model, dims, flips in ((unet3d, 3, 8), (unet2d, 2, 4)):
        got = predict_case(model, x, spatial_dims=dims, patch_size=(16, 24, 20), mirror=True)
        assert got.shape == ODD + (3,) and got.dtype == np.float32
        assert got.min() >= 0 and got.max() <= 1
        assert not np.allclose(got, predict_case(model, x, spatial_dims=dims,
                                                 patch_size=(16, 24, 20)), atol=1e-5)
    # 3D by hand: the mean over the 8 flips of the whole padded volume
    padded = np.pad(x, [(0, 3), (0, 3), (0, 3), (0, 0)])
    flips = [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    expected = np.mean([np.flip(_whole(unet3d, np.flip(padded, a)), a) for a in flips], axis=0)
    got = predict_case(unet3d, x, spatial_dims=3, patch_size=None, mirror=True)
    np.testing.assert_allclose(got, expected[:13, :21, :17], atol=1e-5)


# --- labels ----------------------------------------------------------------------------

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
