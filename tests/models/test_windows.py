"""How a model sees a whole case: window tiling, Gaussian blending, 2D slices, mirroring."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from brats_unet.models.unets import build_model
from brats_unet.models.windows import (
    axis_starts,
    gaussian_importance,
    predict_case,
    predict_slices_2d,
    sliding_window_3d,
    window_starts,
)

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
