"""Reading and writing NIfTI volumes and files, atomically.

Axis order: arrays read from NIfTI keep the file's voxel axes ``(i, j, k)``
(for BraTS: ``(240, 240, 155)``, ``k`` axial). Preprocessed arrays are stored
``(k, j, i, channel)`` so that an axial slice is one contiguous block; see
:mod:`brats_unet.preprocessing.cases`.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def nifti_stem(name: str) -> str | None:
    """The file name without its NIfTI suffix, or None when it is not a NIfTI name."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


@dataclass(frozen=True)
class Geometry:
    """Where the voxels of a volume sit: shape, voxel-to-world affine, voxel size in mm."""

    shape: tuple[int, ...]
    affine: np.ndarray
    pixdim: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "affine": np.asarray(self.affine, dtype=float).tolist(),
            "pixdim": [float(p) for p in self.pixdim],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Geometry:
        return cls(
            shape=tuple(int(s) for s in data["shape"]),
            affine=np.asarray(data["affine"], dtype=float),
            pixdim=tuple(float(p) for p in data["pixdim"]),
        )


def read_nifti(path: str | os.PathLike) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Load a NIfTI file fully: ``(image, voxels)`` with the voxels in the file's own dtype.

    Reading the voxels here (rather than lazily) makes a truncated or corrupt
    file fail at this call, where the caller can name it.
    """
    image = nib.load(os.fspath(path))
    voxels = np.asanyarray(image.dataobj)
    return image, voxels


def geometry_of(image: nib.Nifti1Image) -> Geometry:
    header = image.header
    shape = tuple(int(s) for s in image.shape)
    return Geometry(
        shape=shape,
        affine=np.asarray(image.affine, dtype=float),
        pixdim=tuple(float(z) for z in header.get_zooms()[: len(shape)]),
    )


def nifti_bytes(data: np.ndarray, affine: np.ndarray, pixdim: tuple[float, ...] | None = None,
                gz: bool = True) -> bytes:
    """Serialise a volume as NIfTI-1; gzip with a zero timestamp so equal data give equal bytes."""
    image = nib.Nifti1Image(data, np.asarray(affine, dtype=float))
    if pixdim is not None:
        image.header.set_zooms(tuple(float(p) for p in pixdim))
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    raw = image.to_bytes()
    if not gz:
        return raw
    return gzip.compress(raw, compresslevel=6, mtime=0)


def save_nifti(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike,
               pixdim: tuple[float, ...] | None = None) -> None:
    """Write a volume atomically; ``.nii.gz`` paths are gzip-compressed deterministically."""
    path = Path(path)
    payload = nifti_bytes(data, affine, pixdim, gz=path.name.lower().endswith(".gz"))
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed writer of ``path`` left beside it (one writer per path: Snakemake's
    lock and one job per output)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    A crash leaves at most a ``.tmp-`` file that no reader looks for, never a
    half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it becomes ``path``.

    An existing ``path`` is replaced. A crash leaves a ``.tmp-`` directory, never
    a half-filled ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(data: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def read_record(path: str | os.PathLike, keys: Sequence[str], what: str) -> dict[str, Any]:
    """The JSON object in ``path`` with exactly ``keys``, for a stage's typed record; a
    ValueError naming the file, ``what`` it should hold and the missing or unknown keys."""
    record = read_json(path)
    if not isinstance(record, dict):
        raise ValueError(f"{path}: not {what} (a JSON object was expected)")
    missing = [key for key in keys if key not in record]
    unknown = sorted(set(record) - set(keys))
    if missing or unknown:
        raise ValueError(f"{path}: not {what} of this version: "
                         f"missing keys {missing}, unknown keys {unknown}")
    return record
