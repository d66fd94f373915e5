"""Dataset conventions: how each BraTS release, and the Medical Segmentation Decathlon's brain
tumour task, lays out, names and labels its files.

=================  =========================================  ====================================
``dataset:``       files                                      labels in the files
=================  =========================================  ====================================
``brats2020``      ``<subject>/<subject>_flair|t1|t1ce|t2|``  1 NCR/NET, 2 oedema, 4 ET
                   ``seg.nii[.gz]``
``brats2021``      as 2020                                    as 2020 (ET is still 4)
``brats2023``      ``<subject>/<subject>-t2f|t1n|t1c|t2w|``   1 NETC, 2 SNFH, 3 ET
                   ``seg.nii[.gz]`` (GLI, MEN, MET, SSA, PED 2023)
``brats2024-post`` as 2023                                    as 2023, plus 4 resection cavity
                                                              (in none of WT, TC, ET)
``msd-task01``     ``imagesTr/<subject>.nii.gz`` 4D (FLAIR,   1 oedema, 2 non-enhancing tumour,
                   T1w, T1gd, T2w), ``labelsTr/<subject>``,   3 enhancing tumour
                   ``imagesTs/`` unlabelled
=================  =========================================  ====================================

BraTS-PEDs 2024 relabelled its classes (1 ET, 2 non-enhancing, 3 cyst, 4 oedema) under the
2023 names: not a convention here yet.

Inside the pipeline contrasts have the 2020 names (:data:`CONTRASTS`) and labels are
canonical (:mod:`brats_unet.labels`); a convention applies only where files are read and
written, so predictions come out in the dataset's own labels and names. ``auto``
(:func:`detect_dataset`) recognises the layout from the file names and says why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from brats_unet.io import nifti_stem
from brats_unet.labels import check_convention

#: The contrasts in the pipeline's own (BraTS 2020) names and channel order.
CONTRASTS: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")
#: The label map's role beside the contrasts (and its file suffix in every BraTS release).
LABEL_SUFFIX = "seg"

#: MSD Task01's folders: labelled images, their label maps, unlabelled images.
MSD_IMAGES, MSD_LABELS, MSD_TEST_IMAGES = "imagesTr", "labelsTr", "imagesTs"


@dataclass(frozen=True)
class Dataset:
    """One dataset convention: its layout, its file names and (by name) its labels."""

    name: str
    title: str
    layout: str  # "folders": one folder per subject; "msd": 4D images in imagesTr/, labelsTr/
    separator: str = "_"  # between the subject and the role in a file name ("folders")
    suffixes: Mapping[str, str] | None = None  # role -> the file's suffix ("folders")
    channels: tuple[str, ...] = ()  # "msd": the contrast of each channel of the 4D image
    naming: str = "BraTS 2018-2021"  # whose file naming it is, for messages

    def suffix(self, role: str) -> str:
        return (self.suffixes or {}).get(role, role)

    def role_of(self, suffix: str) -> str | None:
        """The role (a contrast or ``seg``) a file suffix stands for, case ignored; None if none."""
        for role in (*CONTRASTS, LABEL_SUFFIX):
            if self.suffix(role).lower() == suffix.lower():
                return role
        return None

    def file_name(self, subject: str, role: str, extension: str = ".nii.gz") -> str:
        """The file name of one of a subject's files in a ``folders`` layout."""
        return f"{subject}{self.separator}{self.suffix(role)}{extension}"

    def channel_of(self) -> dict[str, int]:
        """Contrast -> channel of the 4D image (the ``msd`` layout)."""
        return {contrast: index for index, contrast in enumerate(self.channels)}


_BRATS2023_SUFFIXES = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "seg": "seg"}

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("brats2020", "BraTS 2020", "folders"),
        Dataset("brats2021", "BraTS 2021", "folders"),
        Dataset("brats2023", "BraTS 2023 and later (GLI, MEN, MET, SSA, PED 2023)", "folders",
                separator="-", suffixes=_BRATS2023_SUFFIXES, naming="BraTS 2023+"),
        Dataset("brats2024-post", "BraTS 2024 post-treatment glioma", "folders",
                separator="-", suffixes=_BRATS2023_SUFFIXES, naming="BraTS 2023+"),
        Dataset("msd-task01", "Medical Segmentation Decathlon Task01_BrainTumour", "msd",
                channels=("flair", "t1", "t1ce", "t2"), naming="Decathlon"),
    )
}
for _name in DATASETS:
    check_convention(_name)  # every dataset has its label table in brats_unet.labels
BRATS2020 = DATASETS["brats2020"]


def dataset(name: str) -> Dataset:
    """The convention called ``name``; a ValueError listing the known ones otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected auto or one of {sorted(DATASETS)}")
    return DATASETS[name]


def data_folder(data_dir: str | os.PathLike) -> Path:
    """``data_dir`` as a path; FileNotFoundError or NotADirectoryError when it is no folder."""
    root = Path(data_dir)
    if not root.exists():
        raise FileNotFoundError(f"data_dir {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"data_dir {str(root)!r} is not a folder")
    return root


def _sample_stems(root: Path, limit: int = 64) -> list[str]:
    """The stems of up to ``limit`` NIfTI files in ``root``'s subject folders (and beside them),
    hidden entries skipped: enough to recognise a naming without listing 1,251 folders."""
    stems: list[str] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        names = sorted(os.listdir(entry.path)) if entry.is_dir() else [entry.name]
        stems.extend(s for s in map(nifti_stem, names) if s is not None and s[:1] != ".")
        if len(stems) >= limit:
            break
    return stems


def _ends_in(stem: str, dataset: Dataset) -> bool:
    """Whether ``stem`` ends in one of ``dataset``'s contrast suffixes."""
    head, _, suffix = stem.rpartition(dataset.separator)
    return bool(head) and dataset.role_of(suffix) in CONTRASTS


def detect_dataset(data_dir: str | os.PathLike) -> tuple[Dataset, str]:
    """The convention of the data in ``data_dir``, recognised from its layout and file names,
    and why; a ValueError saying what was found when none fits.

    BraTS 2020 and 2021 name their files alike; subjects named ``BraTS2021_*`` are read as
    2021 (the labels are the same either way). BraTS 2023 and the 2024 post-treatment release
    name their files alike too: ``auto`` takes 2023, and a label 4 (resection cavity) then
    fails validation with the hint to set ``dataset: brats2024-post``.
    """
    root = data_folder(data_dir)
    for folder in (MSD_IMAGES, MSD_TEST_IMAGES):
        if (root / folder).is_dir():
            return DATASETS["msd-task01"], (f"{folder}/ holds the images (the Medical "
                                            "Segmentation Decathlon's layout)")
    stems = _sample_stems(root)
    new = [s for s in stems if _ends_in(s, DATASETS["brats2023"])]
    old = [s for s in stems if _ends_in(s, DATASETS["brats2020"])]
    if new and len(new) >= len(old):
        return DATASETS["brats2023"], (f"file names such as {new[0]!r} end in -t2f, -t1n, -t1c "
                                       "or -t2w (BraTS 2023 and later)")
    if old:
        year = "brats2021" if old[0].lower().startswith("brats2021") else "brats2020"
        return DATASETS[year], (f"file names such as {old[0]!r} end in _flair, _t1, _t1ce or "
                                f"_t2 (BraTS 2018-2021, labels 1, 2, 4)")
    raise ValueError(f"dataset: auto cannot tell the convention of {root}: found "
                     f"{', '.join(stems[:5]) or 'no NIfTI files'}; set dataset: to one of "
                     f"{sorted(DATASETS)}")


def resolve_dataset(name: str, data_dir: str | os.PathLike | None) -> Dataset:
    """The configured convention, or for ``auto`` the detected one (synthetic data, without
    ``data_dir``: BraTS 2020's). :func:`explain_dataset` says why."""
    if name != "auto":
        return dataset(name)
    if not data_dir:
        return BRATS2020
    return detect_dataset(data_dir)[0]


def explain_dataset(name: str, data_dir: str | os.PathLike | None) -> str:
    """Why the data in ``data_dir`` is read as ``name``, from the data, not from how the config
    spells it: an explicit ``dataset:`` and ``auto`` that agree give the same sentence, so
    writing the key out re-runs nothing."""
    chosen = dataset(name)
    if not data_dir:
        return f"synthetic data, written in the {chosen.title} layout"
    try:
        detected, why = detect_dataset(data_dir)
    except (ValueError, OSError) as err:
        return f"as configured; auto could not tell ({err})"
    if detected.name == name:
        return why
    if detected.naming == chosen.naming:
        return f"as configured, with {chosen.naming} names: {why}"
    return f"as configured, although auto would take {detected.name}: {why}"
