"""Finding subjects in a data folder, in the layout of its dataset convention.

In the BraTS layouts (:mod:`brats_unet.data.datasets`) a subject is a folder of ``data_dir``
holding NIfTI files (``.nii`` or ``.nii.gz``) named ``<prefix><separator><suffix>``: BraTS
2018-2021 ``<subject>_flair``, ``_t1``, ``_t1ce``, ``_t2`` (required) and ``_seg`` (the label
map, optional: without it the subject is inference-only); BraTS 2023 and later ``-t2f``,
``-t1n``, ``-t1c``, ``-t2w`` and ``-seg``. The suffix is matched ignoring case; the prefix
(BraTS: the subject's name) must be the same for all of a folder's files, so a folder mixing
two subjects' files is refused. A folder of NIfTI files named otherwise (``flair.nii.gz``,
another release's suffixes, nnU-Net's ``..._0000.nii.gz``) is excluded with the naming it
should follow. Entries beside the subject folders (BraTS ships ``name_mapping.csv`` and
``survival_info.csv``) are ignored and noted. In the Decathlon's layout a subject is a 4D
image ``imagesTr/<subject>.nii.gz`` with its label map ``labelsTr/<subject>.nii.gz``, or an
unlabelled ``imagesTs/<subject>.nii.gz``. :func:`raw_file_name` and :func:`raw_subject_files`
spell each naming for whatever writes subject files.

A widely used copy of BraTS 2020 names BraTS20_Training_355's label map
``W39_1998.09.19_Segm.nii``: when no ``*_seg`` file exists, the one other NIfTI
file whose name contains ``seg`` is taken as the label map.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from brats_unet.data.datasets import (
    BRATS2020,
    CONTRASTS,
    DATASETS,
    LABEL_SUFFIX,
    MSD_IMAGES,
    MSD_LABELS,
    MSD_TEST_IMAGES,
    Dataset,
    data_folder,
)
from brats_unet.io import nifti_stem

__all__ = ["CONTRASTS", "LABEL_SUFFIX", "SubjectFiles", "Problem", "Discovery",
           "discover_subjects", "expected_layout", "expected_naming", "raw_file_name",
           "raw_subject_files", "subject_files_from_roles"]

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
    #: contrast -> channel of a 4D image (the Decathlon's layout: every contrast in one file)
    channels: dict[str, int] | None = None

    @property
    def has_label(self) -> bool:
        return self.label is not None

    def by_role(self) -> dict[str, Path]:
        """Role -> path: the contrasts in ``images`` order, then ``LABEL_SUFFIX`` if labelled."""
        return {**self.images, **({LABEL_SUFFIX: self.label} if self.has_label else {})}

    def distinct_files(self) -> dict[str, Path]:
        """:meth:`by_role` with each file once, under its first role (one 4D image, not four)."""
        seen: dict[Path, str] = {}
        for role, path in self.by_role().items():
            seen.setdefault(path, role)
        return {role: path for path, role in seen.items()}


def raw_file_name(subject: str, role: str, extension: str = ".nii.gz",
                  dataset: Dataset = BRATS2020) -> str:
    """A BraTS release's name of one of a subject's files, ``<subject>_<role><extension>`` in
    BraTS 2020's naming.

    ``role``: a contrast of :data:`CONTRASTS` or :data:`LABEL_SUFFIX`. ``extension``:
    ``.nii.gz`` or ``.nii``.
    """
    return dataset.file_name(subject, role, extension)


def raw_subject_files(data_dir: str | os.PathLike, subject: str, *, extension: str = ".nii.gz",
                      with_label: bool = True, dataset: Dataset = BRATS2020) -> SubjectFiles:
    """Where a data folder of ``dataset``'s layout keeps a subject's files (BraTS:
    ``data_dir/<subject>/<subject>_<role>``; the Decathlon: ``imagesTr/<subject>`` and
    ``labelsTr/<subject>``, or ``imagesTs/<subject>`` without a label), the four contrasts in
    :data:`CONTRASTS` order. Paths only: nothing is read or checked.
    """
    root = Path(data_dir)
    if dataset.layout == "msd":
        image = root / (MSD_IMAGES if with_label else MSD_TEST_IMAGES) / f"{subject}{extension}"
        label = root / MSD_LABELS / f"{subject}{extension}" if with_label else None
        return _four_d_subject(subject, image, label, dataset)
    folder = root / subject
    images = {c: folder / dataset.file_name(subject, c, extension) for c in CONTRASTS}
    label = folder / dataset.file_name(subject, LABEL_SUFFIX, extension) if with_label else None
    return SubjectFiles(subject=subject, images=images, label=label)


def _four_d_subject(subject: str, image: Path, label: Path | None,
                    dataset: Dataset) -> SubjectFiles:
    """A subject of the Decathlon's layout: every contrast a channel of one 4D ``image``."""
    return SubjectFiles(subject=subject, images={c: image for c in CONTRASTS}, label=label,
                        channels=dataset.channel_of())


def subject_files_from_roles(subject: str, roles: dict[str, str | os.PathLike],
                             dataset: Dataset) -> SubjectFiles:
    """The :class:`SubjectFiles` whose :meth:`~SubjectFiles.by_role` gave ``roles`` (a rule's
    inputs), in ``dataset``'s layout."""
    label = roles.get(LABEL_SUFFIX)
    return SubjectFiles(subject=subject, images={c: Path(roles[c]) for c in CONTRASTS},
                        label=Path(label) if label is not None else None,
                        channels=dataset.channel_of() if dataset.layout == "msd" else None)


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


def _split_stem(stem: str, separator: str) -> tuple[str, str] | None:
    """``(prefix, suffix)`` of ``<prefix><separator><suffix>``, the suffix lower-cased; None
    without both."""
    prefix, _, suffix = stem.rpartition(separator)
    if not prefix or not suffix:
        return None
    return prefix, suffix.lower()


def _listing(names: list[str], limit: int = 8) -> str:
    shown = sorted(names)[:limit]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "") if names else "none"


def expected_naming(dataset: Dataset = BRATS2020) -> str:
    """The file names a subject folder of ``dataset`` holds, for messages."""
    contrasts = ", ".join(f"<subject>{dataset.separator}{dataset.suffix(c)}" for c in CONTRASTS)
    return (f"{contrasts} and optionally <subject>{dataset.separator}"
            f"{dataset.suffix(LABEL_SUFFIX)}, each .nii or .nii.gz")


def expected_layout(dataset: Dataset = BRATS2020) -> str:
    """Where ``dataset`` keeps a subject's files, for messages."""
    if dataset.layout == "msd":
        return (f"4D images {MSD_IMAGES}/<subject>.nii.gz with {MSD_LABELS}/<subject>.nii.gz, "
                f"or unlabelled in {MSD_TEST_IMAGES}/")
    return f"one folder per subject holding {expected_naming(dataset)}"


def _naming_hint(names: list[str], dataset: Dataset) -> str:
    """`` (these are brats2023 names: set dataset: brats2023)`` when another BraTS naming fits."""
    for other in (DATASETS["brats2023"], BRATS2020):
        if other.separator == dataset.separator or other.layout != "folders":
            continue
        if any((parts := _split_stem(nifti_stem(n), other.separator)) is not None
               and other.role_of(parts[1]) in CONTRASTS for n in names):
            return f" (these are {other.name} names: set dataset: {other.name} or auto)"
    return ""


def _match_roles(niftis: list[str], dataset: Dataset):
    """Role -> the files named for it, the prefixes (lower-cased -> as written), and the rest."""
    found: dict[str, list[str]] = {}
    prefixes: dict[str, str] = {}
    others: list[str] = []
    for name in niftis:
        parts = _split_stem(nifti_stem(name), dataset.separator)
        role = dataset.role_of(parts[1]) if parts is not None else None
        if role is not None:
            found.setdefault(role, []).append(name)
            prefixes.setdefault(parts[0].lower(), parts[0])
        else:
            others.append(name)
    return found, prefixes, others


def classify_folder(subject: str, folder: Path, names: list[str],
                    dataset: Dataset = BRATS2020) -> SubjectFiles | Problem:
    """Match a subject folder's file names to the contrasts and the label map."""
    where = f"{folder.name}/"
    niftis = sorted(n for n in names if nifti_stem(n) is not None)
    found, prefixes, others = _match_roles(niftis, dataset)
    if not any(c in found for c in CONTRASTS):
        return Problem(
            subject, where,
            f"file names do not follow the {dataset.naming} naming (expected "
            f"{expected_naming(dataset)}; found: {_listing(niftis)})"
            f"{_naming_hint(niftis, dataset)}",
        )
    for role, files in found.items():
        if len(files) > 1:
            return Problem(subject, ", ".join(files),
                           f"more than one file for {dataset.suffix(role)}")
    if len(prefixes) > 1:
        named = [f for files in found.values() for f in files]
        # name the strays when the folder's own name is one of the prefixes
        strays = [f for f in named if _split_stem(nifti_stem(f), dataset.separator)[0].lower()
                  != subject.lower()]
        return Problem(
            subject, ", ".join(strays if len(strays) < len(named) else named),
            f"the file names name different subjects ({', '.join(sorted(prefixes.values()))}); "
            "one folder must hold one subject's files",
        )
    missing = [c for c in CONTRASTS if c not in found]
    if missing:
        expected = ", ".join(f"*{dataset.separator}{dataset.suffix(c)}.nii[.gz]" for c in missing)
        return Problem(
            subject, where,
            f"missing contrast {', '.join(dataset.suffix(c) for c in missing)} (expected "
            f"{expected}; found: {_listing(niftis)})",
        )
    label = _label_file(subject, folder, found, others, dataset.separator)
    if isinstance(label, Problem):
        return label
    images = {c: folder / found[c][0] for c in CONTRASTS}
    return SubjectFiles(subject=subject, images=images, label=label)


def _label_file(subject: str, folder: Path, found: dict[str, list[str]], others: list[str],
                separator: str) -> Path | None | Problem:
    """The label map: the ``seg`` file, else the one other NIfTI named like one (BraTS 2020's
    Training_355), else none."""
    if LABEL_SUFFIX in found:
        return folder / found[LABEL_SUFFIX][0]
    candidates = [n for n in others if "seg" in n.lower()]
    if len(candidates) > 1:
        return Problem(subject, ", ".join(candidates),
                       f"no *{separator}seg file and several candidate label maps")
    return folder / candidates[0] if candidates else None


def _discover_msd(root: Path, dataset: Dataset, found: Discovery) -> Discovery:
    """The Decathlon's layout: 4D images in imagesTr/ (labels in labelsTr/) and imagesTs/."""
    labels_dir = root / MSD_LABELS
    label_names = ({n for n in os.listdir(labels_dir) if not n.startswith(".")}
                   if labels_dir.is_dir() else set())
    used_labels, seen = set(), {}
    layout_entries = {MSD_IMAGES, MSD_LABELS, MSD_TEST_IMAGES, "dataset.json"}
    found.ignored.extend(f"{e!r}: not part of the Decathlon's layout"
                         for e in sorted(os.listdir(root)) if e not in layout_entries)
    for folder, labelled in ((root / MSD_IMAGES, True), (root / MSD_TEST_IMAGES, False)):
        if not folder.is_dir():
            continue
        for name in sorted(os.listdir(folder)):
            stem = nifti_stem(name)
            if name.startswith(".") or stem is None:
                found.ignored.append(f"{folder.name}/{name!r}: "
                                     f"{'hidden file' if name.startswith('.') else 'not NIfTI'}")
                continue
            where = f"{folder.name}/{name}"
            if bad_name := check_subject_name(stem):
                found.excluded.append(Problem(stem, where, bad_name))
                continue
            if stem in seen:  # the same subject twice: neither file is taken over the other
                found.excluded.append(Problem(stem, f"{seen[stem]}, {where}",
                                              "two images of one subject"))
                found.subjects = [s for s in found.subjects if s.subject != stem]
                continue
            seen[stem] = where
            label = labels_dir / name if labelled and name in label_names else None
            if labelled and label is None:
                found.ignored.append(f"{where!r}: no {MSD_LABELS}/{name}, predicted as unlabelled")
            if label is not None:
                used_labels.add(name)
            found.subjects.append(_four_d_subject(stem, folder / name, label, dataset))
    found.ignored.extend(f"{MSD_LABELS}/{n!r}: a label map without an image in {MSD_IMAGES}/"
                         for n in sorted(label_names - used_labels))
    found.subjects.sort(key=lambda s: s.subject)
    return found


def discover_subjects(data_dir: str | os.PathLike, dataset: Dataset = BRATS2020) -> Discovery:
    """Find the subjects in ``data_dir``, sorted by name.

    Subjects whose folder cannot be used (unsafe name, other naming, missing
    contrast, ambiguous or mixed files) are returned in ``excluded`` with the
    reason; nothing that looks like a subject is dropped silently. Every other
    entry is noted in ``ignored``.
    """
    root = data_folder(data_dir)
    found = Discovery()
    if dataset.layout == "msd":
        return _discover_msd(root, dataset, found)
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
        hidden = [n for n in names if n.startswith(".")]  # macOS's ._ copies, editors' files
        found.ignored.extend(f"{entry.name}/{n!r}: hidden file" for n in hidden)
        names = [n for n in names if not n.startswith(".")]
        bad_name = check_subject_name(entry.name)
        if bad_name:
            found.excluded.append(Problem(entry.name, f"{entry.name}/", bad_name))
            continue
        result = classify_folder(entry.name, Path(entry.path), names, dataset)
        if isinstance(result, Problem):
            found.excluded.append(result)
        else:
            found.subjects.append(result)
    return found
