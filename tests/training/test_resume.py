"""The resumable state: kept only for the same run, torn backups, one history row per epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from brats_unet.training.resume import prepare_state_dir, usable_backup, write_history


def _backup_pair(folder: Path, epoch, suffix: str = "") -> None:
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / f"latest.weights.h5{suffix}", "w") as handle:
        handle["w"] = np.arange(3.0) + (epoch or 0)
    (folder / f"training_metadata.json{suffix}").write_text(json.dumps({"epoch": epoch,
                                                                      "batch": 0}))


def test_a_torn_backup_falls_back_to_the_previous_one_or_is_dropped(tmp_path: Path):
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
