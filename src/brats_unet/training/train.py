"""Training one U-Net: hardware-aware precision, checkpoint on validation Dice, resumable.

The model, loss and metrics are back-end neutral (``keras.ops`` only); this
module is where the back end shows: choosing the precision from the hardware,
making kernels deterministic, spreading over several GPUs.

Selection happens only on the validation subjects: the checkpoint kept is the
epoch with the best mean validation Dice over WT, TC and ET. The test subjects
are never read here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brats_unet.io import atomic_path, write_json
from brats_unet.labels import REGIONS
from brats_unet.training.loaders import PatchDataset, SliceDataset, SyncEpoch, ValidationData
from brats_unet.training.losses import SoftDiceBCELoss, region_dice_metrics
from brats_unet.training.summary import TrainingSummary, write_training_summary
from brats_unet.models.unets import (build_model, count_trainable_parameters, logits_model,
                                     spatial_dims_of)
from brats_unet.preprocessing.cases import open_arrays
from brats_unet.runtime import cpu_description, cpu_threads

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
MONITOR = "val_dice_mean"
FINGERPRINT_FILE = "fingerprint.json"
BEST_FILE = "best.keras"


@dataclass(frozen=True)
class TrainingSettings:
    """How one model is trained. Patch sizes are ``(Z, Y, X)`` voxels, or ``(Y, X)`` in 2D."""

    patch_size: tuple[int, ...]
    batch_size: int
    epochs: int
    steps_per_epoch: int
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"  # or "constant"
    early_stopping_patience: int = 0  # 0: off
    tumour_fraction: float = 0.5
    augment: bool = True
    dice_weight: float = 1.0
    bce_weight: float = 1.0
    batch_dice: bool = True
    precision: str = "auto"
    jit_compile: str | bool = "auto"
    seed: int = 0
    loader_workers: int = 1
    model_options: dict[str, Any] = field(default_factory=dict)


def settings_for(model_name: str, training: dict[str, Any],
                 model_block: dict[str, Any]) -> TrainingSettings:
    """One model's settings: the shared ``training`` block, overridden by the model's own."""
    dims = spatial_dims_of(model_name)
    patch = tuple(int(s) for s in model_block["patch_size"])
    if len(patch) != dims:
        raise ValueError(f"models.{model_name}.patch_size must have {dims} sizes "
                         f"({'Y X' if dims == 2 else 'Z Y X'}), got {list(patch)}")
    divisor = 2 ** (model_block["architecture"]["depth"] - 1)
    if any(p % divisor for p in patch):
        raise ValueError(f"models.{model_name}.patch_size {list(patch)} must be divisible by "
                         f"{divisor} (2 ** (depth - 1))")
    merged = {**training, **(model_block.get("training") or {})}
    return TrainingSettings(patch_size=patch, batch_size=int(model_block["batch_size"]),
                            model_options=dict(model_block["architecture"]), **merged)


def gpu_count() -> int:
    """GPUs the current Keras back end can use."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    if backend == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.devices())
    return 0


def resolve_precision(precision: str, n_gpus: int) -> str:
    """``auto``: mixed_float16 on a GPU, float32 on a CPU (half precision is slower there)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "mixed_float16" if n_gpus > 0 else "float32"
    return precision


def resolve_jit(jit_compile: str | bool, n_gpus: int, backend: str = "tensorflow") -> bool:
    """``auto``: XLA on a GPU with TensorFlow only.

    Measured: XLA slows 3D training and inference on this CPU; on the torch
    back end ``jit_compile`` means ``torch.compile``, which Keras marks experimental.
    """
    if jit_compile == "auto":
        return n_gpus > 0 and backend == "tensorflow"
    if isinstance(jit_compile, bool):
        return jit_compile
    raise ValueError(f"jit_compile must be auto, true or false, got {jit_compile!r}")


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and the back end, and ask for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def fingerprint(model_name: str, settings: TrainingSettings, train: list[str],
                validation: list[str]) -> str:
    """A hash of everything that makes a backup resumable: same hash, same run."""
    payload = json.dumps(
        {"model": model_name, "settings": asdict(settings), "train": sorted(train),
         "validation": sorted(validation), "backend": keras.backend.backend()},
        sort_keys=True, default=list,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def prepare_state_dir(state_dir: Path, stamp: str) -> bool:
    """Keep ``state_dir`` only if it belongs to this very run; True when there is one to resume."""
    marker = state_dir / FINGERPRINT_FILE
    if marker.exists() and json.loads(marker.read_text()).get("fingerprint") == stamp:
        return usable_backup(state_dir / "backup")
    if state_dir.exists():
        log.info("discarding training state of other settings in %s", state_dir)
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    write_json({"fingerprint": stamp}, marker)
    return False


def _backup_readable(weights: Path, metadata: Path) -> bool:
    import h5py

    try:
        if not isinstance(json.loads(metadata.read_text()).get("epoch"), int):
            return False
        with h5py.File(weights, "r") as handle:
            handle.keys()
    except (OSError, ValueError, AttributeError):
        return False
    return True


def usable_backup(backup_dir: Path) -> bool:
    """True when ``backup_dir`` holds a complete BackupAndRestore backup to resume from.

    Keras writes the weights and then the epoch, neither atomically, and falls back to its
    previous copy (``.bkp``) only when the weights fail to load. A run killed mid-write can
    leave a torn pair; this keeps the newest readable pair, else removes the backup (the
    run restarts) rather than failing on every retry.
    """
    weights, metadata = backup_dir / "latest.weights.h5", backup_dir / "training_metadata.json"
    previous = [Path(f"{weights}.bkp"), Path(f"{metadata}.bkp")]
    if _backup_readable(weights, metadata):
        return True
    if _backup_readable(*previous):
        log.info("the last backup in %s is torn; resuming from the one before", backup_dir)
        shutil.copyfile(previous[0], weights)
        shutil.copyfile(previous[1], metadata)
        return True
    if backup_dir.exists():
        log.info("no readable backup in %s; training starts again", backup_dir)
        shutil.rmtree(backup_dir)
    return False


def best_so_far(history_path: Path) -> float | None:
    """The best monitored value in a history CSV, to carry the checkpoint's threshold over a resume."""
    if not history_path.exists():
        return None
    with history_path.open() as handle:
        values = [float(row[MONITOR]) for row in csv.DictReader(handle) if row.get(MONITOR)]
    return max(values) if values else None


def write_history(state_history: Path, history_path: Path) -> list[dict[str, str]]:
    """Copy the history CSV, one row per epoch.

    A run killed after logging an epoch but before backing it up repeats that
    epoch when resumed; the repeat is the row that counts.
    """
    with state_history.open() as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        rows = {int(row["epoch"]): row for row in reader}
    history = [rows[e] for e in sorted(rows)]
    with atomic_path(history_path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)
    return history


class MeanValidationDice(keras.callbacks.Callback):
    """Adds ``val_dice_mean`` (mean of the regions' validation Dice) to the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        values = [logs.get(f"val_dice_{r.lower()}") for r in REGIONS]
        if all(v is not None for v in values):
            logs[MONITOR] = float(np.mean(values))


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
            self.to_save.save(partial)
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
    the loss, the validation Dice per region and their mean, this epoch's seconds and the time
    left (the median epoch of this run so far, times the epochs to go)."""
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
        parts.append(f"{epoch_seconds[-1]:.1f} s, about {_duration(left)} left")
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


def learning_rate(settings: TrainingSettings):
    total = settings.epochs * settings.steps_per_epoch
    if settings.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(settings.learning_rate, decay_steps=total,
                                                      alpha=0.01)
    if settings.lr_schedule == "constant":
        return settings.learning_rate
    raise ValueError(f"lr_schedule must be cosine or constant, got {settings.lr_schedule!r}")


def make_datasets(model_name: str, settings: TrainingSettings, train_dirs: list[Path],
                  validation_dirs: list[Path]):
    dims = spatial_dims_of(model_name)
    workers = {"workers": settings.loader_workers} if settings.loader_workers > 1 else {}
    common = dict(batch_size=settings.batch_size, steps_per_epoch=settings.steps_per_epoch,
                  tumour_fraction=settings.tumour_fraction, augment=settings.augment,
                  seed=settings.seed, **workers)
    if dims == 2:
        train = SliceDataset(train_dirs, slice_size=settings.patch_size, **common)
    else:
        train = PatchDataset(train_dirs, patch_size=settings.patch_size, **common)
    divisor = 2 ** (settings.model_options.get("depth", 4) - 1)
    validation = ValidationData(validation_dirs, spatial_dims=dims,
                                patch_size=whole_case_size(validation_dirs, dims, divisor),
                                batch_size=settings.batch_size if dims == 2 else 1)
    return train, validation


def whole_case_size(case_dirs: list[Path], spatial_dims: int, divisor: int) -> tuple[int, ...]:
    """The smallest patch that holds every case whole (2D: every axial slice), in steps of ``divisor``.

    Validation runs on whole cases, not on patches, so the checkpoint is chosen
    on what prediction will see.
    """
    shapes = np.array([open_arrays(d)[0].shape[:3] for d in case_dirs])
    biggest = shapes.max(axis=0)[3 - spatial_dims:]
    return tuple(int(-(-s // divisor) * divisor) for s in biggest)


def build_for_training(model_name: str, settings: TrainingSettings, *, jit: bool,
                       n_gpus: int) -> tuple[keras.Model, keras.Model]:
    """``(model, trainer)``: the sigmoid model that is saved, and its compiled logits view.

    Both share their layers; training fits the logits view with the loss on
    logits, which never stops learning on a saturated sigmoid. Several GPUs on
    the TensorFlow back end: a mirrored strategy.
    """
    def build():
        model = build_model(model_name, **settings.model_options)
        trainer = logits_model(model)
        trainer.compile(
            optimizer=keras.optimizers.Adam(learning_rate(settings)),
            loss=SoftDiceBCELoss(dice_weight=settings.dice_weight, bce_weight=settings.bce_weight,
                                 batch_dice=settings.batch_dice, from_logits=True),
            metrics=region_dice_metrics(from_logits=True),
            jit_compile=jit,
        )
        return model, trainer

    if n_gpus > 1 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.distribute.MirroredStrategy().scope():
            return build()
    return build()


def training_callbacks(model_name: str, settings: TrainingSettings, *, model: keras.Model,
                       train_data: PatchDataset, state_dir: Path,
                       resuming: bool) -> list[keras.callbacks.Callback]:
    """The training job's callbacks, in the order they must run at an epoch's end: the epoch's
    seconds and mean validation Dice join the logs before the progress line, the checkpoint,
    the history row and the backup read them."""
    state_history = state_dir / "history.csv"
    callbacks = [
        SyncEpoch(train_data),  # batch contents follow Keras' epoch number, resumed or not
        EpochClock(),
        MeanValidationDice(),
        EpochProgress(model_name, settings.epochs),
        BestCheckpoint(model, state_dir / BEST_FILE,
                       best_so_far(state_history) if resuming else None),
        keras.callbacks.CSVLogger(state_history, append=resuming),
        # double_checkpoint: a kill while the backup is written falls back to the one before
        keras.callbacks.BackupAndRestore(state_dir / "backup", double_checkpoint=True),
    ]
    if settings.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=MONITOR, mode="max", patience=settings.early_stopping_patience))
    return callbacks


def training_summary(model_name: str, settings: TrainingSettings, *, model: keras.Model,
                     history: list[dict[str, str]], precision: str, jit: bool, n_gpus: int,
                     seconds: float, resuming: bool, backend_reason: str | None,
                     train_dirs: list[Path], validation_dirs: list[Path]) -> TrainingSummary:
    """``<model>.json``: how and on what the model was trained, and its best epoch."""
    best_row = max(history, key=lambda row: float(row[MONITOR]))
    epoch_seconds = [float(r["epoch_seconds"]) for r in history if r.get("epoch_seconds")]
    samples = settings.batch_size * settings.steps_per_epoch
    return TrainingSummary(**{
        "model": model_name,
        "spatial_dims": spatial_dims_of(model_name),
        "backend": keras.backend.backend(),
        "backend_reason": backend_reason,
        "cpu": cpu_description(),
        "tensorflow_onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "keras_version": keras.__version__,
        "precision": precision,
        "jit_compile": jit,
        "gpus": n_gpus,
        "cpu_threads": cpu_threads(keras.backend.backend()),
        "trainable_parameters": count_trainable_parameters(model),
        "epochs_run": len(history),
        "best_epoch": int(best_row["epoch"]) + 1,
        "best_val_dice": {r: float(best_row[f"val_dice_{r.lower()}"]) for r in REGIONS},
        "best_val_dice_mean": float(best_row[MONITOR]),
        "training_seconds_this_run": seconds,
        "training_seconds_total": float(sum(epoch_seconds)),
        "median_samples_per_second": (samples / float(np.median(epoch_seconds))
                                      if epoch_seconds else math.nan),
        "resumed": resuming,
        "train_subjects": [p.name for p in train_dirs],
        "validation_subjects": [p.name for p in validation_dirs],
        "settings": asdict(settings),
    })


def train_model(model_name: str, settings: TrainingSettings, *, train_dirs: list[Path],
                validation_dirs: list[Path], weights_path: Path, history_path: Path,
                summary_path: Path, state_dir: Path,
                backend_reason: str | None = None) -> TrainingSummary:
    """Train ``model_name`` and write its best checkpoint, history CSV and summary JSON.

    ``backend_reason``: why the job runs on the current back end (``runtime.resolve_backend``),
    recorded in the summary beside the back end and the machine's CPU.

    ``state_dir`` holds what a killed run resumes from (a BackupAndRestore
    backup and the best checkpoint so far); it must not be a declared output
    of the job, since Snakemake deletes those when a job fails. It is kept
    only for the same settings and subjects (a fingerprint), and removed
    after a finished run.
    """
    if not train_dirs or not validation_dirs:
        raise ValueError(f"{model_name}: training needs training and validation subjects "
                         f"(got {len(train_dirs)} and {len(validation_dirs)})")
    weights_path, history_path, state_dir = Path(weights_path), Path(history_path), Path(state_dir)
    n_gpus = gpu_count()
    precision = resolve_precision(settings.precision, n_gpus)
    jit = resolve_jit(settings.jit_compile, n_gpus, keras.backend.backend())
    stamp = fingerprint(model_name, settings, [p.name for p in train_dirs],
                        [p.name for p in validation_dirs])
    resuming = prepare_state_dir(state_dir, stamp)
    state_history = state_dir / "history.csv"
    if not resuming and state_history.exists():
        state_history.unlink()

    make_deterministic(settings.seed)
    keras.mixed_precision.set_dtype_policy(precision)
    log.info("%s: back end %s, %d GPU(s), precision %s, XLA %s, %s", model_name,
             keras.backend.backend(), n_gpus, precision, jit,
             "resuming from the last backup" if resuming else "starting")

    model, trainer = build_for_training(model_name, settings, jit=jit, n_gpus=n_gpus)

    train_data, validation_data = make_datasets(model_name, settings, list(train_dirs),
                                                list(validation_dirs))
    best_path = state_dir / BEST_FILE
    callbacks = training_callbacks(model_name, settings, model=model, train_data=train_data,
                                   state_dir=state_dir, resuming=resuming)
    start = time.perf_counter()
    trainer.fit(train_data, validation_data=validation_data, epochs=settings.epochs,
                callbacks=callbacks, shuffle=False, verbose=2)
    seconds = time.perf_counter() - start

    if not best_path.exists():
        raise RuntimeError(f"{model_name}: no checkpoint was written (validation Dice never "
                           f"computed?); see {state_history}")
    with atomic_path(weights_path) as tmp:
        shutil.copyfile(best_path, tmp)
    history = write_history(state_history, history_path)
    summary = training_summary(model_name, settings, model=model, history=history,
                               precision=precision, jit=jit, n_gpus=n_gpus, seconds=seconds,
                               resuming=resuming, backend_reason=backend_reason,
                               train_dirs=train_dirs, validation_dirs=validation_dirs)
    write_training_summary(summary, summary_path)
    shutil.rmtree(state_dir, ignore_errors=True)
    return summary
