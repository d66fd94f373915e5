"""U-Net builders: shapes, dtypes, save/load, learning on toy data (on the other Keras back ends
too: tests/test_backends.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from brats_unet.models.unets import (
    MODEL_NAMES,
    UNet,
    build_model,
    count_trainable_parameters,
    logits_model,
    resolve_data_format,
    with_data_format,
)
from brats_unet.training.losses import SoftDiceBCELoss, region_dice_metrics

SMALL = {"base_filters": 4, "depth": 3}
INPUT_SHAPES = {"unet2d": (1, 32, 32, 4), "unet3d": (1, 16, 32, 32, 4), "resunet3d": (1, 16, 32, 32, 4)}


def _random_input(name: str) -> np.ndarray:
    return np.random.default_rng(0).normal(size=INPUT_SHAPES[name]).astype("float32")


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_shape_and_range(name):
    model = build_model(name, **SMALL)
    x = _random_input(name)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == x.shape[:-1] + (3,)
    assert y.dtype == np.float32
    assert np.all((y >= 0) & (y <= 1))
    assert model.name == name
    # Any size divisible by 2 ** (depth - 1) = 4 goes through.
    other = (2, 24, 40, 4) if name == "unet2d" else (1, 8, 12, 20, 4)
    assert tuple(model(np.zeros(other, "float32")).shape) == other[:-1] + (3,)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_float32_under_mixed_precision(name, mixed_float16):
    model = build_model(name, **SMALL, norm="instance")
    assert model.layers[1].compute_dtype == "float16"
    y = model(_random_input(name), training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"


def test_variants_differ_only_where_declared():
    plain = build_model("unet3d", **SMALL)
    residual = build_model("resunet3d", **SMALL)
    assert (plain.spatial_dims, plain.residual) == (3, False)
    assert (residual.spatial_dims, residual.residual) == (3, True)
    assert build_model("unet2d", **SMALL).spatial_dims == 2
    assert residual.norm == plain.norm == "batch"


def test_norm_momentum_reaches_every_batch_norm():
    model = build_model("resunet3d", **SMALL, norm_momentum=0.9)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    assert any("proj_norm" in layer.name for layer in norms)  # the shortcut's too
    default = build_model("unet3d", **SMALL)
    assert {layer.momentum for layer in default.layers
            if isinstance(layer, keras.layers.BatchNormalization)} == {0.99}


def test_build_model_rejects_unknown_name_and_clashes():
    with pytest.raises(ValueError, match="unet2d"):
        build_model("vnet")
    with pytest.raises(ValueError, match="spatial_dims"):
        build_model("unet2d", spatial_dims=3)
    with pytest.raises(ValueError, match="norm"):
        UNet(spatial_dims=3, norm="layer")


def test_count_trainable_parameters():
    model = UNet(spatial_dims=2, base_filters=4, depth=2, norm="none")
    # By hand: enc0 (4->4, 4->4), enc1 (4->8, 8->8), up (8->4, k2), dec0 (8->4, 4->4), head 4->3.
    conv = lambda k, c_in, c_out: k * c_in * c_out + c_out  # noqa: E731
    expected = (
        conv(9, 4, 4) + conv(9, 4, 4)
        + conv(9, 4, 8) + conv(9, 8, 8)
        + conv(4, 8, 4)
        + conv(9, 8, 4) + conv(9, 4, 4)
        + conv(1, 4, 3)
    )
    assert count_trainable_parameters(model) == expected == model.count_params()
    # BatchNorm's moving statistics are weights but not trainable.
    batch = UNet(spatial_dims=2, base_filters=4, depth=2)
    assert count_trainable_parameters(batch) < batch.count_params()


@pytest.mark.parametrize(
    "name, options",
    [("unet2d", {}), ("resunet3d", {"norm": "instance", "dropout": 0.1}),
     ("unet3d", {"norm_momentum": 0.9})],
)
def test_save_load_round_trip(tmp_path, name, options):
    model = build_model(name, **SMALL, **options)
    model.compile(optimizer="adam", loss=SoftDiceBCELoss(dice_weight=0.5), metrics=region_dice_metrics())
    x = _random_input(name)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, UNet)
    assert loaded.get_config() == model.get_config()
    assert isinstance(loaded.loss, SoftDiceBCELoss) and loaded.loss.dice_weight == 0.5
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
    )
    y = (x[..., :3] > 0).astype("float32")
    scores = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert scores == pytest.approx(model.evaluate(x, y, verbose=0, return_dict=True))
    assert set(scores) == {"loss", "dice_wt", "dice_tc", "dice_et"}


@pytest.mark.parametrize("name, options", [("unet2d", {}), ("resunet3d", {"norm": "instance"})])
def test_channels_first_computes_the_same_function_and_saves_channels_last(tmp_path, name,
                                                                            options):
    last = build_model(name, **SMALL, **options)
    first = with_data_format(last, "channels_first")
    assert first.data_format == "channels_first" and first.get_config()["data_format"] == (
        "channels_first")
    assert first.get_layer("to_channels_first") is not None
    # the same weights, in and out channels last: the same probabilities, logits and loss view
    x = _random_input(name)
    np.testing.assert_allclose(first.predict_on_batch(x), last.predict_on_batch(x), atol=1e-5)
    assert logits_model(first).output.shape == logits_model(last).output.shape
    back = with_data_format(first, "channels_last")
    assert back.get_config() == last.get_config() and with_data_format(back, "channels_last") is back
    path = tmp_path / "m.keras"
    back.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict_on_batch(x), first.predict_on_batch(x), atol=1e-5)


def test_unknown_data_format_is_refused():
    assert resolve_data_format("auto", "torch") == "channels_first"
    assert resolve_data_format("auto", "tensorflow") == resolve_data_format("auto", "jax") == (
        "channels_last")
    assert resolve_data_format("channels_last", "torch") == "channels_last"
    with pytest.raises(ValueError, match="data_format must be one of"):
        build_model("unet3d", **SMALL, data_format="NCDHW")
    with pytest.raises(ValueError, match="data_format must be auto or one of"):
        resolve_data_format("channels_middle", "torch")


def _spheres(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Toy cases: nested balls (WT > TC > ET) that raise channels 0, 1, 2, plus noise."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1)
    x = rng.normal(scale=0.3, size=(n, *shape, 4)).astype("float32")
    y = np.zeros((n, *shape, 3), dtype="float32")
    for i in range(n):
        centre = rng.uniform(0.35, 0.65, size=len(shape)) * np.array(shape)
        distance = np.linalg.norm(grid - centre, axis=-1)
        radius = rng.uniform(0.2, 0.3) * min(shape[-2:])
        for channel, fraction in enumerate((1.0, 0.6, 0.3)):
            y[i, ..., channel] = distance < fraction * radius
        x[i, ..., :3] += y[i]
    return x, y


@pytest.mark.parametrize(
    "name, shape, n_cases, steps",
    [("unet3d", (16, 32, 32), 3, 40), ("resunet3d", (16, 32, 32), 3, 40), ("unet2d", (32, 32), 8, 30)],
)
def test_model_learns_toy_regions(name, shape, n_cases, steps):
    keras.utils.set_random_seed(0)
    x, y = _spheres(n_cases, shape, seed=1)
    model = build_model(name, base_filters=8, depth=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SoftDiceBCELoss(), metrics=region_dice_metrics())
    # One full batch per epoch, so the last epoch's Dice is that of the last step.
    history = model.fit(x, y, batch_size=n_cases, epochs=steps, verbose=0)
    assert history.history["dice_wt"][-1] > 0.8
    assert history.history["loss"][-1] < history.history["loss"][0]
