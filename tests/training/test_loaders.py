"""Patch and slice datasets over tiny preprocessed cases written with np.save."""

from __future__ import annotations

import itertools
import pickle

import keras
import numpy as np
import pytest

from brats_unet.labels import RESECTION_CAVITY, region_masks
from brats_unet.training.loaders import (
    PatchDataset,
    SliceDataset,
    SyncEpoch,
    _Case,
)
from brats_unet.training.patches import crop_padded, open_labelled_case


def _write_case(folder, shape, tumour_centre=None, seed=0):
    """A case whose flair channel is 1 exactly on WT (else 0) and other channels noise.

    The tumour is an off-centre box (so flips show) with nested TC and ET;
    the brain is everything but a 1-voxel border, which stays 0.
    """
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.uint8)
    if tumour_centre is not None:
        z, y, x = tumour_centre
        label[z - 1 : z + 2, y - 2 : y + 3, x - 1 : x + 4] = 2
        label[z - 1 : z + 1, y - 1 : y + 2, x : x + 2] = 1
        label[z, y, x] = 4
    image = np.zeros((*shape, 4), dtype=np.float32)
    brain = (slice(1, -1),) * 3
    image[brain + (slice(1, 4),)] = rng.normal(size=tuple(s - 2 for s in shape) + (3,))
    image[..., 0] = label > 0
    folder.mkdir(parents=True)
    np.save(folder / "image.npy", image)
    np.save(folder / "label.npy", label)
    (folder / "properties.json").write_text("{}")
    return folder


@pytest.fixture
def cases(tmp_path):
    return [
        _write_case(tmp_path / "a", (12, 20, 24), tumour_centre=(6, 6, 15), seed=1),
        _write_case(tmp_path / "b", (10, 22, 20), tumour_centre=(3, 14, 5), seed=2),
        _write_case(tmp_path / "c", (10, 20, 20), tumour_centre=None, seed=3),
    ]


def test_open_labelled_case_memory_maps_and_checks_shapes(cases, tmp_path):
    image, label = open_labelled_case(cases[0])
    assert isinstance(image, np.memmap) and image.shape == (12, 20, 24, 4)
    assert label.dtype == np.uint8 and label.shape == (12, 20, 24)
    bad = _write_case(tmp_path / "bad", (4, 4, 4))
    np.save(bad / "label.npy", np.zeros((4, 4, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="expected image"):
        open_labelled_case(bad)


def test_crop_padded_zero_fills_outside():
    a = np.arange(1, 7).reshape(2, 3)
    np.testing.assert_array_equal(crop_padded(a, (-1, 1), (3, 3)), [[0, 0, 0], [2, 3, 0], [5, 6, 0]])
    np.testing.assert_array_equal(crop_padded(a, (5, 0), (1, 2)), [[0, 0]])


def test_patch_batches_shapes_and_dtypes(cases):
    data = PatchDataset(cases, patch_size=(8, 16, 16), batch_size=3, steps_per_epoch=5, seed=0)
    assert len(data) == 5
    x, y = data[0]
    assert x.shape == (3, 8, 16, 16, 4) and x.dtype == np.float32
    assert y.shape == (3, 8, 16, 16, 3) and y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 1.0}
    # Nested regions: ET within TC within WT.
    assert np.all(y[..., 2] <= y[..., 1]) and np.all(y[..., 1] <= y[..., 0])


def test_tumour_fraction_one_always_hits_tumour(cases):
    data = PatchDataset(
        cases[:2], patch_size=(4, 8, 8), batch_size=4, steps_per_epoch=6, tumour_fraction=1.0, seed=3
    )
    assert all(data[i][1][b, ..., 0].any() for i in range(len(data)) for b in range(4))
    # A case without tumour falls back to uniform patches.
    empty = PatchDataset(cases[2:], patch_size=(4, 8, 8), batch_size=2, steps_per_epoch=1, tumour_fraction=1.0)
    assert not empty[0][1].any()


def test_same_seed_same_batches_other_epoch_other_batches(cases):
    def make(**kwargs):
        return PatchDataset(cases, patch_size=(8, 16, 16), batch_size=2, steps_per_epoch=4, seed=7, **kwargs)

    a, b = make(), make()
    for i in (0, 3, 1):
        np.testing.assert_array_equal(a[i][0], b[i][0])
    np.testing.assert_array_equal(a[2][1], a[2][1])
    first = a[0][0]
    a.on_epoch_end()
    assert a.epoch == 1
    assert not np.array_equal(a[0][0], first)
    # A resumed run reproduces epoch 1.
    np.testing.assert_array_equal(make(initial_epoch=1)[0][0], a[0][0])
    # Worker processes may receive a pickled copy.
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a))[0][0], a[0][0])
    assert not np.array_equal(make()[0][0], PatchDataset(
        cases, patch_size=(8, 16, 16), batch_size=2, steps_per_epoch=4, seed=8)[0][0])


@pytest.mark.parametrize("dataset", ["patch", "slice"])
def test_augmentation_flips_image_and_masks_together(cases, dataset):
    def make(augment):
        if dataset == "patch":
            return PatchDataset(cases, patch_size=(8, 16, 16), batch_size=4, steps_per_epoch=4,
                                tumour_fraction=1.0, augment=augment, seed=5)
        return SliceDataset(cases, slice_size=(16, 16), batch_size=4, steps_per_epoch=4,
                            tumour_fraction=1.0, augment=augment, seed=5)

    plain, augmented = make(False), make(True)
    spatial = (0, 1, 2) if dataset == "patch" else (0, 1)
    flipped = 0
    for i in range(len(plain)):
        (x0, y0), (x1, y1) = plain[i], augmented[i]
        # Flair marks WT exactly; scale/shift keep it apart from the rest.
        np.testing.assert_array_equal(x1[..., 0] > 0.5, y1[..., 0] > 0)
        for b in range(len(y0)):
            # The same position was drawn; only flips and intensities separate them.
            brain0, brain1 = np.any(x0[b] != 0, axis=-1), np.any(x1[b] != 0, axis=-1)
            matches = [
                axes for n in range(len(spatial) + 1) for axes in itertools.combinations(spatial, n)
                if np.array_equal(np.flip(y0[b], axes), y1[b])
                and np.array_equal(np.flip(brain0, axes), brain1)  # outside the brain stays 0
            ]
            # Noise channels: x1 = scale * x0 + shift inside the brain, per channel.
            fits = [axes for axes in matches if _is_scaled_and_shifted(np.flip(x0[b], axes), x1[b], brain1)]
            assert len(fits) == 1
            flipped += fits[0] != ()
    assert flipped > 0


def _is_scaled_and_shifted(before, after, brain):
    for c in (1, 2, 3):
        scale, shift = np.polyfit(before[brain, c], after[brain, c], 1)
        if not (0.9 <= scale <= 1.1 and -0.1 <= shift <= 0.1 and abs(scale - 1) > 1e-6):
            return False
        if not np.allclose(after[brain, c], scale * before[brain, c] + shift, atol=1e-5):
            return False
    return True


@pytest.mark.parametrize("channels", [4, 3])
def test_batch_scale_shift_equals_the_per_voxel_rule(channels):
    # The fast path (channel flags read as one integer) and the fallback both
    # give exactly where(any channel != 0, x * scale + shift, 0).
    from brats_unet.training.patches import scale_shift

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5, 6, channels)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0
    x[:, 0] = 0  # whole voxels outside the brain
    scale = rng.uniform(0.9, 1.1, (2, 1, 1, 1, channels)).astype(np.float32)
    shift = rng.uniform(-0.1, 0.1, (2, 1, 1, 1, channels)).astype(np.float32)
    expected = np.where(np.any(x != 0, axis=-1, keepdims=True), x * scale + shift, np.float32(0))
    got = scale_shift(x, scale, shift)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # One sample with one (C,) row, and in place on a batch.
    np.testing.assert_array_equal(scale_shift(x[1], scale[1].ravel(), shift[1].ravel()), expected[1])
    inplace = x.copy()
    assert scale_shift(inplace, scale, shift, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)


def test_region_table_matches_region_masks(cases):
    from brats_unet.training.patches import _patch

    image, label = open_labelled_case(cases[0])
    x, y = _patch(image, label, (0, 0, 0), label.shape)
    np.testing.assert_array_equal(y, region_masks(np.asarray(label)).astype(np.float32))
    assert y.dtype == np.float32 and x.dtype == np.float32


def test_pickled_dataset_carries_no_memory_maps(cases):
    dataset = PatchDataset(cases, patch_size=(8, 16, 16), batch_size=2, steps_per_epoch=2)
    x, _ = dataset[0]  # opens the maps
    copy = pickle.loads(pickle.dumps(dataset))
    assert all(case._arrays is None for case in copy.cases)
    np.testing.assert_array_equal(copy[0][0], x)


def test_small_cases_are_padded(tmp_path):
    small = _write_case(tmp_path / "small", (6, 10, 12), tumour_centre=(3, 4, 5))
    label = np.load(small / "label.npy")
    data = PatchDataset([small], patch_size=(8, 16, 16), batch_size=4, steps_per_epoch=2, augment=False)
    x, y = data[1]
    assert x.shape == (4, 8, 16, 16, 4)
    masks = region_masks(label)
    for b in range(4):
        # The whole case lies inside every patch, surrounded by zeros.
        np.testing.assert_array_equal(y[b].sum(axis=(0, 1, 2)), masks.sum(axis=(0, 1, 2)))
        assert np.count_nonzero(np.any(x[b] != 0, axis=-1)) == np.count_nonzero(
            np.any(np.load(small / "image.npy") != 0, axis=-1)
        )


def test_slice_dataset(cases):
    data = SliceDataset(cases, slice_size=(16, 16), batch_size=5, steps_per_epoch=3,
                        tumour_fraction=1.0, seed=0)
    x, y = data[0]
    assert x.shape == (5, 16, 16, 4) and y.shape == (5, 16, 16, 3)
    assert x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(data[2][0], SliceDataset(
        cases, slice_size=(16, 16), batch_size=5, steps_per_epoch=3, tumour_fraction=1.0, seed=0)[2][0])
    with pytest.raises(ValueError, match="slice_size"):
        SliceDataset(cases, batch_size=2, steps_per_epoch=1)
    whole = SliceDataset(cases[2:], batch_size=2, steps_per_epoch=1)
    assert whole[0][0].shape == (2, 20, 20, 4)


def test_slice_tumour_fraction_one_gives_tumour_slices(cases):
    data = SliceDataset(cases[:2], slice_size=(12, 12), batch_size=6, steps_per_epoch=3,
                        tumour_fraction=1.0, seed=1)
    for i in range(3):
        assert data[i][1][..., 0].any(axis=(1, 2)).all()


class _RecordingPatches(PatchDataset):
    served: list[tuple[int, int]] = []

    def __getitem__(self, index):
        self.served.append((self.epoch, index))
        return super().__getitem__(index)


class _KerasEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        _RecordingPatches.served.append(("keras epoch", epoch))


def test_keras_fit_with_sync_epoch(cases):
    from brats_unet.models.unets import build_model
    from brats_unet.training.losses import SoftDiceBCELoss, region_dice_metrics

    train = _RecordingPatches(cases, patch_size=(8, 16, 16), batch_size=2, steps_per_epoch=2, workers=2)
    model = build_model("unet3d", base_filters=4, depth=2)
    model.compile(optimizer="adam", loss=SoftDiceBCELoss(), metrics=region_dice_metrics())
    _RecordingPatches.served.clear()
    history = model.fit(
        train, epochs=4, initial_epoch=2, verbose=0,
        callbacks=[_KerasEpoch(), SyncEpoch(train)],
    )
    assert len(history.history["dice_wt"]) == 2
    # Inside Keras epoch e every batch served is one of data epoch e, whatever
    # fit fetched before it (signature probes, symbolic build).
    log = _RecordingPatches.served
    served = {}
    for entry in log[log.index(("keras epoch", 2)) :]:
        if entry[0] == "keras epoch":
            keras_epoch = entry[1]
            served[keras_epoch] = []
        else:
            assert entry[0] == keras_epoch
            served[keras_epoch].append(entry[1])
    assert {e: sorted(i) for e, i in served.items()} == {2: [0, 1], 3: [0, 1]}


def test_a_resection_cavity_is_not_sampled_as_tumour(tmp_path):
    """BraTS 2024 post-treatment: the cavity (canonical 5) is in no region, so patches centred on
    tumour go to the tumour, not to the (often larger) cavity."""
    folder = _write_case(tmp_path / "post", (12, 20, 24), tumour_centre=(6, 6, 15), seed=4)
    label = np.load(folder / "label.npy")
    label[2:10, 10:18, 2:8] = RESECTION_CAVITY  # 384 cavity voxels, away from the tumour
    np.save(folder / "label.npy", label)
    case = _Case(folder, max_tumour_voxels=10_000)
    sampled = np.unravel_index(case.tumour_voxels, label.shape)
    assert set(label[sampled].tolist()) <= {1, 2, 4} and case.tumour_voxels.size == 75
