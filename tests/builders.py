"""Tiny BraTS-format subjects written by hand, so every expected value is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brats_unet.data.subjects import CONTRASTS, LABEL_SUFFIX, raw_file_name
from brats_unet.io import save_nifti

#: A flipped, anisotropic affine like a real scanner's: voxel size 1.2 x 0.9 x 3 mm.
AFFINE = np.array(
    [[-1.2, 0.0, 0.0, 90.0],
     [0.0, -0.9, 0.0, 120.0],
     [0.0, 0.0, 3.0, -60.0],
     [0.0, 0.0, 0.0, 1.0]]
)
SHAPE = (11, 13, 7)


def tiny_volumes(seed: int = 0, shape=SHAPE):
    """Four contrasts and a label map: a box-shaped brain with a 2x2x2 tumour."""
    rng = np.random.default_rng(seed)
    brain = np.zeros(shape, dtype=bool)
    brain[2:9, 3:11, 1:6] = True
    images = {}
    for n, contrast in enumerate(CONTRASTS):
        vol = np.zeros(shape, dtype=np.int16)
        vol[brain] = rng.integers(100 * (n + 1), 200 * (n + 1), size=int(brain.sum()))
        images[contrast] = vol
    label = np.zeros(shape, dtype=np.uint8)
    label[4:7, 5:8, 2:5] = 2
    label[5, 6, 3] = 1
    label[5:7, 6:8, 3:5][label[5:7, 6:8, 3:5] == 2] = 4
    return images, label, brain


def write_subject(root: Path, name: str, images=None, label=None, affine=AFFINE,
                  extension=".nii.gz", with_label=True) -> Path:
    """Write one subject folder the BraTS way (``extension``: ``.nii.gz`` or ``.nii``); returns
    the folder."""
    if images is None:
        images, default_label, _ = tiny_volumes()
        label = default_label if label is None else label
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for contrast, vol in images.items():
        save_nifti(vol, affine, folder / raw_file_name(name, contrast, extension))
    if with_label and label is not None:
        save_nifti(label, affine, folder / raw_file_name(name, LABEL_SUFFIX, extension))
    return folder


def training_summary(model: str = "unet3d", **fields):
    """A :class:`TrainingSummary` with plausible values; ``fields`` replace any of them."""
    from brats_unet.training.summary import TrainingSummary

    values = {
        "model": model, "spatial_dims": 2 if model.endswith("2d") else 3,
        "backend": "tensorflow", "backend_reason": "auto: no GPU",
        "cpu": "AMD EPYC, 2 CPUs usable, avx2 fma", "tensorflow_onednn": "1",
        "keras_version": "3.15.1", "precision": "float32", "jit_compile": False, "gpus": 0,
        "cpu_threads": 2, "trainable_parameters": 1000, "epochs_run": 2, "best_epoch": 2,
        "best_val_dice": {"WT": 0.9, "TC": 0.8, "ET": 0.7}, "best_val_dice_mean": 0.8,
        "training_seconds_this_run": 10.0, "training_seconds_total": 10.0,
        "median_samples_per_second": 3.0, "resumed": False, "train_subjects": ["A", "B"],
        "validation_subjects": ["C"], "settings": {"patch_size": [16, 32, 32]},
    }
    return TrainingSummary(**{**values, **fields})


def write_trained_files(folder: Path, model: str, train=("A", "B"), validation=("C",)) -> None:
    """The three files training leaves for ``model`` in ``folder``; the weights file holds
    ``weights of <model>``."""
    from brats_unet.training.summary import write_training_summary

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{model}.keras").write_bytes(b"weights of " + model.encode())
    (folder / f"{model}.history.csv").write_text("epoch,val_dice_mean\n0,0.5\n")
    summary = training_summary(model, best_val_dice={"WT": 0.9}, train_subjects=list(train),
                               validation_subjects=list(validation))
    write_training_summary(summary, folder / f"{model}.json")
