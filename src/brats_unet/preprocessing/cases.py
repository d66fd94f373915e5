"""Per-subject preprocessing: brain mask, crop to the brain, z-score, fast storage.

Conventions, stated once:

- brain mask: voxels non-zero in at least one contrast (BraTS is skull-stripped);
- crop: the bounding box of the brain mask, ``crop_start`` inclusive and
  ``crop_stop`` exclusive, in the file's voxel axes ``(i, j, k)``;
- intensities: each contrast z-scored with the mean and standard deviation of
  its brain voxels; 0 outside the brain;
- storage axes: ``image.npy`` is float32 ``(k, j, i, channel)`` -- axial slice
  first, so a 2D batch reads contiguous memory -- with channels in
  :data:`brats_unet.data.subjects.CONTRASTS` order; ``label.npy`` is uint8
  ``(k, j, i)`` with canonical BraTS 2020 labels. Both are plain ``.npy`` files
  opened with ``mmap_mode="r"`` (milliseconds, against about a second to decode
  four gzip-compressed NIfTI files).
- ``properties.json`` holds what is needed to put a prediction back into the
  input's space (original shape, affine, pixdim, crop box) and what was learnt
  from the voxels (intensity statistics, region voxel counts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brats_unet.data.subjects import CONTRASTS, Problem, SubjectFiles
from brats_unet.data.validation import InvalidSubject, LoadedSubject, load_subject
from brats_unet.io import atomic_directory, read_json, write_json
from brats_unet.labels import REGION_LABELS, REGIONS, tumour_mask
from brats_unet.preprocessing.properties import (
    CaseProperties,
    read_case_properties,
    write_case_properties,
)
from brats_unet.voxels import bounding_box, box_slices

IMAGE_FILE = "image.npy"
LABEL_FILE = "label.npy"
QC_FILE = "qc.json"
STORAGE_AXES = "kji"


def brain_mask(images: dict[str, np.ndarray]) -> np.ndarray:
    """Voxels that are non-zero in at least one contrast."""
    volumes = list(images.values())
    if np.issubdtype(volumes[0].dtype, np.integer) and all(
            v.dtype == volumes[0].dtype for v in volumes):
        # one integer type: a voxel is non-zero in some contrast iff the bitwise OR of all is
        combined = volumes[0].copy(order="K")
        for voxels in volumes[1:]:
            np.bitwise_or(combined, voxels, out=combined)
        return combined != 0
    # in the volumes' own memory order (NIfTI files load Fortran-ordered): a C-ordered mask
    # against them made every pass strided, 3x slower
    mask = np.zeros_like(volumes[0], dtype=bool)
    for voxels in volumes:
        mask |= voxels != 0
    return mask


def tumour_voxels_outside(label: np.ndarray, mask: np.ndarray) -> int:
    """Tumour voxels (``label`` in WT; a resection cavity is no tumour) outside ``mask``, both in
    the same axes: with the brain mask, tumour where every contrast is 0."""
    tumour = tumour_mask(label)
    return int(np.count_nonzero(tumour)) - int(np.count_nonzero(tumour[mask]))


def crop(array: np.ndarray, start: tuple[int, ...], stop: tuple[int, ...]) -> np.ndarray:
    """The box ``[start, stop)`` of the leading ``len(start)`` axes (a view, not a copy)."""
    return array[box_slices(start, stop)]


def uncrop(array: np.ndarray, start: tuple[int, ...], original_shape: tuple[int, ...],
           fill: float | int = 0) -> np.ndarray:
    """Put a cropped array back at ``start`` in an array of ``original_shape`` (leading axes)."""
    out = np.full(tuple(original_shape) + array.shape[len(original_shape):], fill, dtype=array.dtype)
    out[box_slices(start, [a + s for a, s in zip(start, array.shape)])] = array
    return out


def zscore(voxels: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Z-score ``voxels`` with the statistics of the masked voxels; 0 outside the mask.

    A contrast with no spread inside the mask (std 0) is only centred.
    Returns ``(normalised, mean, std)``.
    """
    out = np.zeros(voxels.shape, dtype=np.float32)
    mean, std = zscore_into(voxels, mask, out)
    return out, mean, std


def zscore_into(voxels: np.ndarray, mask: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """:func:`zscore` written into ``out`` (zeros, any strides: a channel of the storage array)
    inside the mask; returns ``(mean, std)``. Statistics in float64 on the masked voxels only."""
    inside = voxels[mask].astype(np.float64)
    mean = float(inside.mean())
    inside -= mean
    std = float(np.sqrt(np.dot(inside, inside) / inside.size))  # np.std without its copies
    inside *= 1.0 / std if std > 0 else 1.0
    out[mask] = inside
    return mean, std


def to_storage(volume: np.ndarray) -> np.ndarray:
    """File axes ``(i, j, k, ...)`` to storage axes ``(k, j, i, ...)``, C-contiguous."""
    return np.ascontiguousarray(np.swapaxes(volume, 0, 2))


def from_storage(volume: np.ndarray) -> np.ndarray:
    """Storage axes ``(k, j, i, ...)`` back to file axes ``(i, j, k, ...)``."""
    return np.swapaxes(volume, 0, 2)


@dataclass
class PreprocessedCase:
    image: np.ndarray  # float32 (k, j, i, channel)
    label: np.ndarray | None  # uint8 (k, j, i)
    properties: CaseProperties


def preprocess_subject(subject: LoadedSubject) -> PreprocessedCase:
    """Brain mask, crop to the brain, z-score each contrast within the brain.

    Works in storage axes ``(k, j, i)``: a Fortran-ordered file volume seen that way is
    C-contiguous, so every pass runs in memory order. Each contrast is cropped before any
    conversion and z-scored straight into its channel of the storage array.
    """
    volumes = {c: np.swapaxes(subject.images[c], 0, 2) for c in CONTRASTS}  # views
    mask = brain_mask(volumes)
    start_s, stop_s = bounding_box(mask)
    mask_c = crop(mask, start_s, stop_s)
    image = np.zeros((*mask_c.shape, len(CONTRASTS)), dtype=np.float32)  # (k, j, i, c)
    stats = {}
    for channel, contrast in enumerate(CONTRASTS):
        mean, std = zscore_into(crop(volumes[contrast], start_s, stop_s), mask_c,
                                image[..., channel])
        stats[contrast] = {"brain_mean": mean, "brain_std": std}
    start, stop = start_s[::-1], stop_s[::-1]  # file axes (i, j, k)

    label = None
    region_voxels = None
    if subject.label is not None:
        label = to_storage(crop(subject.label, start, stop))
        # kept in label.npy inside the box, and always scored on the original file
        outside = tumour_voxels_outside(np.swapaxes(subject.label, 0, 2), mask)
        per_label = np.bincount(label.ravel(), minlength=256)
        region_voxels = {r: int(per_label[list(REGION_LABELS[r])].sum()) for r in REGIONS}
        region_voxels["outside_brain"] = outside

    properties = CaseProperties(
        subject=subject.subject, geometry=subject.geometry, crop_start=start, crop_stop=stop,
        storage_axes=STORAGE_AXES, channels=CONTRASTS, brain_voxels=int(mask.sum()),
        intensity=stats, has_label=label is not None, region_voxels=region_voxels)
    return PreprocessedCase(image=image, label=label, properties=properties)


def qc_record(subject: str, problem: Problem | None = None, *,
              has_label: bool | None = None, note: str = "") -> dict[str, Any]:
    """A subject's row of the QC table: included (``note``: a warning that does not exclude it,
    or "") or excluded with the file and the problem."""
    if problem is None:
        return {"subject": subject, "status": "included", "has_label": has_label,
                "file": "", "problem": "", "note": note}
    return {"subject": subject, "status": "excluded", "has_label": has_label,
            "file": problem.file, "problem": problem.problem, "note": note}


def case_note(outside: int, label_file: str | os.PathLike | None = None) -> str:
    """A warning about an included case, or "": ``outside`` tumour voxels where every contrast
    is 0 (outside the brain mask), which no model can see but which are scored on the
    original grid (see :func:`tumour_voxels_outside`)."""
    if not outside:
        return ""
    where = f"{Path(label_file).name}: " if label_file is not None else ""
    voxels = "1 tumour voxel" if outside == 1 else f"{outside} tumour voxels"
    return (f"{where}{voxels} where every contrast is 0 (outside the brain mask): scored, but "
            "no model can segment them; is the label map registered to the images?")


def write_case(case: PreprocessedCase, out_dir: str | os.PathLike, *,
               label_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write a preprocessed case folder atomically (arrays, properties, QC record); return the
    QC record (``label_file`` names the label map in its note, if any)."""
    record = qc_record(case.properties.subject, has_label=case.label is not None,
                       note=case_note((case.properties.region_voxels or {}).get(
                           "outside_brain", 0), label_file))
    with atomic_directory(out_dir) as tmp:
        np.save(tmp / IMAGE_FILE, case.image, allow_pickle=False)
        if case.label is not None:
            np.save(tmp / LABEL_FILE, case.label, allow_pickle=False)
        write_case_properties(case.properties, tmp)
        write_json(record, tmp / QC_FILE)
    return record


def write_excluded(problem: Problem, out_dir: str | os.PathLike, *,
                   has_label: bool | None = None) -> None:
    """Write the folder of an excluded subject: only its QC record, no arrays."""
    with atomic_directory(out_dir) as tmp:
        write_json(qc_record(problem.subject, problem, has_label=has_label), tmp / QC_FILE)


def read_qc(case_dir: str | os.PathLike) -> dict[str, Any]:
    return read_json(Path(case_dir) / QC_FILE)


def open_arrays(case_dir: str | os.PathLike, mmap: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(image, label or None)`` of a preprocessed case, memory-mapped by default (milliseconds)."""
    case_dir = Path(case_dir)
    mode = "r" if mmap else None
    image = np.load(case_dir / IMAGE_FILE, mmap_mode=mode, allow_pickle=False)
    label_path = case_dir / LABEL_FILE
    label = np.load(label_path, mmap_mode=mode, allow_pickle=False) if label_path.exists() else None
    return image, label


def open_case(case_dir: str | os.PathLike, mmap: bool = True
              ) -> tuple[np.ndarray, np.ndarray | None, CaseProperties]:
    """``(image, label or None, properties)`` of a preprocessed case, memory-mapped by default."""
    return *open_arrays(case_dir, mmap), read_case_properties(case_dir)


def restore_to_input_space(volume_storage: np.ndarray, properties: CaseProperties,
                           fill: float | int = 0) -> np.ndarray:
    """A volume in storage axes over the crop, back in the input's shape and axes ``(i, j, k, ...)``."""
    return uncrop(from_storage(volume_storage), properties.crop_start, properties.geometry.shape,
                  fill=fill)


def preprocess_to_folder(files: SubjectFiles, out_dir: str | os.PathLike, *,
                         label_convention: str = "brats2020",
                         affine_atol_mm: float = 1e-3) -> dict[str, Any]:
    """Validate and preprocess one subject into ``out_dir``; return its QC record.

    An invalid subject is not an error of the run: its folder gets a QC record
    saying why it is excluded, and nothing else.
    """
    try:
        loaded = load_subject(files, label_convention=label_convention,
                              affine_atol_mm=affine_atol_mm)
    except InvalidSubject as err:
        write_excluded(err.problem, out_dir, has_label=files.has_label)
        return qc_record(files.subject, err.problem, has_label=files.has_label)
    return write_case(preprocess_subject(loaded), out_dir, label_file=files.label)
