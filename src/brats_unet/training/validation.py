"""Validation at each epoch's end: every validation case whole, as prediction sees it, in no
more memory than a training step.

The model segments each validation case over its whole brain crop with the same code as
prediction (:func:`brats_unet.models.windows.predict_case`). A forward pass holds at most as
many input voxels as a training batch (``batch_size`` x the patch): validation then never
needs more memory than training does, whatever the cases' size (a case at 240 x 240 x 155
and 1 mm is some 3.5 million voxels in its crop; a batch of 2 patches of 64 x 96 x 96, 1.2
million).

- 3D: a case that fits is one window; a bigger one is cut into the fewest windows that fit,
  each at least the training patch where the case allows, blended with Gaussian weights
  (:func:`validation_window`).
- 2D: every axial slice of the crop, whole, as many per pass as fit, at least one
  (:func:`slices_per_pass`).

Dice is hard (probability > 0.5) and pooled per region over every validation voxel, as
:class:`brats_unet.training.losses.RegionDice` pools: ``2 sum |A n B| / sum (|A| + |B|)``, 1.0
where neither truth nor prediction has a voxel of the region.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from brats_unet.labels import REGIONS
from brats_unet.models.windows import _round_up, predict_case
from brats_unet.training.patches import open_labelled_case, region_targets


def validation_window(shape: Sequence[int], patch: Sequence[int], max_voxels: int,
                      divisor: int) -> tuple[int, ...]:
    """The 3D window validation passes a case of ``shape`` (Z, Y, X) through.

    The case itself (each size rounded up to ``divisor``) when it holds at most
    ``max_voxels``; else the axis with the largest window is cut into one more
    part, again and again, until a window fits. No cut takes an axis below the
    training ``patch`` (or the case, where that is smaller); when no axis can be cut
    any more, the patch is the window (it fits: ``max_voxels`` is a batch of patches).
    """
    parts = [1, 1, 1]

    def size(axis: int, n: int) -> int:
        return _round_up(math.ceil(shape[axis] / n), divisor)

    def window() -> list[int]:
        return [size(a, n) for a, n in enumerate(parts)]

    while math.prod(window()) > max_voxels:
        cuttable = [a for a in range(3)
                    if size(a, parts[a] + 1) >= min(patch[a], size(a, 1))
                    and size(a, parts[a] + 1) < size(a, parts[a])]
        if not cuttable:
            return tuple(int(p) for p in patch)
        parts[max(cuttable, key=lambda a: size(a, parts[a]))] += 1
    return tuple(window())


def slices_per_pass(slice_shape: Sequence[int], max_voxels: int, divisor: int) -> int:
    """How many whole axial slices (each padded to ``divisor``) one 2D pass holds: at least 1."""
    voxels = math.prod(_round_up(s, divisor) for s in slice_shape)
    return max(1, max_voxels // voxels)


def pooled_dice(intersections: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Per region ``2 * intersection / total``; 1.0 where the total is 0."""
    intersections, totals = np.asarray(intersections, float), np.asarray(totals, float)
    return np.where(totals > 0, 2.0 * intersections / np.maximum(totals, 1e-12), 1.0)


class CaseValidation(keras.callbacks.Callback):
    """Adds ``val_dice_wt``, ``val_dice_tc``, ``val_dice_et`` and ``validation_seconds`` to the
    epoch logs, from ``model`` segmenting every case of ``case_dirs`` whole.

    ``model`` is the sigmoid model (the one saved; it shares its layers with the one fitted).
    ``patch_size`` and ``batch_size`` are the training patch and batch: one pass holds at
    most ``batch_size`` x the patch's voxels. ``divisor``: the model's size divisor.
    """

    def __init__(self, model: keras.Model, case_dirs: Sequence[str | Path], *,
                 spatial_dims: int, patch_size: Sequence[int], batch_size: int, divisor: int,
                 threshold: float = 0.5):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(patch_size) != spatial_dims:
            raise ValueError(f"a {spatial_dims}D patch needs {spatial_dims} sizes, got "
                             f"{list(patch_size)}")
        if not case_dirs:
            raise ValueError("validation needs at least one case")
        self.to_predict = model
        self.case_dirs = [Path(d) for d in case_dirs]
        self.spatial_dims = spatial_dims
        self.patch_size = tuple(int(p) for p in patch_size)
        self.max_voxels = int(batch_size) * math.prod(self.patch_size)
        self.divisor = int(divisor)
        self.threshold = float(threshold)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """WT, TC, ET probabilities of one case's ``image`` (Z, Y, X, C), whole."""
        shape = image.shape[:3]
        if self.spatial_dims == 2:
            return predict_case(self.to_predict, image, spatial_dims=2, divisor=self.divisor,
                                batch_size=slices_per_pass(shape[1:], self.max_voxels,
                                                           self.divisor))
        window = validation_window(shape, self.patch_size, self.max_voxels, self.divisor)
        per_pass = max(1, self.max_voxels // math.prod(window))
        return predict_case(self.to_predict, image, spatial_dims=3, patch_size=window,
                            overlap=0.0, batch_size=per_pass, divisor=self.divisor)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        start = time.perf_counter()
        intersections, totals = np.zeros(len(REGIONS)), np.zeros(len(REGIONS))
        for case_dir in self.case_dirs:
            image, label = open_labelled_case(case_dir)
            predicted = self.probabilities(np.asarray(image)) > self.threshold
            truth = region_targets(np.asarray(label)) > 0.5
            axes = tuple(range(truth.ndim - 1))
            intersections += np.count_nonzero(predicted & truth, axis=axes)
            totals += np.count_nonzero(predicted, axis=axes) + np.count_nonzero(truth, axis=axes)
        for region, dice in zip(REGIONS, pooled_dice(intersections, totals)):
            logs[f"val_dice_{region.lower()}"] = float(dice)
        logs["validation_seconds"] = time.perf_counter() - start
