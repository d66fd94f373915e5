"""Training loss and per-epoch Dice metrics for region (WT, TC, ET) outputs.

Tensors are channels last, ``(batch, *spatial, region)``; predictions are
sigmoid probabilities in [0, 1] (what :mod:`brats_unet.models.unets` outputs),
targets are 0/1 region masks. All arithmetic is float32, whatever the dtype
policy. Only ``keras.ops`` is used, so this runs on any Keras back end.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from brats_unet.labels import REGIONS

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before the logarithms.
EPSILON = 1e-7


def _spatial_axes(x) -> tuple[int, ...]:
    return tuple(range(1, len(x.shape) - 1))


def soft_dice(y_true, y_pred, smooth: float = 1e-5, over_batch: bool = False):
    """Soft Dice per sample and channel, shape ``(batch, channel)``, or per channel over the batch.

    ``(2 * sum(t * p) + smooth) / (sum(t) + sum(p) + smooth)`` over the spatial
    axes, and also over the samples when ``over_batch`` (shape ``(channel,)``);
    ``smooth`` makes a channel empty in both target and prediction score 1.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    axes = ((0,) if over_batch else ()) + _spatial_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    denominator = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * intersection + smooth) / (denominator + smooth)


def binary_cross_entropy(y_true, y_pred, from_logits: bool = False):
    """Mean binary cross-entropy per sample over voxels and channels, shape ``(batch,)``.

    With ``from_logits`` the stable form ``max(x, 0) - x t + log(1 + exp(-|x|))``
    is used: its gradient ``sigmoid(x) - t`` never vanishes, whereas on clipped
    probabilities a saturated sigmoid (exactly 0 or 1 in float32) stops learning.
    """
    y_true = ops.cast(y_true, "float32")
    if from_logits:
        x = ops.cast(y_pred, "float32")
        bce = ops.relu(x) - x * y_true + ops.log1p(ops.exp(-ops.abs(x)))
    else:
        y_pred = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0 - EPSILON)
        bce = -(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))
    return ops.mean(bce, axis=tuple(range(1, len(bce.shape))))


@keras.saving.register_keras_serializable(package="brats_unet")
class SoftDiceBCELoss(keras.losses.Loss):
    """``dice_weight * (1 - mean soft Dice) + bce_weight * mean BCE``.

    Dice is taken per region channel (:func:`soft_dice`) and averaged over
    channels, either per sample or, with ``batch_dice``, over the whole batch
    pooled (as nnU-Net does): a patch without tumour then does not ask for an
    all-zero channel on its own, which with per-sample Dice drags thin regions
    such as the enhancing rim towards predicting nothing. The per-sample values
    are reduced over the batch by ``reduction`` (a mean by default).

    Args:
        dice_weight: weight of the Dice term.
        bce_weight: weight of the binary cross-entropy term.
        smooth: Dice smoothing constant, added to numerator and denominator.
        batch_dice: pool the Dice sums over the batch.
        from_logits: ``y_pred`` are logits (training uses the model's ``logits``
            layer, see :func:`brats_unet.models.unets.logits_model`), not probabilities.
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        bce_weight: float = 1.0,
        smooth: float = 1e-5,
        batch_dice: bool = False,
        from_logits: bool = False,
        name: str = "soft_dice_bce",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.dice_weight = dice_weight
        self.bce_weight = bce_weight
        self.smooth = smooth
        self.batch_dice = batch_dice
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        probabilities = ops.sigmoid(ops.cast(y_pred, "float32")) if self.from_logits else y_pred
        # Over the batch: a scalar, broadcast onto every sample's BCE.
        dice = soft_dice(y_true, probabilities, self.smooth, over_batch=self.batch_dice)
        dice_loss = 1.0 - ops.mean(dice, axis=-1)
        bce = binary_cross_entropy(y_true, y_pred, from_logits=self.from_logits)
        return self.dice_weight * dice_loss + self.bce_weight * bce

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            dice_weight=self.dice_weight, bce_weight=self.bce_weight, smooth=self.smooth,
            batch_dice=self.batch_dice, from_logits=self.from_logits,
        )
        return config


def hard_dice_counts(y_true, y_pred, threshold: float = 0.5, sample_weight=None):
    """``(sum |A ∩ B|, sum |A| + |B|)`` over all samples and voxels of one channel.

    ``y_true`` and ``y_pred`` are ``(batch, *spatial)``; the prediction is
    binarised as ``y_pred > threshold``. ``sample_weight``, if given, is one
    weight per sample. Returns two float32 scalars.
    """
    true = ops.cast(ops.greater(ops.cast(y_true, "float32"), 0.5), "float32")
    pred = ops.cast(ops.greater(ops.cast(y_pred, "float32"), threshold), "float32")
    if sample_weight is not None:
        weight = ops.reshape(
            ops.cast(sample_weight, "float32"), (-1,) + (1,) * (len(pred.shape) - 1)
        )
        true = true * weight
        pred = pred * weight
    return ops.sum(true * pred), ops.sum(true) + ops.sum(pred)


@keras.saving.register_keras_serializable(package="brats_unet")
class RegionDice(keras.metrics.Metric):
    """Hard Dice of one region channel, accumulated over an epoch.

    ``2 * sum |A ∩ B| / sum (|A| + |B|)`` with the sums over every voxel seen
    since the last reset: the Dice of the epoch's data pooled, not a mean of
    per-batch Dice values. When neither target nor prediction has a single
    positive voxel the result is 1.0 (nothing to find and nothing found).

    Args:
        region: one of :data:`brats_unet.labels.REGIONS`; picks the channel.
        threshold: a voxel is predicted positive when its probability exceeds it.
        from_logits: ``y_pred`` are logits; the threshold applies to ``sigmoid(y_pred)``.
        name: defaults to ``"dice_<region>"``, e.g. ``"dice_wt"``.
    """

    def __init__(self, region: str = "WT", threshold: float = 0.5, from_logits: bool = False,
                 name: str | None = None, **kwargs):
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; expected one of {REGIONS}")
        super().__init__(name=name or f"dice_{region.lower()}", **kwargs)
        self.region = region
        self.channel = REGIONS.index(region)
        self.threshold = threshold
        self.from_logits = from_logits
        # sigmoid(x) > t  <=>  x > log(t / (1 - t))
        self._cut = math.log(threshold / (1.0 - threshold)) if from_logits else threshold
        self.intersection = self.add_variable(shape=(), initializer="zeros", name="intersection")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        intersection, total = hard_dice_counts(
            y_true[..., self.channel], y_pred[..., self.channel], self._cut, sample_weight
        )
        self.intersection.assign_add(intersection)
        self.total.assign_add(total)

    def result(self):
        # The maximum only guards the branch that where() discards.
        dice = 2.0 * self.intersection / ops.maximum(self.total, 1e-12)
        return ops.where(self.total > 0, dice, 1.0)

    def reset_state(self):
        self.intersection.assign(0.0)
        self.total.assign(0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "region": self.region, "threshold": self.threshold,
                "from_logits": self.from_logits}


def region_dice_metrics(threshold: float = 0.5, from_logits: bool = False) -> list[RegionDice]:
    """One :class:`RegionDice` per region, in channel order: dice_wt, dice_tc, dice_et."""
    return [RegionDice(region, threshold, from_logits=from_logits) for region in REGIONS]
