"""Segmenting cases with a trained model, file to file: the workflow's and the CLI's entry points.

:mod:`brats_unet.inference.predict` works on arrays; this module loads models and
cases, times the prediction and writes NIfTI files in the input's geometry.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import keras

import brats_unet.models.unets  # noqa: F401
import brats_unet.training.losses  # noqa: F401  (registers the custom objects for loading)
from brats_unet.data.subjects import CONTRASTS, SubjectFiles
from brats_unet.data.validation import load_subject
from brats_unet.evaluation.volumetry import region_volumes_ml
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


def predict_to_file(model_path: str | os.PathLike, case_dir: str | os.PathLike,
                    segmentation_path: str | os.PathLike, timing_path: str | os.PathLike, *,
                    patch_size, label_convention: str = "brats2020", overlap: float = 0.5,
                    windows_per_batch: int = 2, slices_per_batch: int = 32, mirror: bool = False,
                    threshold: float = 0.5, min_et_voxels: int = 0,
                    backend_reason: str | None = None) -> dict[str, Any]:
    """Segment a preprocessed case; write the labels in its input geometry and a timing JSON.

    ``predict_seconds`` counts the forward passes, thresholding and the way
    back into the input's grid, not loading the model or the arrays.
    ``backend_reason``: why the job runs on its back end, recorded with the machine's CPU.
    """
    model = load_trained_model(model_path)
    image, _, properties = open_case(case_dir)
    labels, seconds = _segment(
        model, image, properties, patch_size=patch_size, overlap=overlap,
        windows_per_batch=windows_per_batch, slices_per_batch=slices_per_batch, mirror=mirror,
        threshold=threshold, min_et_voxels=min_et_voxels)
    write_segmentation(labels, properties, segmentation_path, label_convention=label_convention)
    timing = {"subject": properties.subject, "model": model.name,
              "predict_seconds": seconds, "backend": keras.backend.backend(),
              "backend_reason": backend_reason,
              "cpu_threads": cpu_threads(keras.backend.backend()), "cpu": cpu_description(),
              "input_shape": list(properties.geometry.shape)}
    write_json(timing, timing_path)
    return timing


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
