"""Finding BraTS subjects in a data folder.

A subject is a folder of ``data_dir`` holding NIfTI files (``.nii`` or
``.nii.gz``) named ``<prefix>_<suffix>``, suffix one of ``flair``, ``t1``,
``t1ce``, ``t2`` (required) and ``seg`` (the label map, optional: without it the
subject is inference-only). The suffix is matched ignoring case; the prefix
(BraTS: the subject's name) must be the same for all of a folder's files, so a
folder mixing two subjects' files is refused. A folder of NIfTI files named
otherwise (``flair.nii.gz``, BraTS 2023's ``...-t2f.nii.gz``, nnU-Net's
``..._0000.nii.gz``) is excluded with the naming it should follow. Entries
beside the subject folders (BraTS ships ``name_mapping.csv`` and
``survival_info.csv``) are ignored and noted. :func:`raw_file_name` and
:func:`raw_subject_files` spell this naming for whatever writes subject folders.

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

    def by_role(self) -> dict[str, Path]:
        """Role -> path: the contrasts in ``images`` order, then ``LABEL_SUFFIX`` if labelled."""
        return {**self.images, **({LABEL_SUFFIX: self.label} if self.has_label else {})}


def raw_file_name(subject: str, role: str, extension: str = ".nii.gz") -> str:
    """BraTS name of one of a subject's files: ``<subject>_<role><extension>``.

    ``role``: a contrast of :data:`CONTRASTS` or :data:`LABEL_SUFFIX`. ``extension``:
    ``.nii.gz`` or ``.nii``.
    """
    return f"{subject}_{role}{extension}"


def raw_subject_files(data_dir: str | os.PathLike, subject: str, *, extension: str = ".nii.gz",
                      with_label: bool = True) -> SubjectFiles:
    """Where a BraTS data folder keeps a subject's files: ``data_dir/<subject>/<subject>_<role>``
    with ``extension``, the four contrasts in :data:`CONTRASTS` order and, if ``with_label``,
    the label map. Paths only: nothing is read or checked.
    """
    folder = Path(data_dir) / subject
    images = {c: folder / raw_file_name(subject, c, extension) for c in CONTRASTS}
    label = folder / raw_file_name(subject, LABEL_SUFFIX, extension) if with_label else None
    return SubjectFiles(subject=subject, images=images, label=label)


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


def _split_stem(stem: str) -> tuple[str, str] | None:
    """``(prefix, suffix)`` of ``<prefix>_<suffix>``, the suffix lower-cased; None without both."""
    prefix, _, suffix = stem.rpartition("_")
    if not prefix or not suffix:
        return None
    return prefix, suffix.lower()


def _listing(names: list[str], limit: int = 8) -> str:
    shown = sorted(names)[:limit]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "") if names else "none"


EXPECTED_NAMING = (
    "<subject>_flair, <subject>_t1, <subject>_t1ce, <subject>_t2 and optionally <subject>_seg, "
    "each .nii or .nii.gz"
)


def classify_folder(subject: str, folder: Path, names: list[str]) -> SubjectFiles | Problem:
    """Match a subject folder's file names to the contrasts and the label map."""
    where = f"{folder.name}/"
    niftis = sorted(n for n in names if nifti_stem(n) is not None)
    found: dict[str, list[str]] = {}
    prefixes: dict[str, str] = {}  # lower-cased prefix -> as written
    others: list[str] = []
    for name in niftis:
        parts = _split_stem(nifti_stem(name))
        if parts is not None and parts[1] in (*CONTRASTS, LABEL_SUFFIX):
            found.setdefault(parts[1], []).append(name)
            prefixes.setdefault(parts[0].lower(), parts[0])
        else:
            others.append(name)

    if not any(c in found for c in CONTRASTS):
        return Problem(
            subject, where,
            f"file names do not follow the BraTS naming (expected {EXPECTED_NAMING}; "
            f"found: {_listing(niftis)})",
        )
    for suffix, files in found.items():
        if len(files) > 1:
            return Problem(subject, ", ".join(files), f"more than one file for {suffix}")
    if len(prefixes) > 1:
        named = [f for files in found.values() for f in files]
        # name the strays when the folder's own name is one of the prefixes
        strays = [f for f in named
                  if _split_stem(nifti_stem(f))[0].lower() != subject.lower()]
        return Problem(
            subject, ", ".join(strays if len(strays) < len(named) else named),
            f"the file names name different subjects ({', '.join(sorted(prefixes.values()))}); "
            "one folder must hold one subject's files",
        )

    missing = [c for c in CONTRASTS if c not in found]
    if missing:
        expected = ", ".join(f"*_{c}.nii[.gz]" for c in missing)
        return Problem(
            subject, where,
            f"missing contrast {', '.join(missing)} (expected {expected}; "
            f"found: {_listing(niftis)})",
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

    Subjects whose folder cannot be used (unsafe name, other naming, missing
    contrast, ambiguous or mixed files) are returned in ``excluded`` with the
    reason; nothing that looks like a subject is dropped silently. Every other
    entry is noted in ``ignored``.
    """
    root = Path(data_dir)
    if not root.exists():
        raise FileNotFoundError(f"data_dir {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"data_dir {str(root)!r} is not a folder")

    found = Discovery()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir():
            what = "a NIfTI file" if nifti_stem(entry.name) is not None else "a file"
            found.ignored.append(f"{entry.name!r}: {what} outside any subject folder")
            continue
        if entry.name.startswith("."):
            found.ignored.append(f"{entry.name!r}: hidden folder")
            continue
        try:
            names = os.listdir(entry.path)
        except OSError as err:
            found.excluded.append(Problem(entry.name, f"{entry.name}/",
                                          f"cannot list the folder ({err.strerror})"))
            continue
        if not any(nifti_stem(n) for n in names):
            found.ignored.append(f"{entry.name!r}: folder without NIfTI files")
            continue
        bad_name = check_subject_name(entry.name)
        if bad_name:
            found.excluded.append(Problem(entry.name, f"{entry.name}/", bad_name))
            continue
        result = classify_folder(entry.name, Path(entry.path), names)
        if isinstance(result, Problem):
            found.excluded.append(result)
        else:
            found.subjects.append(result)
    return found
