"""Validation each epoch: whole cases, in windows that hold no more than a training batch."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from brats_unet.labels import RESECTION_CAVITY
from brats_unet.training.validation import (
    CaseValidation,
    pooled_dice,
    slices_per_pass,
    validation_window,
)


class Oracle:
    """Duck-typed model: WT, TC and ET probabilities all follow the flair channel, which the
    cases set to 1 exactly on the whole tumour; records every batch's shape."""

    size_divisor = 4

    def __init__(self):
        self.batches: list[tuple[int, ...]] = []

    def predict_on_batch(self, x):
        self.batches.append(x.shape)
        probability = 1.0 / (1.0 + np.exp(-20.0 * (x[..., :1] - 0.5)))
        return np.repeat(probability, 3, axis=-1).astype(np.float32)


def _write_case(folder, shape, label_boxes):
    """A preprocessed case: label boxes ``(value, box)`` painted in order; flair = WT."""
    label = np.zeros(shape, np.uint8)
    for value, box in label_boxes:
        label[box] = value
    image = np.zeros((*shape, 4), np.float32)
    image[..., 0] = np.isin(label, (1, 2, 4))
    image[1:-1, 1:-1, 1:-1, 1] = 0.5  # the brain, so no slice is all zeros
    folder.mkdir(parents=True)
    np.save(folder / "image.npy", image)
    np.save(folder / "label.npy", label)
    return folder, label


@pytest.fixture
def cases(tmp_path):
    box = np.s_[2:9, 3:15, 4:14]
    a, label_a = _write_case(tmp_path / "a", (12, 22, 18), [
        (2, box), (1, np.s_[3:8, 5:12, 6:12]), (4, np.s_[4:6, 6:9, 7:10])])
    # b: no enhancing tumour, and a resection cavity (in no region)
    b, label_b = _write_case(tmp_path / "b", (10, 20, 21), [
        (2, np.s_[1:5, 2:8, 2:9]), (1, np.s_[2:4, 3:6, 3:6]),
        (RESECTION_CAVITY, np.s_[6:9, 10:18, 12:19])])
    return [a, b], [label_a, label_b]


def _expected(labels) -> dict[str, float]:
    """The Oracle predicts WT everywhere WT is, for all three regions."""
    wt = sum(np.isin(lab, (1, 2, 4)).sum() for lab in labels)
    tc = sum(np.isin(lab, (1, 4)).sum() for lab in labels)
    et = sum((lab == 4).sum() for lab in labels)
    return {"val_dice_wt": 1.0, "val_dice_tc": 2 * tc / (wt + tc), "val_dice_et": 2 * et / (wt + et)}


@pytest.mark.parametrize("spatial_dims, patch, batch", [
    (3, (8, 8, 8), 2), (3, (4, 8, 8), 1), (3, (16, 24, 24), 2), (2, (8, 8), 3), (2, (24, 24), 1)])
def test_dice_is_pooled_over_whole_cases_whatever_the_windows(cases, spatial_dims, patch, batch):
    dirs, labels = cases
    oracle = Oracle()
    validation = CaseValidation(oracle, dirs, spatial_dims=spatial_dims, patch_size=patch,
                                batch_size=batch, divisor=4)
    logs = {}
    validation.on_epoch_end(0, logs)
    for key, value in _expected(labels).items():
        assert logs[key] == pytest.approx(value, abs=1e-12), key
    assert logs["validation_seconds"] >= 0
    budget = batch * math.prod(patch)
    if spatial_dims == 2:  # at least one whole slice (of 12 x 22 x 18 padded: 24 x 20)
        budget = max(budget, 24 * 20)
    # no pass holds more input voxels than a training batch (a padded last batch included)
    assert all(math.prod(shape[:-1]) <= budget for shape in oracle.batches)


def test_a_case_that_fits_is_one_window_and_a_bigger_one_the_fewest():
    # the demo's largest validation case against its training batch of 2 x 32 x 64 x 64
    assert validation_window((50, 80, 66), (32, 64, 64), 2 * 32 * 64 * 64, 8) == (32, 80, 72)
    assert validation_window((30, 60, 60), (32, 64, 64), 2 * 32 * 64 * 64, 8) == (32, 64, 64)
    # full size against the CPU preset's 2 x 64 x 96 x 96: no axis can be cut above the patch
    assert validation_window((140, 172, 139), (64, 96, 96), 2 * 64 * 96 * 96, 8) == (64, 96, 96)
    # the GPU preset's 2 x 128^3 holds a whole full-size case
    assert validation_window((140, 172, 139), (128, 128, 128), 2 * 128**3, 16) == (144, 176, 144)


@pytest.mark.parametrize("shape", list(itertools.product((5, 17, 40), (9, 33), (12, 64))))
@pytest.mark.parametrize("patch, batch", [((8, 16, 16), 1), ((16, 16, 8), 3)])
def test_every_window_fits_the_batch_and_keeps_the_patch_where_the_case_allows(shape, patch, batch):
    window = validation_window(shape, patch, batch * math.prod(patch), 8)
    assert math.prod(window) <= batch * math.prod(patch)
    assert all(w % 8 == 0 for w in window)
    assert all(w >= min(p, -(-s // 8) * 8) for w, p, s in zip(window, patch, shape))


def test_slices_per_pass_and_pooled_dice():
    assert slices_per_pass((88, 72), 16 * 64 * 64, 8) == 10  # 65,536 // 6,336
    assert slices_per_pass((200, 200), 100, 8) == 1
    np.testing.assert_allclose(pooled_dice([3, 0, 0], [8, 0, 5]), [0.75, 1.0, 0.0])


def test_bad_arguments_are_refused(cases):
    dirs, _ = cases
    with pytest.raises(ValueError, match="3 sizes"):
        CaseValidation(Oracle(), dirs, spatial_dims=3, patch_size=(8, 8), batch_size=1, divisor=4)
    with pytest.raises(ValueError, match="at least one case"):
        CaseValidation(Oracle(), [], spatial_dims=2, patch_size=(8, 8), batch_size=1, divisor=4)
