"""The training job's Keras callbacks: mean validation Dice, best checkpoint, progress lines.

Selection happens only on the validation subjects: the checkpoint kept is the epoch with
the best mean validation Dice over WT, TC and ET (:data:`MONITOR`).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brats_unet.labels import REGIONS
from brats_unet.models.unets import with_data_format
from brats_unet.training.loaders import PatchDataset, SyncEpoch
from brats_unet.training.resume import BACKUP_DIR, BEST_FILE, HISTORY_FILE
from brats_unet.training.settings import TrainingSettings

log = logging.getLogger(__name__)

#: The epoch log entry the checkpoint and early stopping follow.
MONITOR = "val_dice_mean"


class MeanValidationDice(keras.callbacks.Callback):
    """Adds ``val_dice_mean`` (mean of the regions' validation Dice) to the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        values = [logs.get(f"val_dice_{r.lower()}") for r in REGIONS]
        if all(v is not None for v in values):
            logs[MONITOR] = float(np.mean(values))


def best_so_far(history_path: Path) -> float | None:
    """The best monitored value in a history CSV, to carry the checkpoint's threshold over a resume."""
    if not history_path.exists():
        return None
    with history_path.open() as handle:
        values = [float(row[MONITOR]) for row in csv.DictReader(handle) if row.get(MONITOR)]
    return max(values) if values else None


class BestCheckpoint(keras.callbacks.Callback):
    """Saves ``model`` (the sigmoid model, not the one being fitted) when ``val_dice_mean`` improves."""

    def __init__(self, model: keras.Model, path: Path, best: float | None = None):
        super().__init__()
        self.to_save = model
        self.path = Path(path)
        self.best = -math.inf if best is None else best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(MONITOR)
        if value is not None and value > self.best:
            self.best = value
            # Keras wants the .keras suffix, so write beside and rename.
            partial = self.path.with_name(f".partial-{self.path.name}")
            # the file channels last whatever the layout trained in: every back end runs it
            with_data_format(self.to_save, "channels_last").save(partial)
            os.replace(partial, self.path)


class EpochClock(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch, in the logs (and so in the history CSV)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def progress_line(model_name: str, epoch: int, epochs: int, logs: dict[str, Any],
                  epoch_seconds: list[float]) -> str:
    """One line for the job's log at the end of epoch ``epoch`` (counted from 1) of ``epochs``:
    the loss, the validation Dice per region and their mean, this epoch's seconds (of them
    validating) and the time left (the median epoch of this run so far, times the epochs to go)."""
    dice = " ".join(f"{r} {float(logs[f'val_dice_{r.lower()}']):.3f}" for r in REGIONS
                    if f"val_dice_{r.lower()}" in logs)
    parts = [f"{model_name}: epoch {epoch}/{epochs}"]
    if "loss" in logs:
        parts.append(f"loss {float(logs['loss']):.4f}")
    if dice:
        mean = f" (mean {float(logs[MONITOR]):.3f})" if MONITOR in logs else ""
        parts.append(f"validation Dice {dice}{mean}")
    if epoch_seconds:
        left = float(np.median(epoch_seconds)) * (epochs - epoch)
        validating = (f" ({float(logs['validation_seconds']):.1f} s validating)"
                      if "validation_seconds" in logs else "")
        parts.append(f"{epoch_seconds[-1]:.1f} s{validating}, about {_duration(left)} left")
    return ", ".join(parts)


class EpochProgress(keras.callbacks.Callback):
    """Logs :func:`progress_line` at the end of every epoch: ``tail -f`` on the job's log shows
    the training as it goes (the log's file handler writes each line out at once)."""

    def __init__(self, model_name: str, epochs: int):
        super().__init__()
        self.model_name, self.epochs, self.seconds = model_name, epochs, []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "epoch_seconds" in logs:
            self.seconds.append(float(logs["epoch_seconds"]))
        log.info("%s", progress_line(self.model_name, epoch + 1, self.epochs, logs, self.seconds))


def training_callbacks(model_name: str, settings: TrainingSettings, *, model: keras.Model,
                       train_data: PatchDataset, validation: keras.callbacks.Callback,
                       state_dir: Path, resuming: bool) -> list[keras.callbacks.Callback]:
    """The training job's callbacks, in the order they must run at an epoch's end: the
    validation Dice (``validation``, e.g. :class:`brats_unet.training.validation.CaseValidation`),
    the epoch's seconds (validation included) and the mean validation Dice join the logs before
    the progress line, the checkpoint, the history row and the backup read them."""
    state_history = state_dir / HISTORY_FILE
    callbacks = [
        SyncEpoch(train_data),  # batch contents follow Keras' epoch number, resumed or not
        validation,
        EpochClock(),
        MeanValidationDice(),
        EpochProgress(model_name, settings.epochs),
        BestCheckpoint(model, state_dir / BEST_FILE,
                       best_so_far(state_history) if resuming else None),
        keras.callbacks.CSVLogger(state_history, append=resuming),
        # double_checkpoint: a kill while the backup is written falls back to the one before
        keras.callbacks.BackupAndRestore(state_dir / BACKUP_DIR, double_checkpoint=True),
    ]
    if settings.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=MONITOR, mode="max", patience=settings.early_stopping_patience))
    return callbacks
