"""Training: settings, precision and XLA choices, resumable state, and a real kill-and-resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from brats_unet.preprocessing.cases import preprocess_to_folder
from brats_unet.data.subjects import discover_subjects
from brats_unet.data.synthetic import generate_dataset
from brats_unet.training.summary import read_training_summary
from brats_unet.training.train import (
    prepare_state_dir, resolve_jit, resolve_precision, settings_for,
    write_history,
)
from training_state import backed_up_epoch

TRAINING = dict(precision="auto", jit_compile="auto", seed=3, epochs=2, steps_per_epoch=2,
                learning_rate=1e-3, lr_schedule="cosine", early_stopping_patience=0,
                tumour_fraction=0.5, augment=True, dice_weight=1.0, bce_weight=1.0, batch_dice=True,
                loader_workers=1)
MODEL_3D = {"architecture": {"base_filters": 4, "depth": 3, "norm": "batch", "dropout": 0.0},
            "patch_size": [16, 32, 32], "batch_size": 2}


def test_precision_follows_the_hardware_unless_forced():
    assert resolve_precision("auto", n_gpus=0) == "float32"
    assert resolve_precision("auto", n_gpus=1) == "mixed_float16"
    assert resolve_precision("mixed_bfloat16", n_gpus=0) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("half", n_gpus=0)


def test_xla_is_off_on_cpu_by_default():
    assert resolve_jit("auto", n_gpus=0) is False
    assert resolve_jit("auto", n_gpus=2) is True
    assert resolve_jit("auto", n_gpus=1, backend="torch") is False
    assert resolve_jit(True, n_gpus=0) is True


def test_model_block_overrides_shared_training_settings():
    block = dict(MODEL_3D, training={"epochs": 7})
    settings = settings_for("unet3d", TRAINING, block)
    assert settings.epochs == 7 and settings.steps_per_epoch == 2
    assert settings.patch_size == (16, 32, 32) and settings.model_options["base_filters"] == 4


@pytest.mark.parametrize("model, patch, message", [
    ("unet2d", [16, 32, 32], "must have 2 sizes"),
    ("unet3d", [16, 32], "must have 3 sizes"),
    ("unet3d", [16, 30, 32], "divisible by 4"),
])
def test_bad_patch_sizes_are_clear(model, patch, message):
    with pytest.raises(ValueError, match=message):
        settings_for(model, TRAINING, dict(MODEL_3D, patch_size=patch))


def test_state_of_other_settings_is_discarded(tmp_path: Path):
    state = tmp_path / "state"
    assert prepare_state_dir(state, "aaa") is False
    (state / "backup").mkdir()
    assert prepare_state_dir(state, "aaa") is False  # an empty backup is nothing to resume
    _backup_pair(state / "backup", 2)
    assert prepare_state_dir(state, "aaa") is True  # same run: resume
    assert prepare_state_dir(state, "bbb") is False  # other settings: start over
    assert not (state / "backup").exists()


def test_history_keeps_one_row_per_epoch_the_last_one(tmp_path: Path):
    raw = tmp_path / "raw.csv"
    raw.write_text("epoch,loss\n0,0.9\n1,0.8\n1,0.7\n2,0.6\n")
    rows = write_history(raw, tmp_path / "history.csv")
    assert [(r["epoch"], r["loss"]) for r in rows] == [("0", "0.9"), ("1", "0.7"), ("2", "0.6")]
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == "epoch,loss"


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("train")
    generate_dataset(root / "data", n=3, seed=5, shape=(40, 40, 28), spacing_mm=(5.0, 5.0, 5.5))
    out = []
    for files in discover_subjects(root / "data").subjects:
        preprocess_to_folder(files, root / "pre" / files.subject)
        out.append(root / "pre" / files.subject)
    return out


TRAIN_SCRIPT = textwrap.dedent("""
    import json, logging, sys
    from pathlib import Path
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)  # the job log's progress lines
    from brats_unet.training.train import settings_for, train_model
    args = json.loads(sys.argv[1])
    out = Path(args["out"])
    summary = train_model(
        "unet3d", settings_for("unet3d", args["training"], args["model"]),
        train_dirs=[Path(p) for p in args["train"]], validation_dirs=[Path(p) for p in args["val"]],
        weights_path=out / "m.keras", history_path=out / "h.csv", summary_path=out / "s.json",
        state_dir=out / "state")
""")


def _train_command(cases, out: Path, epochs: int, steps: int) -> list[str]:
    args = {"out": str(out), "training": dict(TRAINING, epochs=epochs, steps_per_epoch=steps),
            "model": MODEL_3D, "train": [str(c) for c in cases[:2]], "val": [str(cases[2])]}
    return [sys.executable, "-c", TRAIN_SCRIPT, json.dumps(args)]


def _epoch_backed_up(state: Path) -> bool:
    """An epoch's backup record and history row are both complete (Keras writes them in place,
    so either may be half there when looked at)."""
    if backed_up_epoch(state / "backup" / "training_metadata.json") is None:
        return False
    try:
        with (state / "history.csv").open() as handle:
            return any(row.get("epoch") for row in csv.DictReader(handle))
    except OSError:
        return False


def test_killed_training_resumes_at_the_next_epoch(cases, tmp_path: Path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = _train_command(cases, tmp_path, epochs=3, steps=6)
    stderr = open(tmp_path / "stderr.txt", "w")  # a file: a pipe nobody reads could fill up
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 240
    while not _epoch_backed_up(tmp_path / "state"):
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
        assert time.monotonic() < deadline, "no epoch backed up within 240 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "m.keras").exists()
    with (tmp_path / "state" / "history.csv").open() as handle:
        epochs_before = [int(r["epoch"]) for r in csv.DictReader(handle)]
    assert epochs_before and max(epochs_before) < 2

    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_training_summary(tmp_path / "s.json")
    assert summary.resumed is True and summary.epochs_run == 3 and summary.spatial_dims == 3
    assert "Epoch 1/3" not in result.stdout  # continued, not started over
    assert "Epoch 3/3" in result.stdout
    # the log's progress line of every epoch this run trained, numbered as Keras numbers them
    assert "unet3d: epoch 1/3" not in result.stderr
    assert "unet3d: epoch 3/3, loss " in result.stderr and "about 0 s left" in result.stderr
    with (tmp_path / "h.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2]
    assert not (tmp_path / "state").exists()  # removed after a finished run


def test_same_seed_gives_the_same_weights_bit_for_bit(cases, tmp_path: Path, caplog):
    import logging

    import keras

    import brats_unet.models.unets  # noqa: F401  (registers the model class for loading)
    from brats_unet.training.train import train_model

    settings = settings_for("unet3d", dict(TRAINING, epochs=1, steps_per_epoch=3), MODEL_3D)
    weights = []
    for run in ("a", "b"):
        out = tmp_path / run
        with caplog.at_level(logging.INFO, logger="brats_unet"):
            train_model("unet3d", settings, train_dirs=cases[:2], validation_dirs=cases[2:],
                        weights_path=out / "m.keras", history_path=out / "h.csv",
                        summary_path=out / "s.json", state_dir=out / "state")
        model = keras.saving.load_model(out / "m.keras", safe_mode=True)
        weights.append(model.get_weights())
    progress = [r.getMessage() for r in caplog.records if ": epoch 1/1, loss " in r.getMessage()]
    assert len(progress) == 2 and "validation Dice WT " in progress[0]  # one per run's epoch
    assert len(weights[0]) == len(weights[1])
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def _backup_pair(folder: Path, epoch, suffix: str = "") -> None:
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / f"latest.weights.h5{suffix}", "w") as handle:
        handle["w"] = np.arange(3.0) + (epoch or 0)
    (folder / f"training_metadata.json{suffix}").write_text(json.dumps({"epoch": epoch,
                                                                      "batch": 0}))


def test_a_torn_backup_falls_back_to_the_previous_one_or_is_dropped(tmp_path: Path):
    from brats_unet.training.train import usable_backup

    backup = tmp_path / "backup"
    _backup_pair(backup, 3)
    assert usable_backup(backup)  # complete: resume from epoch 3

    _backup_pair(backup, 2, ".bkp")
    (backup / "training_metadata.json").write_text('{"epo')  # killed while writing the epoch
    assert usable_backup(backup)
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2

    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n")  # killed while writing weights
    (backup / "latest.weights.h5.bkp").write_bytes(b"")
    assert not usable_backup(backup)
    assert not backup.exists()  # nothing torn is trusted: training starts again


def test_progress_line_gives_loss_dice_seconds_and_time_left():
    from brats_unet.training.train import progress_line

    logs = {"loss": 0.41234, "val_dice_wt": 0.9123, "val_dice_tc": 0.85, "val_dice_et": 0.8,
            "val_dice_mean": 0.8541, "epoch_seconds": 12.04}
    # median of 10, 12, 11 s = 11 s, times 7 epochs to go = 77 s
    assert progress_line("unet3d", 3, 10, logs, [10.0, 12.0, 11.0]) == (
        "unet3d: epoch 3/10, loss 0.4123, validation Dice WT 0.912 TC 0.850 ET 0.800 "
        "(mean 0.854), 11.0 s, about 1 min 17 s left")
    assert progress_line("unet2d", 10, 10, {"loss": 1.0}, [3600.0]) == (
        "unet2d: epoch 10/10, loss 1.0000, 3600.0 s, about 0 s left")
    assert progress_line("unet2d", 1, 40, {}, [3600.0]).endswith("about 39 h 0 min left")
