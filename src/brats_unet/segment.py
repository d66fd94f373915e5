"""Segmenting cases with a trained model, file to file: the workflow's and the CLI's entry points.

:mod:`brats_unet.inference.predict` works on arrays; this module loads models and
cases, times the prediction and writes NIfTI files in the input's geometry.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

import brats_unet.models.unets  # noqa: F401
import brats_unet.training.losses  # noqa: F401  (registers the custom objects for loading)
from brats_unet.data.datasets import Dataset, resolve_dataset
from brats_unet.data.subjects import CONTRASTS, Problem, SubjectFiles, classify_folder
from brats_unet.data.validation import load_subject
from brats_unet.evaluation.intervals import CALIBRATION_COLUMNS, rule_of, rules_for
from brats_unet.evaluation.longitudinal import (
    ChangeThresholds,
    change_table,
    file_volumes,
    volume_rows,
)
from brats_unet.evaluation.volumetry import tissue_volumes_ml
from brats_unet.inference.batches import BATCH_RECORD, ERROR_SUFFIX, PROBABILITIES_SUFFIX
from brats_unet.inference.predict import (
    labels_in_input_space,
    write_probabilities,
    write_segmentation,
)
from brats_unet.io import write_json
from brats_unet.labels import REGIONS, region_masks
from brats_unet.models.windows import predict_case
from brats_unet.preprocessing.cases import open_case, preprocess_subject
from brats_unet.preprocessing.properties import CaseProperties
from brats_unet.runtime import cpu_description, cpu_threads
from brats_unet.training.summary import read_training_summary


def load_trained_model(path: str | os.PathLike) -> keras.Model:
    """A saved ``.keras`` model, loaded in safe mode (no arbitrary code), without its optimizer."""
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def spatial_dims_of_model(model: keras.Model) -> int:
    return len(model.inputs[0].shape) - 2


def _probabilities(model: keras.Model, image, *, patch_size, overlap: float = 0.5,
                   windows_per_batch: int = 2, slices_per_batch: int = 32, mirror: bool = False,
                   **_thresholds) -> np.ndarray:
    dims = spatial_dims_of_model(model)
    return predict_case(model, image, spatial_dims=dims,
                        patch_size=tuple(patch_size) if dims == 3 else None, overlap=overlap,
                        batch_size=windows_per_batch if dims == 3 else slices_per_batch,
                        mirror=mirror)


def _labels(probabilities, image, properties: CaseProperties, *, threshold: float = 0.5,
            min_et_voxels: int = 0, **_windows) -> np.ndarray:
    return labels_in_input_space(probabilities, image, properties, threshold=threshold,
                                 min_et_voxels=min_et_voxels)


def _timing(predictor: str, properties: CaseProperties, seconds: float,
            backend_reason: str | None) -> dict[str, Any]:
    return {"subject": properties.subject, "model": predictor,
            "predict_seconds": seconds, "backend": keras.backend.backend(),
            "backend_reason": backend_reason,
            "cpu_threads": cpu_threads(keras.backend.backend()), "cpu": cpu_description(),
            "input_shape": list(properties.geometry.shape)}


def predict_to_files(models: dict[str, keras.Model], case_dir: str | os.PathLike,
                     out_dir: str | os.PathLike, *, members: Sequence[str],
                     ensemble: str | None = None, patch_size,
                     label_convention: str = "brats2020", backend_reason: str | None = None,
                     keep_probabilities: bool = False, **inference) -> dict[str, float]:
    """Segment a preprocessed case with each of ``members`` (names in ``models``) and, given an
    ``ensemble`` name and several members, with the mean of their region probabilities (then
    the same thresholds); write each predictor's labels in the input geometry.

    ``out_dir`` gets ``<subject>.<predictor>.nii.gz`` and a timing ``<subject>.<predictor>.json``
    per predictor; with ``keep_probabilities`` also ``<subject>.<predictor>.probabilities.nii.gz``
    (WT, TC, ET, float32, compressed, in the input's geometry). ``predict_seconds`` counts the
    forward passes, thresholding and the way back into the input's grid (an ensemble's: its
    members' passes and its own averaging), not loading the model or the arrays.
    ``inference``: ``overlap``, ``windows_per_batch``, ``slices_per_batch``, ``mirror``,
    ``threshold``, ``min_et_voxels`` (the config's ``inference`` block).
    Returns each predictor's seconds.
    """
    image, _, properties = open_case(case_dir)
    out_dir, subject = Path(out_dir), properties.subject
    seconds, outputs = {}, {}
    for member in members:
        start = time.perf_counter()
        probabilities = _probabilities(models[member], image, patch_size=patch_size, **inference)
        outputs[member] = (probabilities, _labels(probabilities, image, properties, **inference))
        seconds[member] = time.perf_counter() - start
    if ensemble is not None and len(members) > 1:
        start = time.perf_counter()
        mean = np.mean([outputs[m][0] for m in members], axis=0, dtype=np.float32)
        outputs[ensemble] = (mean, _labels(mean, image, properties, **inference))
        seconds[ensemble] = sum(seconds.values()) + time.perf_counter() - start
    for predictor, (probabilities, labels) in outputs.items():
        stem = out_dir / f"{subject}.{predictor}"
        write_segmentation(labels, properties, f"{stem}.nii.gz", label_convention=label_convention)
        if keep_probabilities:
            write_probabilities(probabilities, properties, f"{stem}{PROBABILITIES_SUFFIX}")
        write_json(_timing(predictor, properties, seconds[predictor], backend_reason),
                   f"{stem}.json")
    return seconds


def predict_batch(model_paths: dict[str, str | os.PathLike], plan: dict[str, Sequence[str]],
                  case_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                  ensemble: str | None = None, patch_size, label_convention: str = "brats2020",
                  backend_reason: str | None = None, started: float | None = None,
                  keep_probabilities: bool = False, **inference) -> dict[str, Any]:
    """Segment several preprocessed cases with one architecture's models, each loaded once: one
    job's work.

    ``model_paths``: member name (``unet3d``, or a fold's ``unet3d.fold0``) -> ``.keras`` file.
    ``plan``: subject -> the members that predict it (a test subject: every fold, whose
    ``ensemble`` is then written too; a validation subject: the fold that never trained on
    it). Each case's files are written by :func:`predict_to_files`. A case that fails gets
    ``<subject>.error.txt`` instead, saying why, and the others go on: a bad case costs no
    other its prediction. ``job.json`` records the subjects, the job's start-up (from
    ``started``, a ``time.time()`` taken when the job began, to the models loaded; imports
    included) and every case's seconds.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time() if started is None else started
    models = {member: load_trained_model(path) for member, path in model_paths.items()}
    startup = time.time() - started
    seconds, failed = {}, []
    for case_dir in map(Path, case_dirs):
        subject, begin = case_dir.name, time.time()
        try:
            predict_to_files(models, case_dir, out_dir, members=plan[subject], ensemble=ensemble,
                             patch_size=patch_size, label_convention=label_convention,
                             backend_reason=backend_reason,
                             keep_probabilities=keep_probabilities, **inference)
        except Exception as err:  # one case's failure is recorded for its own job to report
            for partial in out_dir.glob(f"{glob.escape(subject)}.*"):
                partial.unlink(missing_ok=True)
            (out_dir / f"{subject}{ERROR_SUFFIX}").write_text(
                f"{type(err).__name__}: {err}\n")
            failed.append(subject)
        seconds[subject] = time.time() - begin
    record = {"models": sorted(model_paths), "subjects": list(seconds), "failed": failed,
              "startup_seconds": startup, "case_seconds": seconds,
              "job_seconds": time.time() - started}
    write_json(record, out_dir / BATCH_RECORD)
    return record


def model_patch_size(model_path: str | os.PathLike) -> list[int] | None:
    """The training patch recorded beside a model (``<model>.json``), if there is one."""
    summary = Path(model_path).with_suffix(".json")
    if summary.exists():
        return read_training_summary(summary).patch_size
    return None


def segment_new_patient(model_paths: Sequence[str | os.PathLike],
                        images: dict[str, str | os.PathLike], out_path: str | os.PathLike, *,
                        patch_size=None, label_convention: str = "brats2020",
                        calibration: str | os.PathLike | None = None,
                        **inference) -> dict[str, Any]:
    """Preprocess one patient's four contrasts exactly as in training, segment, write, measure.

    Several models (a model's folds) segment as their ensemble: the mean of their region
    probabilities, then the thresholds, as the pipeline's fold ensemble. With
    ``calibration`` (a run's ``results/volume_calibration.csv``) each volume gets its
    interval, from the rule of the models' architecture (all models must share it).

    Returns the volumes in ml (from the input's pixdim) of the regions and the necrotic core
    (NCR), their intervals (``None`` without calibration), the architecture and the seconds.
    """
    if not model_paths:
        raise ValueError("no model given")
    files = SubjectFiles(subject=Path(out_path).name.split(".")[0] or "patient",
                         images={c: Path(images[c]) for c in CONTRASTS})
    loaded = load_subject(files, label_convention=label_convention)
    case = preprocess_subject(loaded)
    models = [load_trained_model(path) for path in model_paths]
    architectures = sorted({model.name for model in models})
    start, outputs = time.perf_counter(), []
    for model, path in zip(models, model_paths):
        window = patch_size
        if spatial_dims_of_model(model) == 3 and window is None:
            window = model_patch_size(path)
            if window is None:
                raise ValueError(f"no patch size given and no {Path(path).with_suffix('.json')} "
                                 "beside the model to read it from")
        outputs.append(_probabilities(model, case.image, patch_size=window, **inference))
    mean = np.mean(outputs, axis=0, dtype=np.float32) if len(outputs) > 1 else outputs[0]
    labels = _labels(mean, case.image, case.properties, **inference)
    seconds = time.perf_counter() - start
    write_segmentation(labels, case.properties, out_path, label_convention=label_convention)
    volumes = tissue_volumes_ml(labels, loaded.geometry.pixdim)
    present = region_masks(labels).any(axis=(0, 1, 2))
    intervals = None
    if calibration is not None:
        intervals = volume_intervals(volumes, calibration, architectures)
    return {"volumes_ml": volumes, "intervals_ml": intervals, "architecture": architectures,
            "regions_present": dict(zip(REGIONS, map(bool, present))), "seconds": seconds}


def volume_intervals(volumes_ml: dict[str, float], calibration: str | os.PathLike,
                     architectures: Sequence[str], purpose: str = "volume",
                     ) -> dict[str, tuple[float, float, float]]:
    """Region -> ``(low, high, coverage)`` from the calibration table's rules for ``purpose``
    (:data:`~brats_unet.evaluation.intervals.PURPOSES`) of the one architecture in
    ``architectures``."""
    if len(architectures) != 1:
        raise ValueError(f"the models are of several architectures ({', '.join(architectures)}): "
                         "no calibrated volume interval covers an ensemble across models")
    table = rules_for(pd.read_csv(calibration), purpose)
    rows = table[table["model"] == architectures[0]]
    if rows.empty:
        raise ValueError(f"{calibration}: no {purpose} calibration of {architectures[0]} "
                         f"(it has {', '.join(sorted(table['model'].unique()))})")
    out = {}
    for _, row in rows.iterrows():
        if row["region"] in volumes_ml:
            low, high = rule_of(row).interval([volumes_ml[row["region"]]])
            out[row["region"]] = (float(low[0]), float(high[0]), float(row["coverage"]))
    return out


def subject_folder_files(folder: str | os.PathLike, dataset: Dataset) -> SubjectFiles:
    """The four contrasts (and label map, if any) of one BraTS subject folder, named as
    ``dataset`` names them; a ``ValueError`` saying what is wrong otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (a BraTS subject folder of four contrasts)")
    found = classify_folder(folder.name, folder, sorted(p.name for p in folder.iterdir()),
                            dataset)
    if isinstance(found, Problem):
        raise ValueError(f"{folder}: {found.file}: {found.problem}")
    return found


def change_between(model_paths: Sequence[str | os.PathLike], before: str | os.PathLike,
                   after: str | os.PathLike, out_dir: str | os.PathLike, *,
                   calibration: str | os.PathLike | None, dataset: str = "brats2020",
                   thresholds: ChangeThresholds = ChangeThresholds(),
                   **options) -> pd.DataFrame:
    """Segment two scans of one patient (subject folders) with the models, write both
    segmentations to ``out_dir``, and return each region's change (:func:`change_table`) with
    the intervals of ``calibration``'s change rules (unbounded without one)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, scans = [], {}
    for role, folder in (("before", before), ("after", after)):
        layout = resolve_dataset(dataset, Path(folder).parent)
        files = subject_folder_files(folder, layout)
        result = segment_new_patient(model_paths, files.images,
                                     out_dir / f"{files.subject}.{role}.nii.gz",
                                     label_convention=layout.name, **options)
        scans[role] = files.subject
        rows += volume_rows(result["architecture"][0], files.subject, result["volumes_ml"],
                            file_volumes(files.subject, files.label,
                                         label_convention=layout.name))
    if scans["before"] == scans["after"]:
        raise ValueError(f"--before and --after are the same subject ({scans['before']})")
    rules = pd.DataFrame(columns=CALIBRATION_COLUMNS)
    if calibration is not None:
        rules = rules_for(pd.read_csv(calibration), "change")
        if rules.empty:
            raise ValueError(f"{calibration}: no change rules (the run had no longitudinal "
                             "pairs; its tables rule writes them where there are)")
    pairs = pd.DataFrame([{"patient": scans["before"], "baseline": scans["before"],
                           "follow_up": scans["after"]}])
    return change_table(pairs, pd.DataFrame(rows), rules, thresholds=thresholds)
