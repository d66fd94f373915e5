"""Segmenting cases with a trained model, file to file: the workflow's and the CLI's entry points.

:mod:`brats_unet.inference.predict` works on arrays; this module loads models and
cases, times the prediction and writes NIfTI files in the input's geometry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

import brats_unet.models.unets  # noqa: F401
import brats_unet.training.losses  # noqa: F401  (registers the custom objects for loading)
from brats_unet.data.subjects import CONTRASTS, SubjectFiles
from brats_unet.data.validation import load_subject
from brats_unet.evaluation.volumetry import region_volumes_ml
from brats_unet.inference.batches import BATCH_RECORD, ERROR_SUFFIX
from brats_unet.inference.predict import segment_case, write_segmentation
from brats_unet.io import write_json
from brats_unet.labels import REGIONS, region_masks
from brats_unet.preprocessing.cases import open_case, preprocess_subject
from brats_unet.preprocessing.properties import CaseProperties
from brats_unet.runtime import cpu_description, cpu_threads
from brats_unet.training.summary import read_training_summary


def load_trained_model(path: str | os.PathLike) -> keras.Model:
    """A saved ``.keras`` model, loaded in safe mode (no arbitrary code), without its optimizer."""
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def spatial_dims_of_model(model: keras.Model) -> int:
    return len(model.inputs[0].shape) - 2


def _segment(model: keras.Model, image, properties: CaseProperties, *, patch_size,
             overlap: float = 0.5, windows_per_batch: int = 2, slices_per_batch: int = 32,
             mirror: bool = False, threshold: float = 0.5, min_et_voxels: int = 0):
    dims = spatial_dims_of_model(model)
    start = time.perf_counter()
    labels, _ = segment_case(
        model, image, properties, spatial_dims=dims,
        patch_size=tuple(patch_size) if dims == 3 else None, overlap=overlap,
        batch_size=windows_per_batch if dims == 3 else slices_per_batch, mirror=mirror,
        threshold=threshold, min_et_voxels=min_et_voxels,
    )
    return labels, time.perf_counter() - start


def _timing(model: keras.Model, properties: CaseProperties, seconds: float,
            backend_reason: str | None) -> dict[str, Any]:
    return {"subject": properties.subject, "model": model.name,
            "predict_seconds": seconds, "backend": keras.backend.backend(),
            "backend_reason": backend_reason,
            "cpu_threads": cpu_threads(keras.backend.backend()), "cpu": cpu_description(),
            "input_shape": list(properties.geometry.shape)}


def predict_to_file(model: keras.Model, case_dir: str | os.PathLike,
                    segmentation_path: str | os.PathLike, timing_path: str | os.PathLike, *,
                    patch_size, label_convention: str = "brats2020",
                    backend_reason: str | None = None, **inference) -> dict[str, Any]:
    """Segment a preprocessed case; write the labels in its input geometry and a timing JSON.

    ``predict_seconds`` counts the forward passes, thresholding and the way
    back into the input's grid, not loading the model or the arrays.
    ``backend_reason``: why the job runs on its back end, recorded with the machine's CPU.
    ``inference``: ``overlap``, ``windows_per_batch``, ``slices_per_batch``, ``mirror``,
    ``threshold``, ``min_et_voxels`` (the config's ``inference`` block).
    """
    image, _, properties = open_case(case_dir)
    labels, seconds = _segment(model, image, properties, patch_size=patch_size,
                               **inference)
    write_segmentation(labels, properties, segmentation_path, label_convention=label_convention)
    timing = _timing(model, properties, seconds, backend_reason)
    write_json(timing, timing_path)
    return timing


def predict_batch(model_path: str | os.PathLike, case_dirs: Sequence[str | os.PathLike],
                  out_dir: str | os.PathLike, *, patch_size, label_convention: str = "brats2020",
                  backend_reason: str | None = None, started: float | None = None,
                  **inference) -> dict[str, Any]:
    """Segment several preprocessed cases with one model, loaded once: one job's work.

    For each case (its folder's name is the subject) ``out_dir`` gets ``<subject>.nii.gz``
    and ``<subject>.json``, as :func:`predict_to_file` writes them. A case that fails gets
    ``<subject>.error.txt`` instead, saying why, and the others go on: a bad case costs no
    other its prediction. ``job.json`` records the subjects, the job's start-up (from
    ``started``, a ``time.time()`` taken when the job began, to the model loaded; imports
    included) and every case's seconds.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time() if started is None else started
    model = load_trained_model(model_path)
    startup = time.time() - started
    seconds, failed = {}, []
    for case_dir in map(Path, case_dirs):
        subject, begin = case_dir.name, time.time()
        try:
            predict_to_file(model, case_dir, out_dir / f"{subject}.nii.gz",
                            out_dir / f"{subject}.json", patch_size=patch_size,
                            label_convention=label_convention, backend_reason=backend_reason,
                            **inference)
        except Exception as err:  # one case's failure is recorded for its own job to report
            for partial in (out_dir / f"{subject}.nii.gz", out_dir / f"{subject}.json"):
                partial.unlink(missing_ok=True)
            (out_dir / f"{subject}{ERROR_SUFFIX}").write_text(
                f"{type(err).__name__}: {err}\n")
            failed.append(subject)
        seconds[subject] = time.time() - begin
    record = {"model": model.name, "subjects": list(seconds), "failed": failed,
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


def segment_new_patient(model_path: str | os.PathLike, images: dict[str, str | os.PathLike],
                        out_path: str | os.PathLike, *, patch_size=None,
                        label_convention: str = "brats2020", **inference) -> dict[str, Any]:
    """Preprocess one patient's four contrasts exactly as in training, segment, write, measure.

    Returns the region volumes in ml (from the input's pixdim) and the seconds taken.
    """
    files = SubjectFiles(subject=Path(out_path).name.split(".")[0] or "patient",
                         images={c: Path(images[c]) for c in CONTRASTS})
    loaded = load_subject(files, label_convention=label_convention)
    case = preprocess_subject(loaded)
    model = load_trained_model(model_path)
    if spatial_dims_of_model(model) == 3 and patch_size is None:
        patch_size = model_patch_size(model_path)
        if patch_size is None:
            raise ValueError(f"no patch size given and no {Path(model_path).with_suffix('.json')} "
                             "beside the model to read it from")
    labels, seconds = _segment(model, case.image, case.properties, patch_size=patch_size,
                               **inference)
    write_segmentation(labels, case.properties, out_path, label_convention=label_convention)
    volumes = region_volumes_ml(labels, loaded.geometry.pixdim)
    present = region_masks(labels).any(axis=(0, 1, 2))
    return {"volumes_ml": volumes, "regions_present": dict(zip(REGIONS, map(bool, present))),
            "seconds": seconds}
