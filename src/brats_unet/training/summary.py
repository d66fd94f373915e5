"""``<model>.json``, the training summary: the record that the training job hands to every later
stage (prediction's patch, the held-out guard, the benchmark table, the report).

Written by :func:`write_training_summary` and read only through :func:`read_training_summary`,
so a missing or unknown key is an error naming the file, not a ``KeyError`` three stages on.
Keras-free: evaluation and reporting read it too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from brats_unet.io import read_record, write_json


@dataclass(frozen=True)
class TrainingSummary:
    """How, on what and on which machine one model was trained, and its best epoch."""

    model: str
    spatial_dims: int  # 2 (axial slices) or 3 (volumes): what the network takes
    backend: str
    backend_reason: str | None  # why the job ran on ``backend`` (runtime.resolve_backend)
    cpu: str
    tensorflow_onednn: str | None
    keras_version: str
    precision: str
    jit_compile: bool
    gpus: int
    cpu_threads: int | None
    trainable_parameters: int
    epochs_run: int
    best_epoch: int  # counted from 1
    best_val_dice: dict[str, float]  # region -> validation Dice of the best epoch
    best_val_dice_mean: float
    training_seconds_this_run: float
    training_seconds_total: float
    median_samples_per_second: float
    resumed: bool
    train_subjects: list[str]
    validation_subjects: list[str]
    settings: dict[str, Any]  # the TrainingSettings the model was trained with

    @property
    def patch_size(self) -> list[int]:
        """The training patch: a 3D model's inference window."""
        return list(self.settings["patch_size"])


FIELDS = tuple(f.name for f in dataclasses.fields(TrainingSummary))


def curve_settling(curve: Sequence[float], last: int = 4) -> dict[str, float]:
    """How much a validation curve (one value per epoch) still moves at the end of a run:
    ``largest_late_fall``, the largest drop from one epoch to the next over its second half
    (0 if it never drops), and ``last_spread``, max - min over its ``last`` epochs."""
    if not curve:
        raise ValueError("a validation curve needs at least one epoch")
    values = [float(v) for v in curve]
    second_half = values[len(values) // 2:]
    falls = [a - b for a, b in zip(second_half, second_half[1:])]
    return {"largest_late_fall": max([0.0, *falls]),
            "last_spread": max(values[-last:]) - min(values[-last:])}


def write_training_summary(summary: TrainingSummary, path: str | os.PathLike) -> None:
    write_json(dataclasses.asdict(summary), path)


def read_training_summary(path: str | os.PathLike) -> TrainingSummary:
    """The summary in ``path``; a ValueError naming the file and the keys if it is not one."""
    return TrainingSummary(**read_record(path, FIELDS, "a training summary"))
