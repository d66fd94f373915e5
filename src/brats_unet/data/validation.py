"""Reading one subject's files and checking them before anything is computed.

Every failure is an :class:`InvalidSubject` naming the subject, the file and
what is wrong, so a QC table can say it in one line.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_unet.data.datasets import DATASETS, MSD_IMAGES, MSD_LABELS, MSD_TEST_IMAGES
from brats_unet.data.subjects import CONTRASTS, Problem, SubjectFiles
from brats_unet.io import Geometry, geometry_of, read_nifti
from brats_unet.labels import LABEL_SETS, check_convention, to_canonical

GZIP_MAGIC = b"\x1f\x8b"


def shown_name(path: str | Path) -> str:
    """How a message names a subject's file: its name, with its folder in the Decathlon's
    layout, where the image and the label map have the same name."""
    path = Path(path)
    if path.parent.name in (MSD_IMAGES, MSD_LABELS, MSD_TEST_IMAGES):
        return f"{path.parent.name}/{path.name}"
    return path.name


class InvalidSubject(Exception):
    """A subject that cannot be used, with the file and the reason."""

    def __init__(self, subject: str, file: str | Path, problem: str):
        self.problem = Problem(subject, shown_name(file) if file else "", problem)
        super().__init__(str(self.problem))


@dataclass
class LoadedSubject:
    """The voxels of one subject, in the files' own axis order ``(i, j, k)``."""

    subject: str
    images: dict[str, np.ndarray]  # contrast -> volume: float32, or the file's integer type
    label: np.ndarray | None  # canonical (BraTS 2020) labels, uint8
    geometry: Geometry


def _clean(err: Exception, path: Path) -> str:
    """An error's message without the full path, which the QC row names already."""
    return " ".join(str(err).replace(str(path), path.name).split()) or type(err).__name__


def _content_head(path: Path, head: bytes) -> bytes:
    """The first bytes after decompression, for saying what a file holds instead."""
    if head[:2] != GZIP_MAGIC:
        return head
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(16)
    except (OSError, EOFError, zlib.error):
        return head


def _read(subject: str, path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    # Cheap checks first: they turn nibabel's generic errors into what is wrong.
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(16)
    except FileNotFoundError:
        raise InvalidSubject(subject, path, "file not found") from None
    except OSError as err:
        raise InvalidSubject(subject, path, f"cannot open the file ({err.strerror})") from None
    if size == 0:
        raise InvalidSubject(subject, path, "empty file (0 bytes)")
    if path.name.lower().endswith(".gz") and head[:2] != GZIP_MAGIC:
        raise InvalidSubject(
            subject, path,
            f"not a NIfTI file: named .gz but not gzip-compressed (it starts with {head!r})",
        )
    try:
        return read_nifti(path)
    except nib.filebasedimages.ImageFileError as err:
        if "Cannot work out file type" in str(err):
            raise InvalidSubject(subject, path, "not a NIfTI file: no NIfTI-1 or NIfTI-2 "
                                 f"header (it starts with {_content_head(path, head)!r})"
                                 ) from None
        raise InvalidSubject(subject, path,
                             f"not a readable NIfTI file ({_clean(err, path)})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InvalidSubject(
            subject, path,
            f"truncated or corrupt gzip data ({size} bytes; {type(err).__name__}: "
            f"{_clean(err, path)})",
        ) from None
    except Exception as err:  # nibabel raises many types for damaged files
        what = "truncated file" if "Expected" in str(err) else "cannot read the voxels"
        raise InvalidSubject(
            subject, path, f"{what} ({size} bytes; {type(err).__name__}: {_clean(err, path)})",
        ) from None


def _as_3d(subject: str, path: Path, voxels: np.ndarray, image: nib.Nifti1Image):
    if not (np.issubdtype(voxels.dtype, np.integer) or np.issubdtype(voxels.dtype, np.floating)
            or voxels.dtype == bool):
        raise InvalidSubject(subject, path,
                             f"voxel type {voxels.dtype} is not a real number type")
    # A trailing singleton dimension (X, Y, Z, 1) is still one volume.
    while voxels.ndim > 3 and voxels.shape[-1] == 1:
        voxels = voxels[..., 0]
    if voxels.ndim != 3:
        raise InvalidSubject(
            subject, path,
            f"expected a 3D volume, got {voxels.ndim}D of shape {tuple(image.shape)}",
        )
    geometry = geometry_of(image)
    return voxels, Geometry(voxels.shape, geometry.affine, geometry.pixdim[:3])


def _one_channel(subject: str, path: Path, voxels: np.ndarray, image: nib.Nifti1Image,
                channel: int, n_channels: int):
    """Channel ``channel`` of a 4D image holding ``n_channels`` contrasts, as a 3D volume."""
    if voxels.ndim != 4 or voxels.shape[3] != n_channels:
        raise InvalidSubject(
            subject, path,
            f"expected a 4D image of {n_channels} contrasts (X, Y, Z, {n_channels}), got "
            f"shape {tuple(image.shape)}",
        )
    return _as_3d(subject, path, voxels[..., channel], image)


def _contrast_volumes(files: SubjectFiles):
    """Contrast -> (path, voxels, geometry), each file read once (one 4D image, or four)."""
    subject, read = files.subject, {}
    for contrast in CONTRASTS:
        path = files.images[contrast]
        if path not in read:
            read[path] = _read(subject, path)
        image, voxels = read[path]
        if files.channels is None:
            yield contrast, path, *_as_3d(subject, path, voxels, image)
        else:
            yield contrast, path, *_one_channel(subject, path, voxels, image,
                                                files.channels[contrast], len(files.channels))


def _check_same_space(subject: str, path: Path, geometry: Geometry, reference: Geometry,
                      reference_file: Path, affine_atol_mm: float) -> None:
    if geometry.shape != reference.shape:
        raise InvalidSubject(
            subject, path,
            f"shape {geometry.shape} differs from {shown_name(reference_file)}'s {reference.shape}",
        )
    diff = float(np.max(np.abs(geometry.affine - reference.affine)))
    if diff > affine_atol_mm:
        raise InvalidSubject(
            subject, path,
            f"affine differs from {shown_name(reference_file)}'s by up to {diff:.4g} mm "
            f"(tolerance {affine_atol_mm:g} mm)",
        )


def load_subject(files: SubjectFiles, *, label_convention: str = "brats2020",
                 affine_atol_mm: float = 1e-3) -> LoadedSubject:
    """Read and check a subject's four contrasts and label map.

    Checks: each file readable, of real-valued voxels and 3D; all in the space
    of the FLAIR (same shape, affine within ``affine_atol_mm``); finite voxels;
    no contrast all zero; labels integral and within the convention's set. An
    empty label map is valid (no tumour).

    Raises:
        InvalidSubject: the first problem found.
    """
    check_convention(label_convention)
    subject = files.subject
    reference: Geometry | None = None
    reference_file = files.images[CONTRASTS[0]]
    images: dict[str, np.ndarray] = {}
    for contrast, path, voxels, geometry in _contrast_volumes(files):
        if reference is None:
            reference = geometry
        else:
            _check_same_space(subject, path, geometry, reference, reference_file, affine_atol_mm)
        if np.issubdtype(voxels.dtype, np.floating):
            voxels = voxels.astype(np.float32, copy=False)
            if not np.isfinite(voxels).all():
                raise InvalidSubject(subject, path, _non_finite(voxels))
        elif voxels.dtype == bool:
            voxels = voxels.view(np.uint8)
        # Integer voxels (BraTS: int16) stay in the file's type, half the memory of float32;
        # preprocessing converts only the brain's box.
        if not voxels.any():
            raise InvalidSubject(subject, path, f"contrast {contrast} is empty (every voxel is 0)"
                             if files.channels else "contrast is empty (every voxel is 0)")
        images[contrast] = voxels

    label = None
    if files.label is not None:
        path = files.label
        image, voxels = _read(subject, path)
        voxels, geometry = _as_3d(subject, path, voxels, image)
        _check_same_space(subject, path, geometry, reference, reference_file, affine_atol_mm)
        label = _check_labels(subject, path, voxels, label_convention)
    return LoadedSubject(subject, images, label, reference)


def read_label_map(subject: str, path: str | Path, *, label_convention: str = "brats2020"
                   ) -> tuple[np.ndarray, Geometry]:
    """A label map (or a segmentation) checked and in canonical labels, with its geometry.

    Raises:
        InvalidSubject: unreadable, not 3D, or labels outside the convention's set.
    """
    check_convention(label_convention)
    path = Path(path)
    image, voxels = _read(subject, path)
    voxels, geometry = _as_3d(subject, path, voxels, image)
    return _check_labels(subject, path, voxels, label_convention), geometry


def _values(voxels: np.ndarray) -> np.ndarray:
    """The distinct values of a label map. Integer maps with a small range are counted value by
    value (a few vectorised passes, 10x faster than np.unique's sort of the whole volume)."""
    if np.issubdtype(voxels.dtype, np.integer) and voxels.size:
        low, high = int(voxels.min()), int(voxels.max())
        if high - low < 64:
            return np.array([v for v in range(low, high + 1) if np.count_nonzero(voxels == v)])
    return np.unique(voxels)


def _non_finite(voxels: np.ndarray) -> str:
    nan = int(np.count_nonzero(np.isnan(voxels)))
    inf = int(np.count_nonzero(np.isinf(voxels)))
    return f"{nan} NaN and {inf} infinite voxels (of {voxels.size})"


def _check_labels(subject: str, path: Path, voxels: np.ndarray, convention: str) -> np.ndarray:
    allowed = LABEL_SETS[convention]
    if np.issubdtype(voxels.dtype, np.floating):
        if not np.isfinite(voxels).all():
            raise InvalidSubject(subject, path, f"label map: {_non_finite(voxels)}")
        if not np.array_equal(voxels, np.round(voxels)):
            raise InvalidSubject(subject, path, "label map has non-integer values")
    values = _values(voxels)
    unexpected = sorted(int(v) for v in values if int(v) not in allowed)
    if unexpected:
        # conventions whose labels fit, those named like the configured one first (a BraTS
        # 2023-named folder with labels {0, 4} is post-treatment data, not BraTS 2020)
        naming = DATASETS[convention].naming
        others = sorted((c for c, labels in LABEL_SETS.items()
                         if c != convention and set(int(v) for v in values) <= labels),
                        key=lambda c: DATASETS[c].naming != naming)
        hint = (f" (are these {others[0]} labels? then set dataset: {others[0]})"
                if others else "")
        raise InvalidSubject(
            subject, path,
            f"labels {unexpected} are outside the {convention} set {sorted(allowed)}{hint}",
        )
    return to_canonical(voxels, convention)
