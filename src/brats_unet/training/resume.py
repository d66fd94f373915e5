"""What a killed training job resumes from: its state folder, kept only for the same run.

The state folder holds a fingerprint of the run, Keras' BackupAndRestore backup, the
best checkpoint so far and the raw history CSV (one row per epoch trained, repeats
included); :func:`write_history` turns that into the job's history output.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import keras

from brats_unet.io import atomic_path, write_json
from brats_unet.training.settings import TrainingSettings

log = logging.getLogger(__name__)

#: Files and folders in the state folder.
FINGERPRINT_FILE = "fingerprint.json"
BEST_FILE = "best.keras"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"


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
        return usable_backup(state_dir / BACKUP_DIR)
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
