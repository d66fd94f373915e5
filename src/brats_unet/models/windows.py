"""How a model sees a whole case: sliding windows (3D), slice by slice (2D), mirroring.

Used alike by validation during training (:mod:`brats_unet.training.validation`) and by
prediction (:mod:`brats_unet.inference.predict`), so the checkpoint is chosen on what
prediction does. Axis order, as in :mod:`brats_unet.preprocessing.cases`: an ``image`` is
float32 ``(Z, Y, X, C)`` = storage axes ``(k, j, i, channel)`` over the brain crop;
probabilities are float32 ``(Z, Y, X, 3)`` with the regions of
:data:`brats_unet.labels.REGIONS` (WT, TC, ET) on the last axis.

Only numpy and Keras' public API are used, so it runs on every Keras back end.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import keras
import numpy as np

#: Lowest Gaussian weight, relative to the peak: window corners still count a little,
#: so every voxel of the volume has a positive weight sum.
MIN_WEIGHT = 1e-4
DEFAULT_BATCH_SIZE = {2: 16, 3: 2}


def gaussian_importance(patch_size: Sequence[int], sigma_scale: float = 0.125,
                        min_weight: float = MIN_WEIGHT) -> np.ndarray:
    """nnU-Net's blending weights: a Gaussian centred on the patch.

    Args:
        patch_size: window size in voxels, one entry per spatial axis (any order).
        sigma_scale: standard deviation along each axis as a fraction of the
            patch size along it (nnU-Net: 1/8).
        min_weight: floor of the weights (peak = 1), so no voxel gets weight 0.

    Returns:
        float32 array of shape ``patch_size``, maximum 1 at the centre, all
        values in ``[min_weight, 1]``. Centred at ``(n - 1) / 2`` so the map is
        mirror-symmetric (even sizes have a plateau of 2 voxels per axis).
    """
    weights = np.ones((), dtype=np.float64)
    for n in patch_size:
        centre = (n - 1) / 2
        sigma = max(n * sigma_scale, 1e-6)
        profile = np.exp(-0.5 * ((np.arange(n) - centre) / sigma) ** 2)
        weights = np.multiply.outer(weights, profile)
    weights /= weights.max()
    return np.maximum(weights, min_weight).astype(np.float32)


def axis_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Window starts along one axis (voxels): the first at 0, the last flush with the end.

    The number of windows is that of a nominal step ``patch * (1 - overlap)``
    (at least 1 voxel); as in nnU-Net the starts are then spread evenly, so
    neighbouring windows overlap by at least ``overlap`` and by equal amounts.
    A ``size`` not above ``patch`` gives ``[0]`` (the volume is padded).
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if patch < 1:
        raise ValueError(f"patch sizes must be >= 1, got {patch}")
    if size <= patch:
        return [0]
    step = max(1.0, patch * (1.0 - overlap))
    n_windows = math.ceil((size - patch) / step) + 1
    actual = (size - patch) / (n_windows - 1)
    return [int(round(actual * i)) for i in range(n_windows)]


def window_starts(shape: Sequence[int], patch: Sequence[int],
                  overlap: float) -> list[tuple[int, ...]]:
    """Start corners of the windows tiling ``shape`` (every combination of :func:`axis_starts`).

    Args:
        shape: volume size in voxels per spatial axis, e.g. ``(Z, Y, X)``.
        patch: window size, same axes.
        overlap: fraction of a window shared with its neighbour, in ``[0, 1)``.

    Returns:
        list of start tuples in the axes of ``shape``, in C order.
    """
    if len(shape) != len(patch):
        raise ValueError(f"shape {tuple(shape)} and patch {tuple(patch)} differ in length")
    per_axis = [axis_starts(int(s), int(p), overlap) for s, p in zip(shape, patch)]
    return list(itertools.product(*per_axis))


def _forward(model: keras.Model, batch: np.ndarray, batch_size: int,
             mirror_axes: Sequence[int] = ()) -> np.ndarray:
    """Probabilities of one batch, averaged over the flips of every subset of ``mirror_axes``.

    A short last batch is zero-padded to ``batch_size`` so that the model sees
    one input shape per case: ``predict_on_batch`` traces (and with XLA
    compiles) once per shape, and runs without gradient tape on every back end.
    """
    n_items = len(batch)
    if n_items < batch_size:
        batch = np.concatenate([batch, np.zeros((batch_size - n_items,) + batch.shape[1:],
                                                batch.dtype)])
    total = None
    n_flips = 0
    for k in range(len(mirror_axes) + 1):
        for axes in itertools.combinations(mirror_axes, k):
            x = np.ascontiguousarray(np.flip(batch, axes)) if axes else batch
            y = np.asarray(model.predict_on_batch(x), dtype=np.float32)
            y = np.flip(y, axes) if axes else y
            total = y.copy() if total is None else total + y
            n_flips += 1
    if n_flips > 1:
        total /= np.float32(n_flips)
    return total[:n_items]


def _pad_end(array: np.ndarray, target: Sequence[int]) -> np.ndarray:
    """Zero-pad the leading ``len(target)`` axes at their end up to ``target`` (0 = background
    after z-scoring)."""
    pad = [(0, max(0, t - s)) for s, t in zip(array.shape, target)]
    pad += [(0, 0)] * (array.ndim - len(pad))
    return np.pad(array, pad) if any(p[1] for p in pad) else array


def _round_up(n: int, divisor: int) -> int:
    return -(-n // divisor) * divisor


def _divisor_of(model: keras.Model, divisor: int | None) -> int:
    return int(getattr(model, "size_divisor", None) or divisor or 1)


def sliding_window_3d(model: keras.Model, image: np.ndarray, *, patch_size: Sequence[int] | None,
                      overlap: float = 0.5, batch_size: int = 2, gaussian: bool = True,
                      mirror: bool = False, divisor: int | None = None) -> np.ndarray:
    """Predict a volume with overlapping 3D windows blended by Gaussian weights.

    Args:
        model: 3D model mapping ``(B, z, y, x, C)`` to ``(B, z, y, x, 3)`` probabilities.
        image: float32 ``(Z, Y, X, C)`` in storage axes (a memory map is fine).
        patch_size: window ``(z, y, x)`` in voxels, each a multiple of the model's
            size divisor; None predicts the whole volume as one window (padded to
            the divisor; memory grows with the volume).
        overlap: fraction shared by neighbouring windows, in ``[0, 1)``.
        batch_size: windows per forward pass.
        gaussian: weight voxels near a window's centre more (nnU-Net); False
            averages the windows uniformly.
        mirror: average each window over its 8 flips along z, y, x.
        divisor: size divisor when the model has no ``size_divisor`` attribute.

    Returns:
        float32 ``(Z, Y, X, 3)`` probabilities. The volume is zero-padded at the
        end of each axis up to the patch size and the padding cut off again.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 4:
        raise ValueError(f"image must be (Z, Y, X, C), got shape {image.shape}")
    shape = image.shape[:3]
    div = _divisor_of(model, divisor)
    if patch_size is None:
        patch = tuple(_round_up(s, div) for s in shape)
    else:
        patch = tuple(int(p) for p in patch_size)
        if len(patch) != 3 or any(p % div for p in patch):
            raise ValueError(f"patch_size {patch} must be 3 sizes, each a multiple of {div}")
    padded = _pad_end(image, patch)
    weight = gaussian_importance(patch) if gaussian else np.ones(patch, np.float32)
    accumulated = None  # (Z, Y, X, regions) once the first batch tells the regions
    weight_sum = np.zeros(padded.shape[:3], np.float32)
    starts = window_starts(padded.shape[:3], patch, overlap)
    batch_size = max(1, min(batch_size, len(starts)))  # a lone window is not padded to a batch
    mirror_axes = (1, 2, 3) if mirror else ()
    for first in range(0, len(starts), batch_size):
        boxes = [tuple(slice(s, s + p) for s, p in zip(start, patch))
                 for start in starts[first:first + batch_size]]
        probabilities = _forward(model, np.stack([padded[box] for box in boxes]), batch_size,
                                 mirror_axes)
        if accumulated is None:
            accumulated = np.zeros(padded.shape[:3] + probabilities.shape[-1:], np.float32)
        for box, p in zip(boxes, probabilities):
            accumulated[box] += p * weight[..., None]
            weight_sum[box] += weight
    accumulated /= weight_sum[..., None]
    return accumulated[: shape[0], : shape[1], : shape[2]]


def predict_slices_2d(model: keras.Model, image: np.ndarray, *, batch_size: int = 16,
                      mirror: bool = False, divisor: int | None = None) -> np.ndarray:
    """Predict every axial slice ``image[z]`` with a 2D model.

    Args:
        model: 2D model mapping ``(B, y, x, C)`` to ``(B, y, x, 3)`` probabilities.
        image: float32 ``(Z, Y, X, C)`` in storage axes.
        batch_size: slices per forward pass.
        mirror: average over the 4 in-plane flips (y, x); never across slices.
        divisor: in-plane size divisor when the model has no ``size_divisor``
            attribute (default 1).

    Returns:
        float32 ``(Z, Y, X, 3)``. Slices are zero-padded at the end of y and x
        to a multiple of the divisor and cropped back.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 4:
        raise ValueError(f"image must be (Z, Y, X, C), got shape {image.shape}")
    n_slices, height, width = image.shape[:3]
    div = _divisor_of(model, divisor)
    target = (_round_up(height, div), _round_up(width, div))
    mirror_axes = (1, 2) if mirror else ()
    batch_size = max(1, min(batch_size, n_slices))
    out = None
    for first in range(0, n_slices, batch_size):
        batch = image[first:first + batch_size]
        batch = _pad_end(batch, (len(batch),) + target)
        probabilities = _forward(model, batch, batch_size, mirror_axes)[:, :height, :width]
        if out is None:
            out = np.empty((n_slices, height, width, probabilities.shape[-1]), np.float32)
        out[first:first + len(probabilities)] = probabilities
    return out


def predict_case(model: keras.Model, image: np.ndarray, *, spatial_dims: int,
                 patch_size: Sequence[int] | None = None, overlap: float = 0.5,
                 batch_size: int | None = None, mirror: bool = False, gaussian: bool = True,
                 divisor: int | None = None) -> np.ndarray:
    """Region probabilities of one preprocessed case with a 2D or 3D model.

    Args:
        model: a model of :mod:`brats_unet.models.unets` (or any Keras model with the
            same input and output layout).
        image: float32 ``(Z, Y, X, C)`` in storage axes.
        spatial_dims: 3 for :func:`sliding_window_3d`, 2 for :func:`predict_slices_2d`.
        patch_size: 3D window ``(z, y, x)``; None = the whole volume. Ignored in 2D.
        overlap: 3D window overlap in ``[0, 1)``. Ignored in 2D.
        batch_size: windows (3D) or slices (2D) per forward pass; None: 2 in
            3D, 16 in 2D.
        mirror: test-time augmentation: average the predictions over the flips
            along every combination of spatial axes (8 in 3D, 4 in-plane in 2D),
            so it costs that many forward passes.
        gaussian: Gaussian blending of 3D windows.
        divisor: size divisor for models without ``size_divisor``.

    Returns:
        float32 ``(Z, Y, X, 3)`` probabilities in ``[0, 1]``.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    batch_size = batch_size or DEFAULT_BATCH_SIZE[spatial_dims]
    if spatial_dims == 2:
        return predict_slices_2d(model, image, batch_size=batch_size, mirror=mirror,
                                 divisor=divisor)
    return sliding_window_3d(model, image, patch_size=patch_size, overlap=overlap,
                             batch_size=batch_size, gaussian=gaussian, mirror=mirror,
                             divisor=divisor)
