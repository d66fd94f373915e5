"""Training batches from preprocessed cases, as Keras PyDatasets (validation: whole cases,
:mod:`brats_unet.training.validation`).

Cases are read through :mod:`brats_unet.training.patches` (the case's files are described
there). Batches are ``(x, y)``: ``x`` float32 ``(B, Z, Y, X, 4)`` (3D) or
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
import threading
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from brats_unet.labels import tumour_mask
from brats_unet.training.patches import (
    N_CHANNELS,
    REGION_TABLE,
    draw_augmentation,
    open_labelled_case,
    region_targets,
    scale_shift,
    start_range,
    view_or_crop_padded,
)

#: At most this many tumour voxels per case are kept as candidate patch centres.
MAX_TUMOUR_VOXELS = 20_000
_OPENING = threading.Lock()


class _Case:
    """What sampling needs to know about a case, gathered once."""

    def __init__(self, case_dir: str | Path, max_tumour_voxels: int):
        self.case_dir = Path(case_dir)
        self._arrays = None
        _, label = open_labelled_case(self.case_dir)
        self.shape = label.shape
        tumour = np.flatnonzero(tumour_mask(np.asarray(label)))  # no cavity, no background
        # An even stride keeps the centres spread over the tumour, without randomness.
        step = max(1, math.ceil(tumour.size / max_tumour_voxels))
        # int32 halves what worker processes receive; flat indices of MRI volumes fit.
        dtype = np.int32 if label.size < 2**31 else np.int64
        self.tumour_voxels = tumour[::step].astype(dtype)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The case's memory maps, opened once per process (parsing the .npy headers
        took a third of a 2D sample's time)."""
        if self._arrays is None:
            # One thread at a time: numpy parses a .npy header with ast.literal_eval, which
            # CPython 3.11 does not make thread-safe ("SystemError: AST constructor recursion
            # depth mismatch", seen with two loader threads opening cases at once).
            with _OPENING:
                if self._arrays is None:
                    self._arrays = open_labelled_case(self.case_dir)
        return self._arrays

    def __getstate__(self):
        # Worker processes get the path and reopen the maps themselves.
        return {**self.__dict__, "_arrays": None}

    def random_tumour_voxel(self, rng: np.random.Generator) -> tuple[int, ...]:
        """One of the kept tumour voxels, drawn uniformly: ``(z, y, x)``."""
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
        y = np.empty((self.batch_size, *self.patch_size, len(REGION_TABLE[0])), np.float32)
        scales, shifts = [], []
        for j in range(self.batch_size):
            image, label, *intensity = self._sample(
                np.random.default_rng([self.seed, self.epoch, int(index), j]))
            x[j] = image
            region_targets(label, out=y[j])
            if intensity:
                scales.append(intensity[0])
                shifts.append(intensity[1])
        if self.augment:
            per_sample = (self.batch_size,) + (1,) * (x.ndim - 2) + (N_CHANNELS,)
            scale_shift(x, np.stack(scales).reshape(per_sample),
                         np.stack(shifts).reshape(per_sample), out=x)
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def _sample(self, rng: np.random.Generator) -> tuple:
        """``(image, label)`` patch views, plus the intensity ``(scale, shift)`` when augmenting
        (the caller applies it, and turns the labels into region masks)."""
        case = self.cases[rng.integers(len(self.cases))]
        bounds = [start_range(d, s) for d, s in zip(case.shape, self.patch_size)]
        if rng.random() < self.tumour_fraction and case.tumour_voxels.size:
            centre = case.random_tumour_voxel(rng)
            start = [
                int(np.clip(c - s // 2, lo, hi))
                for c, s, (lo, hi) in zip(centre, self.patch_size, bounds)
            ]
        else:
            start = [int(rng.integers(lo, hi + 1)) for lo, hi in bounds]
        image, label = case.arrays()
        x = view_or_crop_padded(image, start, self.patch_size)
        labels = view_or_crop_padded(label, start, self.patch_size)
        if self.augment:
            return draw_augmentation(x, labels, rng, self._flip_axes)
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
    sizes = {open_labelled_case(d)[1].shape[1:] for d in case_dirs}
    if len(sizes) != 1:
        raise ValueError(f"cases differ in slice size {sorted(sizes)}; pass slice_size")
    return sizes.pop()
