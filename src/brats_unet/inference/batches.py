"""A prediction job's folder of several subjects, and each subject's files taken from it.

A prediction job segments a batch of subjects with one model, loaded once
(:func:`brats_unet.segment.predict_batch`), into a folder of its own; each subject's files
then go to their own place, where the tables read them. Nothing here loads Keras: the
workflow imports it to build the DAG.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from brats_unet.io import atomic_path

#: In a batch's folder: why a subject could not be predicted (its own job then says so).
ERROR_SUFFIX = ".error.txt"
#: In a batch's folder: the subjects, the job's start-up and every case's seconds.
BATCH_RECORD = "job.json"
#: In a batch's folder, with ``inference.keep_probabilities``: ``<subject>.<predictor>`` + this.
PROBABILITIES_SUFFIX = ".probabilities.nii.gz"


def take_from_batch(batch_dir: str | os.PathLike, subject: str, predictor: str,
                    segmentation_path: str | os.PathLike, timing_path: str | os.PathLike) -> None:
    """Put one subject's prediction by ``predictor`` (a model, a fold's model or a fold
    ensemble) from its batch job's folder in its own place (a hard link where the file system
    allows, else a copy), or raise what went wrong with it there."""
    batch_dir = Path(batch_dir)
    error = batch_dir / f"{subject}{ERROR_SUFFIX}"
    if error.exists():
        raise ValueError(f"subject {subject}: prediction with {predictor} failed "
                         f"({batch_dir.name}): {error.read_text().strip()}")
    for suffix, target in ((".nii.gz", segmentation_path), (".json", timing_path)):
        source, target = batch_dir / f"{subject}.{predictor}{suffix}", Path(target)
        if not source.exists():
            raise FileNotFoundError(f"subject {subject}: {source} is missing: its batch job "
                                    f"did not predict it with {predictor}")
        with atomic_path(target) as tmp:
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
