"""Training one U-Net: hardware-aware precision, checkpoint on validation Dice, resumable.

The model, loss and metrics are back-end neutral (``keras.ops`` only); what depends on the
back end (precision from the hardware, deterministic kernels, XLA, several GPUs) is chosen
in :mod:`brats_unet.runtime`; the callbacks are in :mod:`brats_unet.training.callbacks`, the
resumable state in :mod:`brats_unet.training.resume`.

Selection happens only on the validation subjects: the checkpoint kept is the
epoch with the best mean validation Dice over WT, TC and ET. The test subjects
are never read here.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np

from brats_unet.io import atomic_path
from brats_unet.labels import REGIONS
from brats_unet.models.unets import (
    build_model,
    count_trainable_parameters,
    logits_model,
    resolve_data_format,
    spatial_dims_of,
)
from brats_unet.runtime import (
    cpu_description,
    cpu_threads,
    gpu_count,
    make_deterministic,
    replica_scope,
    resolve_jit,
    resolve_precision,
)
from brats_unet.training.callbacks import MONITOR, training_callbacks
from brats_unet.training.loaders import PatchDataset, SliceDataset
from brats_unet.training.losses import SoftDiceBCELoss, region_dice_metrics
from brats_unet.training.resume import (
    BEST_FILE,
    HISTORY_FILE,
    fingerprint,
    prepare_state_dir,
    write_history,
)
from brats_unet.training.settings import TrainingSettings
from brats_unet.training.summary import TrainingSummary, write_training_summary
from brats_unet.training.validation import CaseValidation

log = logging.getLogger(__name__)


def learning_rate(settings: TrainingSettings):
    """The optimiser's learning rate: ``warmup_epochs`` rising linearly from 1 % of
    ``learning_rate`` to it, then constant or a cosine decay to 1 % at the last step."""
    total = settings.epochs * settings.steps_per_epoch
    warmup = settings.warmup_epochs * settings.steps_per_epoch
    if settings.lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be cosine or constant, got {settings.lr_schedule!r}")
    if settings.lr_schedule == "constant" and not warmup:
        return settings.learning_rate
    # CosineDecay with alpha 1 decays to 100 %: constant after the warm-up.
    alpha = 0.01 if settings.lr_schedule == "cosine" else 1.0
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(settings.learning_rate, decay_steps=total,
                                                      alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(
        0.01 * settings.learning_rate, decay_steps=total - warmup, alpha=alpha,
        warmup_target=settings.learning_rate, warmup_steps=warmup)


def make_training_data(model_name: str, settings: TrainingSettings,
                       train_dirs: list[Path]) -> PatchDataset:
    """The training batches: 3D patches, or 2D axial slices (whole or cropped)."""
    workers = {"workers": settings.loader_workers} if settings.loader_workers > 1 else {}
    common = dict(batch_size=settings.batch_size, steps_per_epoch=settings.steps_per_epoch,
                  tumour_fraction=settings.tumour_fraction, augment=settings.augment,
                  seed=settings.seed, **workers)
    if spatial_dims_of(model_name) == 2:
        return SliceDataset(train_dirs, slice_size=settings.patch_size, **common)
    return PatchDataset(train_dirs, patch_size=settings.patch_size, **common)


def make_validation(model: keras.Model, model_name: str, settings: TrainingSettings,
                    validation_dirs: list[Path]) -> CaseValidation:
    """Whole validation cases through ``model`` each epoch, a training batch's voxels a pass."""
    return CaseValidation(model, validation_dirs, spatial_dims=spatial_dims_of(model_name),
                          patch_size=settings.patch_size, batch_size=settings.batch_size,
                          divisor=2 ** (settings.model_options.get("depth", 4) - 1))


def build_for_training(model_name: str, settings: TrainingSettings, *, jit: bool,
                       n_gpus: int) -> tuple[keras.Model, keras.Model]:
    """``(model, trainer)``: the sigmoid model that is saved, and its compiled logits view.

    Both share their layers; training fits the logits view with the loss on
    logits, which never stops learning on a saturated sigmoid. Several GPUs on
    the TensorFlow back end: a mirrored strategy (:func:`brats_unet.runtime.replica_scope`).
    """
    with replica_scope(n_gpus):
        model = build_model(model_name, data_format=resolve_data_format(settings.data_format,
                                                                     keras.backend.backend()),
                            **settings.model_options)
        trainer = logits_model(model)
        trainer.compile(
            optimizer=keras.optimizers.Adam(learning_rate(settings)),
            loss=SoftDiceBCELoss(dice_weight=settings.dice_weight, bce_weight=settings.bce_weight,
                                 batch_dice=settings.batch_dice, from_logits=True),
            metrics=region_dice_metrics(from_logits=True),
            jit_compile=jit,
        )
    return model, trainer


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


def _keep_best(model_name: str, best_path: Path, weights_path: Path, state_history: Path) -> None:
    """Copy the run's best checkpoint to ``weights_path``, all or nothing."""
    if not best_path.exists():
        raise RuntimeError(f"{model_name}: no checkpoint was written (validation Dice never "
                           f"computed?); see {state_history}")
    with atomic_path(weights_path) as tmp:
        shutil.copyfile(best_path, tmp)


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
    backend, n_gpus = keras.backend.backend(), gpu_count()
    # the layout the job computes in, recorded in the summary's settings
    settings = replace(settings, data_format=resolve_data_format(settings.data_format, backend))
    precision = resolve_precision(settings.precision, n_gpus)
    jit = resolve_jit(settings.jit_compile, n_gpus, backend)
    stamp = fingerprint(model_name, settings, [p.name for p in train_dirs],
                        [p.name for p in validation_dirs])
    resuming = prepare_state_dir(state_dir, stamp)
    state_history = state_dir / HISTORY_FILE
    if not resuming and state_history.exists():
        state_history.unlink()

    make_deterministic(settings.seed)
    keras.mixed_precision.set_dtype_policy(precision)
    log.info("%s: back end %s, %d GPU(s), precision %s, XLA %s, %s, %s", model_name,
             backend, n_gpus, precision, jit, settings.data_format,
             "resuming from the last backup" if resuming else "starting")

    model, trainer = build_for_training(model_name, settings, jit=jit, n_gpus=n_gpus)

    train_data = make_training_data(model_name, settings, list(train_dirs))
    validation = make_validation(model, model_name, settings, list(validation_dirs))
    best_path = state_dir / BEST_FILE
    callbacks = training_callbacks(model_name, settings, model=model, train_data=train_data,
                                   validation=validation, state_dir=state_dir, resuming=resuming)
    start = time.perf_counter()
    trainer.fit(train_data, epochs=settings.epochs, callbacks=callbacks, shuffle=False,
                verbose=2)
    seconds = time.perf_counter() - start

    _keep_best(model_name, best_path, weights_path, state_history)
    history = write_history(state_history, history_path)
    summary = training_summary(model_name, settings, model=model, history=history,
                               precision=precision, jit=jit, n_gpus=n_gpus, seconds=seconds,
                               resuming=resuming, backend_reason=backend_reason,
                               train_dirs=train_dirs, validation_dirs=validation_dirs)
    write_training_summary(summary, summary_path)
    shutil.rmtree(state_dir, ignore_errors=True)
    return summary
