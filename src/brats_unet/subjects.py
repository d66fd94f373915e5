"""Finding BraTS subjects in a data folder.

A subject is a folder of ``data_dir`` holding NIfTI files (``.nii`` or
``.nii.gz``) named ``<anything>_<suffix>``, suffix one of ``flair``, ``t1``,
``t1ce``, ``t2`` (required) and ``seg`` (the label map, optional: without it the
subject is inference-only). Files beside the subject folders (BraTS ships
``name_mapping.csv`` and ``survival_info.csv``) are ignored.

A widely used copy of BraTS 2020 names BraTS20_Training_355's label map
``W39_1998.09.19_Segm.nii``: when no ``*_seg`` file exists, the one other NIfTI
file whose name contains ``seg`` is taken as the label map.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from brats_unet.io import nifti_stem

CONTRASTS: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")
LABEL_SUFFIX = "seg"

#: Subject names become file and folder names under results/: nothing that can
#: climb out of a folder, no separators, no hidden names, no shell metacharacters.
SUBJECT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_SUBJECT_RE = re.compile(SUBJECT_PATTERN)


@dataclass(frozen=True)
class SubjectFiles:
    """The files of one subject: contrast name -> path, and the label map if any."""

    subject: str
    images: dict[str, Path]
    label: Path | None = None

    @property
    def has_label(self) -> bool:
        return self.label is not None


@dataclass(frozen=True)
class Problem:
    """Why a subject is excluded: which subject, which file, what is wrong."""

    subject: str
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.file}: {self.problem}"


@dataclass
class Discovery:
    subjects: list[SubjectFiles] = field(default_factory=list)
    excluded: list[Problem] = field(default_factory=list)
    #: entries of data_dir that are not subjects, with why (for the log)
    ignored: list[str] = field(default_factory=list)


def check_subject_name(name: str) -> str | None:
    """None when ``name`` is a safe subject name, else what is wrong with it."""
    if _SUBJECT_RE.fullmatch(name):
        return None
    return (
        f"subject name {name!r} is not allowed: it must match {SUBJECT_PATTERN} "
        "(letters, digits, '.', '_' and '-', starting with a letter or digit)"
    )


def _suffix_of(stem: str) -> str:
    return stem.rsplit("_", 1)[-1].lower()


def classify_folder(subject: str, folder: Path, names: list[str]) -> SubjectFiles | Problem:
    """Match a subject folder's file names to the contrasts and the label map."""
    found: dict[str, list[str]] = {}
    others: list[str] = []
    for name in sorted(names):
        stem = nifti_stem(name)
        if stem is None:
            continue
        suffix = _suffix_of(stem)
        if suffix in CONTRASTS or suffix == LABEL_SUFFIX:
            found.setdefault(suffix, []).append(name)
        else:
            others.append(name)

    for suffix, files in found.items():
        if len(files) > 1:
            return Problem(subject, ", ".join(files), f"more than one file for {suffix}")

    missing = [c for c in CONTRASTS if c not in found]
    if missing:
        listing = ", ".join(sorted(n for n in names if nifti_stem(n))) or "no NIfTI files"
        expected = ", ".join(f"*_{c}.nii[.gz]" for c in missing)
        return Problem(
            subject,
            str(folder),
            f"missing contrast {', '.join(missing)} (expected {expected}; found: {listing})",
        )

    label: Path | None = None
    if LABEL_SUFFIX in found:
        label = folder / found[LABEL_SUFFIX][0]
    else:
        candidates = [n for n in others if "seg" in n.lower()]
        if len(candidates) == 1:
            label = folder / candidates[0]
        elif len(candidates) > 1:
            return Problem(
                subject, ", ".join(candidates), "no *_seg file and several candidate label maps"
            )
    images = {c: folder / found[c][0] for c in CONTRASTS}
    return SubjectFiles(subject=subject, images=images, label=label)


def discover_subjects(data_dir: str | os.PathLike) -> Discovery:
    """Find the subjects in ``data_dir``, sorted by name.

    Subjects whose folder cannot be used (unsafe name, missing contrast,
    ambiguous files) are returned in ``excluded`` with the reason; nothing
    that looks like a subject is dropped silently.
    """
    root = Path(data_dir)
    if not root.exists():
        raise FileNotFoundError(f"data_dir {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"data_dir {str(root)!r} is not a folder")

    found = Discovery()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir():
            if nifti_stem(entry.name) is not None:
                found.ignored.append(f"{entry.name}: a NIfTI file outside any subject folder")
            continue
        if entry.name.startswith("."):
            found.ignored.append(f"{entry.name}: hidden folder")
            continue
        names = os.listdir(entry.path)
        if not any(nifti_stem(n) for n in names):
            found.ignored.append(f"{entry.name}: folder without NIfTI files")
            continue
        bad_name = check_subject_name(entry.name)
        if bad_name:
            found.excluded.append(Problem(entry.name, entry.name, bad_name))
            continue
        result = classify_folder(entry.name, Path(entry.path), names)
        if isinstance(result, Problem):
            found.excluded.append(result)
        else:
            found.subjects.append(result)
    return found
