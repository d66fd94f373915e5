"""Training and validation batches from preprocessed cases, as Keras PyDatasets.

A preprocessed case is a folder holding ``image.npy`` (float32
``(Z, Y, X, 4)``: axial axis first, channels flair, t1, t1ce, t2, z-scored in
the brain and 0 outside), ``label.npy`` (uint8 ``(Z, Y, X)``, canonical BraTS
2020 labels) and ``properties.json`` (geometry, not read here).

Batches are ``(x, y)``: ``x`` float32 ``(B, Z, Y, X, 4)`` (3D) or
``(B, Y, X, 4)`` (2D axial slices), ``y`` float32 region masks with the same
spatial shape and 3 channels (WT, TC, ET, see :func:`brats_unet.labels.region_masks`).

Determinism: sample ``j`` of batch ``i`` in epoch ``e`` is drawn from
``np.random.default_rng([seed, e, i, j])`` and nothing else, so threads,
worker processes and a resumed run all see the same data. ``on_epoch_end``
advances the epoch, but Keras' ``fit`` also calls it outside epochs, a number
of times that depends on the back end and on whether the model was built; so
in ``fit`` pass ``callbacks=[SyncEpoch(dataset)]``, which sets the epoch to
Keras' own epoch number (``initial_epoch`` included) before each epoch. The
order in which Keras asks for batches does not matter, only their indices;
``fit(shuffle=False)`` also keeps that order fixed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from brats_unet.labels import region_masks
from brats_unet.preprocessing.cases import open_arrays

N_CHANNELS = 4
#: At most this many tumour voxels per case are kept as candidate patch centres.
MAX_TUMOUR_VOXELS = 20_000
#: Augmentation ranges: per-channel intensity scale and shift (z-score units).
INTENSITY_SCALE = (0.9, 1.1)
INTENSITY_SHIFT = (-0.1, 0.1)
# uint8 label value -> float32 WT, TC, ET masks: one table lookup instead of three
# np.isin per patch, built from region_masks so that the two cannot disagree.
_REGION_TABLE = region_masks(np.arange(256, dtype=np.uint8)).astype(np.float32)


def open_case(case_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map a labelled case's ``(image (Z, Y, X, 4) float32, label (Z, Y, X) uint8)``.

    Nothing is read until indexed. Raises ValueError on a case without labels
    or with inconsistent shapes.
    """
    image, label = open_arrays(case_dir)
    if label is None:
        raise ValueError(f"{case_dir}: no label map; it cannot be trained or validated on")
    if image.ndim != 4 or image.shape[-1] != N_CHANNELS or label.shape != image.shape[:3]:
        raise ValueError(
            f"{case_dir}: expected image (Z, Y, X, {N_CHANNELS}) and label (Z, Y, X), "
            f"got {image.shape} and {label.shape}"
        )
    return image, label


def crop(array: np.ndarray, start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """``array[start : start + size]`` on the leading axes, zero-filled outside the array.

    ``start`` may be negative or run past the end: that is how cases smaller
    than the patch get padded (with 0, i.e. background and label 0). Only the
    overlap is read, so memory-mapped volumes stay mostly on disk.
    """
    out = np.zeros(tuple(size) + array.shape[len(size) :], dtype=array.dtype)
    src, dst = [], []
    for s, n, dim in zip(start, size, array.shape):
        lo, hi = max(s, 0), min(s + n, dim)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = array[tuple(src)]
    return out


def _view_or_crop(array: np.ndarray, start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """:func:`crop`, but a view (no copy) when the box lies inside the array; the caller
    copies it once into the batch."""
    if all(0 <= s and s + n <= d for s, n, d in zip(start, size, array.shape)):
        return array[tuple(slice(s, s + n) for s, n in zip(start, size))]
    return crop(array, start, size)


def read_patch(case_dir: str | Path, start, size) -> tuple[np.ndarray, np.ndarray]:
    """``(x (*size, 4) float32, y (*size, 3) float32 WT/TC/ET masks)`` of a case at ``start``.

    ``start`` and ``size`` are ``(z, y, x)`` voxels; see :func:`crop` for out-of-bounds.
    """
    return _patch(*open_case(case_dir), start, size)


def _patch(image: np.ndarray, label: np.ndarray, start, size) -> tuple[np.ndarray, np.ndarray]:
    x = crop(image, start, size).astype(np.float32, copy=False)
    return x, _region_targets(crop(label, start, size))


def _region_targets(label: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 WT, TC, ET masks on a new last axis, written into ``out`` if given."""
    if label.dtype == np.uint8:
        return np.take(_REGION_TABLE, label, axis=0, out=out)
    masks = region_masks(label)
    if out is None:
        return masks.astype(np.float32)
    out[...] = masks
    return out


def _start_range(dim: int, size: int) -> tuple[int, int]:
    """Inclusive bounds of a patch start along one axis.

    A patch larger than the case may sit anywhere that still covers it whole.
    """
    return min(0, dim - size), max(0, dim - size)


def _draw_augmentation(x, y, rng: np.random.Generator, flip_axes):
    """Random flips (the same for image and labels; views) and a per-channel intensity scale
    and shift, drawn in this order from ``rng`` (so batches stay those of earlier versions)."""
    for axis in flip_axes:
        if rng.random() < 0.5:
            x = np.flip(x, axis)
            y = np.flip(y, axis)
    scale = rng.uniform(*INTENSITY_SCALE, size=x.shape[-1]).astype(np.float32)
    shift = rng.uniform(*INTENSITY_SHIFT, size=x.shape[-1]).astype(np.float32)
    return x, y, scale, shift


def _scale_shift(x: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
    """``x * scale + shift`` inside the brain, exactly 0 outside (as at inference).

    ``x`` is one sample ``(..., C)`` with ``scale`` and ``shift`` of shape
    ``(C,)``, or a batch ``(B, ..., C)`` with one row per sample, shaped
    ``(B, 1, ..., 1, C)``. Outside the brain every channel is 0, so ``x * scale``
    is 0 there already and only the shift needs the mask. ``out`` (C-contiguous
    float32) may be ``x`` itself.
    """
    brain = _any_channel(x)
    if out is None:
        out = np.array(x, dtype=np.float32)
    elif out is not x:
        out[...] = x
    # Broadcasting a 4-value row over (..., 4) runs NumPy's inner loop 4 values at a
    # time; rows tiled to 256 voxels make it long (2.6x faster on a 3D batch).
    channels = out.shape[-1]
    samples = out.shape[0] if np.ndim(scale) > 1 else 1
    voxels = out.size // (samples * channels)
    k = math.gcd(voxels, 256)
    wide = out.reshape(samples, voxels // k, k * channels)
    mask = np.repeat(brain.reshape(samples, voxels // k, k), channels, axis=-1)

    def tile(row):
        return np.tile(np.reshape(row, (samples, 1, channels)), (1, 1, k))

    np.multiply(wide, tile(scale), out=wide)
    np.add(wide, tile(shift), out=wide, where=mask)
    return out


def _any_channel(x: np.ndarray) -> np.ndarray:
    """``np.any(x != 0, axis=-1, keepdims=True)``; for 1, 2, 4 or 8 channels the channels' flags
    are read as one unsigned integer per voxel, several times faster than reducing a short axis."""
    nonzero = np.ascontiguousarray(x != 0)
    channels = nonzero.shape[-1]
    if channels in (1, 2, 4, 8):
        return nonzero.view(f"u{channels}") != 0
    return nonzero.any(axis=-1, keepdims=True)


class _Case:
    """What sampling needs to know about a case, gathered once."""

    def __init__(self, case_dir: str | Path, max_tumour_voxels: int):
        self.case_dir = Path(case_dir)
        self._arrays = None
        _, label = open_case(self.case_dir)
        self.shape = label.shape
        tumour = np.flatnonzero(np.asarray(label))
        # An even stride keeps the centres spread over the tumour, without randomness.
        step = max(1, math.ceil(tumour.size / max_tumour_voxels))
        # int32 halves what worker processes receive; flat indices of MRI volumes fit.
        dtype = np.int32 if label.size < 2**31 else np.int64
        self.tumour_voxels = tumour[::step].astype(dtype)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The case's memory maps, opened once per process (parsing the .npy headers
        took a third of a 2D sample's time)."""
        if self._arrays is None:
            self._arrays = open_case(self.case_dir)
        return self._arrays

    def __getstate__(self):
        # Worker processes get the path and reopen the maps themselves.
        return {**self.__dict__, "_arrays": None}

    def tumour_centre(self, rng: np.random.Generator) -> tuple[int, ...]:
        flat = self.tumour_voxels[rng.integers(self.tumour_voxels.size)]
        return tuple(int(i) for i in np.unravel_index(flat, self.shape))


class PatchDataset(keras.utils.PyDataset):
    """Random 3D training patches, a share of them centred on tumour.

    Args:
        case_dirs: preprocessed case folders; their order is part of the seed.
        patch_size: ``(Z, Y, X)`` voxels.
        batch_size: patches per batch.
        steps_per_epoch: batches per epoch (``len(dataset)``).
        tumour_fraction: probability that a patch is centred on a random
            tumour (WT) voxel of its case (cases without tumour fall back to
            a uniform patch); otherwise the patch position is uniform.
        augment: random flips along each spatial axis and per-channel
            intensity scale and shift inside the brain.
        seed: base seed; batch ``i`` of epoch ``e`` depends only on
            ``(seed, e, i)``.
        initial_epoch: epoch before any :meth:`on_epoch_end` (under ``fit``
            :class:`SyncEpoch` takes care of it).
        max_tumour_voxels: tumour voxels kept per case as patch centres.
        **pydataset_kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Cases are drawn uniformly. Each is memory-mapped once per process; the
    maps are not pickled, so worker processes receive small datasets and map
    the cases themselves. Intensity augmentation is applied to the whole batch
    at once, with each sample's own parameters (drawn from its own stream).
    """

    def __init__(
        self,
        case_dirs: Sequence[str | Path],
        *,
        patch_size: Sequence[int],
        batch_size: int,
        steps_per_epoch: int,
        tumour_fraction: float = 0.5,
        augment: bool = True,
        seed: int = 0,
        initial_epoch: int = 0,
        max_tumour_voxels: int = MAX_TUMOUR_VOXELS,
        **pydataset_kwargs,
    ):
        super().__init__(**pydataset_kwargs)
        if not case_dirs:
            raise ValueError("no cases given")
        if len(patch_size) != 3:
            raise ValueError(f"patch_size must be (Z, Y, X), got {patch_size}")
        if not 0.0 <= tumour_fraction <= 1.0:
            raise ValueError(f"tumour_fraction must be in [0, 1], got {tumour_fraction}")
        self.patch_size = tuple(int(s) for s in patch_size)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.tumour_fraction = float(tumour_fraction)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = int(initial_epoch)
        self.cases = [_Case(d, max_tumour_voxels) for d in case_dirs]
        self._flip_axes = (0, 1, 2)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        # One stream per sample: a sample's position does not depend on
        # whether earlier samples drew augmentation parameters.
        # Each sample is written straight into the batch; the masks are looked up
        # from the (flipped) uint8 labels there, not built and then copied.
        x = np.empty((self.batch_size, *self.patch_size, N_CHANNELS), np.float32)
        y = np.empty((self.batch_size, *self.patch_size, len(_REGION_TABLE[0])), np.float32)
        scales, shifts = [], []
        for j in range(self.batch_size):
            image, label, *intensity = self._sample(
                np.random.default_rng([self.seed, self.epoch, int(index), j]))
            x[j] = image
            _region_targets(label, out=y[j])
            if intensity:
                scales.append(intensity[0])
                shifts.append(intensity[1])
        if self.augment:
            per_sample = (self.batch_size,) + (1,) * (x.ndim - 2) + (N_CHANNELS,)
            _scale_shift(x, np.stack(scales).reshape(per_sample),
                         np.stack(shifts).reshape(per_sample), out=x)
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def _sample(self, rng: np.random.Generator) -> tuple:
        """``(image, label)`` patch views, plus the intensity ``(scale, shift)`` when augmenting
        (the caller applies it, and turns the labels into region masks)."""
        case = self.cases[rng.integers(len(self.cases))]
        bounds = [_start_range(d, s) for d, s in zip(case.shape, self.patch_size)]
        if rng.random() < self.tumour_fraction and case.tumour_voxels.size:
            centre = case.tumour_centre(rng)
            start = [
                int(np.clip(c - s // 2, lo, hi))
                for c, s, (lo, hi) in zip(centre, self.patch_size, bounds)
            ]
        else:
            start = [int(rng.integers(lo, hi + 1)) for lo, hi in bounds]
        image, label = case.arrays()
        x = _view_or_crop(image, start, self.patch_size)
        labels = _view_or_crop(label, start, self.patch_size)
        if self.augment:
            return _draw_augmentation(x, labels, rng, self._flip_axes)
        return x, labels


class SyncEpoch(keras.callbacks.Callback):
    """Sets ``dataset.epoch`` to Keras' epoch number at the start of each epoch.

    Runs before Keras starts the epoch's workers, so they see the new value.
    """

    def __init__(self, *datasets: PatchDataset):
        super().__init__()
        self.datasets = datasets

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        for dataset in self.datasets:
            dataset.epoch = epoch


class SliceDataset(PatchDataset):
    """Random 2D axial training slices: a :class:`PatchDataset` of ``(1, Y, X)`` patches.

    ``tumour_fraction`` of the slices are drawn through a random tumour voxel
    (so slices with more tumour come up more often) and cropped in plane
    around it; the rest are uniform. ``slice_size=(Y, X)`` crops or pads every
    slice to a common size; None keeps whole slices, which requires all
    cases to share ``(Y, X)``. Flips are in plane only. Other arguments as
    for :class:`PatchDataset`. Batches: ``x (B, Y, X, 4)``, ``y (B, Y, X, 3)``.
    """

    def __init__(
        self,
        case_dirs: Sequence[str | Path],
        *,
        batch_size: int,
        steps_per_epoch: int,
        slice_size: Sequence[int] | None = None,
        tumour_fraction: float = 0.5,
        augment: bool = True,
        seed: int = 0,
        **kwargs,
    ):
        if slice_size is None:
            slice_size = _common_slice_size(case_dirs)
        super().__init__(
            case_dirs,
            patch_size=(1, *slice_size),
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            tumour_fraction=tumour_fraction,
            augment=augment,
            seed=seed,
            **kwargs,
        )
        self._flip_axes = (1, 2)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = super().__getitem__(index)
        return x[:, 0], y[:, 0]


def _common_slice_size(case_dirs) -> tuple[int, int]:
    sizes = {open_case(d)[1].shape[1:] for d in case_dirs}
    if len(sizes) != 1:
        raise ValueError(f"cases differ in slice size {sorted(sizes)}; pass slice_size")
    return sizes.pop()


class ValidationData(keras.utils.PyDataset):
    """A fixed, bounded validation set for per-epoch Dice; no randomness.

    3D (``spatial_dims=3``, ``patch_size=(Z, Y, X)``): one patch per case,
    centred on the centre of the tumour's bounding box (the volume centre
    when a case has no tumour).

    2D (``spatial_dims=2``, ``patch_size=(Y, X)`` or None for whole slices):
    every axial slice with tumour plus ``background_slices`` evenly spaced
    slices without, per case; each slice is cropped or padded around the
    in-plane centre of the case's tumour bounding box (or of the slice).

    Patches are ordered case by case; the last batch may be smaller.
    ``**pydataset_kwargs`` as for :class:`PatchDataset`.
    """

    def __init__(
        self,
        case_dirs: Sequence[str | Path],
        *,
        spatial_dims: int = 3,
        patch_size: Sequence[int] | None = None,
        batch_size: int = 1,
        background_slices: int = 4,
        **pydataset_kwargs,
    ):
        super().__init__(**pydataset_kwargs)
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if spatial_dims == 3 and (patch_size is None or len(patch_size) != 3):
            raise ValueError(f"3D validation needs patch_size (Z, Y, X), got {patch_size}")
        if spatial_dims == 2:
            size = _common_slice_size(case_dirs) if patch_size is None else patch_size
            patch_size = (1, *size)
        self.spatial_dims = spatial_dims
        self.patch_size = tuple(int(s) for s in patch_size)
        self.batch_size = int(batch_size)
        self.case_dirs = [Path(d) for d in case_dirs]
        # (case index, patch start); built once, read in order.
        self.items: list[tuple[int, tuple[int, ...]]] = []
        for i, case_dir in enumerate(self.case_dirs):
            label = np.asarray(open_case(case_dir)[1])
            self.items += [(i, s) for s in self._starts(label, background_slices)]

    def _starts(self, label: np.ndarray, background_slices: int) -> list[tuple[int, ...]]:
        tumour = np.argwhere(label > 0)
        if tumour.size:
            centre = (tumour.min(axis=0) + tumour.max(axis=0)) // 2
        else:
            centre = np.array(label.shape) // 2
        bounds = [_start_range(d, s) for d, s in zip(label.shape, self.patch_size)]
        start = [
            int(np.clip(c - s // 2, lo, hi))
            for c, s, (lo, hi) in zip(centre, self.patch_size, bounds)
        ]
        if self.spatial_dims == 3:
            return [tuple(start)]
        has_tumour = np.any(label > 0, axis=(1, 2))
        others = np.flatnonzero(~has_tumour)
        pick = np.linspace(0, others.size - 1, min(background_slices, others.size))
        zs = sorted([*np.flatnonzero(has_tumour), *others[pick.round().astype(int)]])
        return [(int(z), start[1], start[2]) for z in zs]

    def __len__(self) -> int:
        return math.ceil(len(self.items) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        items = self.items[index * self.batch_size : (index + 1) * self.batch_size]
        if not items:
            raise IndexError(index)
        pairs = [read_patch(self.case_dirs[i], start, self.patch_size) for i, start in items]
        x, y = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        if self.spatial_dims == 2:
            x, y = x[:, 0], y[:, 0]
        return x, y

