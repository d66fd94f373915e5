"""Soft Dice + BCE loss against numpy, and the epoch-accumulated region Dice metric."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from brats_unet.training.losses import (
    EPSILON,
    RegionDice,
    SoftDiceBCELoss,
    region_dice_metrics,
    soft_dice,
)


def _numpy_loss(y_true, y_pred, dice_weight=1.0, bce_weight=1.0, smooth=1e-5, batch_dice=False):
    y_true = y_true.astype(np.float64)
    y_pred = y_pred.astype(np.float64)
    axes = tuple(range(0 if batch_dice else 1, y_true.ndim - 1))
    dice = (2 * (y_true * y_pred).sum(axes) + smooth) / (y_true.sum(axes) + y_pred.sum(axes) + smooth)
    p = np.clip(y_pred, EPSILON, 1 - EPSILON)
    bce = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).mean()
    return dice_weight * (1 - dice.mean()) + bce_weight * bce


def _to_numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("shape", [(2, 5, 6, 3), (3, 4, 5, 6, 3)])
@pytest.mark.parametrize("weights", [(1.0, 1.0, 1e-5), (0.3, 2.0, 1.0)])
@pytest.mark.parametrize("batch_dice", [False, True])
def test_loss_matches_numpy(shape, weights, batch_dice):
    rng = np.random.default_rng(0)
    y_true = (rng.random(shape) < 0.3).astype("float32")
    y_pred = rng.random(shape).astype("float32")
    y_pred[0, 0] = 0.0  # exercises the clipping
    dice_weight, bce_weight, smooth = weights
    loss = SoftDiceBCELoss(dice_weight=dice_weight, bce_weight=bce_weight, smooth=smooth,
                           batch_dice=batch_dice)
    expected = _numpy_loss(y_true, y_pred, dice_weight, bce_weight, smooth, batch_dice)
    np.testing.assert_allclose(float(_to_numpy(loss(y_true, y_pred))), expected, atol=1e-5)


def test_loss_is_float32_for_float16_predictions():
    y = np.ones((1, 4, 4, 3), dtype="float32")
    value = SoftDiceBCELoss()(y, (y * 0.9).astype("float16"))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_soft_dice_per_sample_and_channel():
    y_true = np.zeros((2, 2, 2, 3), dtype="float32")
    y_true[0, 0, :, 0] = 1  # sample 0, WT: two voxels
    y_pred = y_true.copy()
    y_pred[0, 1, 0, 0] = 1  # one false positive: Dice 2*2 / (2 + 3) = 0.8
    dice = _to_numpy(soft_dice(y_true, y_pred, smooth=1e-12))
    assert dice.shape == (2, 3)
    np.testing.assert_allclose(dice[0, 0], 0.8, rtol=1e-6)
    # Empty in target and prediction: 1 by the smoothing convention.
    np.testing.assert_allclose(dice[1], 1.0)


def test_batch_dice_pools_samples():
    # Sample 0 holds the whole target and a perfect prediction; sample 1 is empty
    # with one false-positive voxel. Pooled: 2*2 / (2 + 3) = 0.8; per sample: 1 and ~0.
    y_true = np.zeros((2, 2, 2, 1), dtype="float32")
    y_true[0, 0, :, 0] = 1
    y_pred = y_true.copy()
    y_pred[1, 1, 1, 0] = 1
    pooled = _to_numpy(soft_dice(y_true, y_pred, smooth=1e-12, over_batch=True))
    np.testing.assert_allclose(pooled, [0.8], rtol=1e-6)
    per_sample = _to_numpy(soft_dice(y_true, y_pred, smooth=1e-12))
    np.testing.assert_allclose(per_sample[:, 0], [1.0, 0.0], atol=1e-6)


def test_loss_config_round_trip():
    loss = SoftDiceBCELoss(dice_weight=0.5, bce_weight=2.0, smooth=1e-3, batch_dice=True)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SoftDiceBCELoss)
    assert restored.get_config() == loss.get_config()


def _masks(wt, channel=0):
    """A (1, H, W, 3) array holding the 2D mask ``wt`` in ``channel``."""
    wt = np.asarray(wt, dtype="float32")
    out = np.zeros((1, *wt.shape, 3), dtype="float32")
    out[0, ..., channel] = wt
    return out


def test_metric_known_2x2_case():
    metric = RegionDice("WT")
    # |A| = 3, |B| = 2, |A ∩ B| = 2: Dice = 4 / 5.
    metric.update_state(_masks([[1, 1], [1, 0]]), _masks([[0.9, 0.6], [0.2, 0.1]]))
    assert metric.name == "dice_wt"
    np.testing.assert_allclose(float(_to_numpy(metric.result())), 0.8, rtol=1e-6)


def test_metric_pools_the_epoch_instead_of_averaging_batches():
    metric = RegionDice("WT")
    metric.update_state(_masks([[1, 0], [0, 0]]), _masks([[1, 0], [0, 0]]))  # batch Dice 1
    metric.update_state(_masks([[1, 1], [1, 0]]), _masks([[0, 0], [0, 0]]))  # batch Dice 0
    # Pooled: 2 * 1 / (2 + 3) = 0.4, not the batch mean 0.5.
    np.testing.assert_allclose(float(_to_numpy(metric.result())), 0.4, rtol=1e-6)
    metric.reset_state()
    metric.update_state(_masks([[0, 1], [0, 0]]), _masks([[0, 0], [0, 0]]))
    np.testing.assert_allclose(float(_to_numpy(metric.result())), 0.0)


def test_metric_empty_epoch_is_one():
    metric = RegionDice("ET")
    np.testing.assert_allclose(float(_to_numpy(metric.result())), 1.0)
    empty = _masks([[0, 0], [0, 0]])
    metric.update_state(empty, empty)
    np.testing.assert_allclose(float(_to_numpy(metric.result())), 1.0)


def test_metric_reads_its_channel_and_thresholds_strictly():
    y_true = _masks([[1, 1], [0, 0]], channel=1)
    # Exactly 0.5 counts as background.
    y_pred = _masks([[0.7, 0.5], [0, 0]], channel=1)
    tc, wt = RegionDice("TC"), RegionDice("WT")
    tc.update_state(y_true, y_pred)
    wt.update_state(y_true, y_pred)
    np.testing.assert_allclose(float(_to_numpy(tc.result())), 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(float(_to_numpy(wt.result())), 1.0)  # channel 0 empty in both


def test_metric_sample_weight_drops_samples():
    y_true = np.concatenate([_masks([[1, 1], [0, 0]]), _masks([[1, 0], [0, 0]])])
    y_pred = np.concatenate([_masks([[1, 1], [0, 0]]), _masks([[0, 0], [0, 1]])])
    metric = RegionDice("WT")
    metric.update_state(y_true, y_pred, sample_weight=np.array([1.0, 0.0]))
    np.testing.assert_allclose(float(_to_numpy(metric.result())), 1.0)


def test_region_dice_metrics_and_config():
    metrics = region_dice_metrics(threshold=0.4)
    assert [m.name for m in metrics] == ["dice_wt", "dice_tc", "dice_et"]
    restored = keras.metrics.deserialize(keras.metrics.serialize(metrics[2]))
    assert isinstance(restored, RegionDice)
    assert (restored.region, restored.threshold, restored.name) == ("ET", 0.4, "dice_et")
    with pytest.raises(ValueError, match="WT"):
        RegionDice("NCR")
