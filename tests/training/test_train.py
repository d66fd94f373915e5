"""Training: settings, a real kill-and-resume, and the same weights from the same seed."""

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

from brats_unet.data.subjects import discover_subjects
from brats_unet.data.synthetic import generate_dataset
from brats_unet.preprocessing.cases import preprocess_to_folder
from brats_unet.training.settings import settings_for
from brats_unet.training.summary import read_training_summary

from training_state import backed_up_epoch

TRAINING = dict(precision="auto", jit_compile="auto", seed=3, epochs=2, steps_per_epoch=2,
                learning_rate=1e-3, lr_schedule="cosine", early_stopping_patience=0,
                tumour_fraction=0.5, augment=True, dice_weight=1.0, bce_weight=1.0, batch_dice=True,
                loader_workers=1)
MODEL_3D = {"architecture": {"base_filters": 4, "depth": 3, "norm": "batch", "dropout": 0.0},
            "patch_size": [16, 32, 32], "batch_size": 2}


def test_model_block_overrides_shared_training_settings():
    block = dict(MODEL_3D, training={"epochs": 7})
    settings = settings_for("unet3d", TRAINING, block)
    assert settings.epochs == 7 and settings.steps_per_epoch == 2
    assert settings.patch_size == (16, 32, 32) and settings.model_options["base_filters"] == 4


def _rates(settings, steps):
    import keras

    from brats_unet.training.train import learning_rate

    schedule = learning_rate(settings)
    if not callable(schedule):
        return [schedule] * len(steps)
    return [float(keras.ops.convert_to_numpy(schedule(step))) for step in steps]


@pytest.mark.parametrize("schedule, last", [("cosine", 1e-5), ("constant", 1e-3)])
def test_warmup_rises_linearly_then_follows_the_schedule(schedule, last):
    # 4 epochs of 10 steps, 1 of them warming up from 1 % of the rate.
    settings = settings_for("unet3d", dict(TRAINING, epochs=4, steps_per_epoch=10,
                                           lr_schedule=schedule, warmup_epochs=1), MODEL_3D)
    rates = _rates(settings, [0, 5, 10, 25, 40])
    assert rates[:3] == pytest.approx([1e-5, 0.505e-3, 1e-3])
    # cosine: half-way through the 30 steps after the warm-up, half-way down to 1 %
    middle = (1e-3 + 1e-5) / 2 if schedule == "cosine" else 1e-3
    assert rates[3:] == pytest.approx([middle, last])


def test_no_warmup_keeps_the_plain_schedule():
    cosine = settings_for("unet3d", dict(TRAINING, epochs=4, steps_per_epoch=10), MODEL_3D)
    assert _rates(cosine, [0, 20, 40]) == pytest.approx([1e-3, (1e-3 + 1e-5) / 2, 1e-5])
    constant = settings_for("unet3d", dict(TRAINING, lr_schedule="constant"), MODEL_3D)
    assert _rates(constant, [0]) == [1e-3]


def test_warmup_as_long_as_the_run_is_refused():
    with pytest.raises(ValueError, match="warmup_epochs .2. must be fewer than epochs .2."):
        settings_for("unet3d", dict(TRAINING, warmup_epochs=2), MODEL_3D)


@pytest.mark.parametrize("model, patch, message", [
    ("unet2d", [16, 32, 32], "must have 2 sizes"),
    ("unet3d", [16, 32], "must have 3 sizes"),
    ("unet3d", [16, 30, 32], "divisible by 4"),
])
def test_bad_patch_sizes_are_clear(model, patch, message):
    with pytest.raises(ValueError, match=message):
        settings_for(model, TRAINING, dict(MODEL_3D, patch_size=patch))


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
    from brats_unet.training.settings import settings_for
    from brats_unet.training.train import train_model
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
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # this run's back end (conftest)
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


def test_a_model_trained_channels_first_is_saved_channels_last(cases, tmp_path: Path):
    import keras

    import brats_unet.models.unets  # noqa: F401  (registers the model class for loading)
    from brats_unet.training.train import train_model

    settings = settings_for("unet3d", dict(TRAINING, epochs=1, steps_per_epoch=1,
                                           data_format="channels_first"), MODEL_3D)
    summary = train_model("unet3d", settings, train_dirs=cases[:2], validation_dirs=cases[2:],
                          weights_path=tmp_path / "m.keras", history_path=tmp_path / "h.csv",
                          summary_path=tmp_path / "s.json", state_dir=tmp_path / "state")
    assert summary.settings["data_format"] == "channels_first"
    model = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert model.get_config()["data_format"] == "channels_last"
    assert "to_channels_first" not in [layer.name for layer in model.layers]
