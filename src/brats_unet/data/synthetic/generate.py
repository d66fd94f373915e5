"""Synthetic cases: one ``(seed, index)`` drawn and rendered on a grid, and written as BraTS files.

The recipe is :func:`_generate`: every draw that shapes the case (``anatomy``'s head,
tumour and contrasts) comes before the grid-sized noise draws. The files follow
:func:`brats_unet.data.subjects.raw_subject_files`, the one spelling of each dataset
convention's layout, with the convention's names and label values: the same case can be
written as BraTS 2020, 2021, 2023+ or the Decathlon's Task01.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brats_unet.data.datasets import BRATS2020, Dataset
from brats_unet.data.subjects import CONTRASTS, LABEL_SUFFIX, raw_subject_files
from brats_unet.data.synthetic.anatomy import (
    TISSUES,
    add_tumour,
    brain_tissues,
    draw_appearance,
    draw_head,
    draw_tumour,
    fit_scale,
    render,
    scaled_tumour,
)
from brats_unet.data.synthetic.template import (
    draw_pose,
    draw_template_tumour,
    template_tissues,
)
from brats_unet.io import save_nifti
from brats_unet.labels import from_canonical

BRATS_SHAPE: tuple[int, int, int] = (240, 240, 155)
#: World position (mm) of the centre of the volume, near that of a BraTS (SRI24) brain.
WORLD_CENTRE_MM: tuple[float, float, float] = (0.0, -18.0, 18.0)


@dataclass(frozen=True, eq=False)
class SyntheticCase:
    """One generated subject.

    ``images``: contrast -> int16 volume ``(i, j, k)``, 0 outside the brain and >= 1
    inside (so the brain mask is the non-zero voxels). ``label``: uint8 BraTS 2020
    labels {0, 1, 2, 4}. ``affine``: 4x4 voxel-to-world (mm). ``pixdim``: voxel size (mm).
    """

    images: dict[str, np.ndarray]
    label: np.ndarray
    affine: np.ndarray
    pixdim: tuple[float, float, float]
    has_enhancing: bool


#: How each dataset names subject ``index`` (1 -> BraTS20_Training_001, BraTS2021_00001,
#: BraTS-GLI-00001-000, BRATS_001); more digits when the index needs them.
_SUBJECT_NAMES = {
    "brats2020": "BraTS20_Training_{index:03d}",
    "brats2021": "BraTS2021_{index:05d}",
    "brats2023": "BraTS-GLI-{index:05d}-000",
    "brats2024-post": "BraTS-GLI-{index:05d}-100",
    "msd-task01": "BRATS_{index:03d}",
}


def subject_name(index: int, dataset: Dataset = BRATS2020) -> str:
    """The name ``dataset`` gives subject ``index``: 1 -> ``BraTS20_Training_001`` in BraTS
    2020's (more digits from 1000 on)."""
    if index < 0:
        raise ValueError(f"subject index must be >= 0, got {index}")
    return _SUBJECT_NAMES[dataset.name].format(index=index)


def subject_index(name: str, dataset: Dataset = BRATS2020) -> int:
    """The index that :func:`subject_name` turned into ``name``."""
    head = _SUBJECT_NAMES[dataset.name].split("{")[0]
    digits = name[len(head):].split("-")[0] if name.startswith(head) else ""
    if not digits.isdigit():
        raise ValueError(f"{name!r} is not a synthetic {dataset.name} subject name")
    return int(digits)


def brats_affine(*, shape: tuple[int, int, int], spacing_mm: tuple[float, float, float],
                 centre_mm: tuple[float, float, float] = WORLD_CENTRE_MM) -> np.ndarray:
    """BraTS-like voxel-to-world affine ``diag(-si, -sj, sk)``, in mm.

    ``spacing_mm``: voxel size. ``centre_mm``: world position of the volume centre.
    """
    linear = np.diag([-spacing_mm[0], -spacing_mm[1], spacing_mm[2]]).astype(float)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = np.asarray(centre_mm, float) - linear @ ((np.asarray(shape, float) - 1) / 2)
    return affine


#: The healthy brains a case can be drawn on: the cartoon of :mod:`.anatomy`, or the MNI152
#: template of :mod:`.template` (nilearn's package data).
ANATOMIES = ("cartoon", "mni152")


def _draw_anatomy(rng: np.random.Generator, anatomy: str, physical: tuple[np.ndarray, ...],
                  field_of_view_mm: np.ndarray, no_et_probability: float,
                  tumour_factor: float = 1.0):
    """``(tissue map, tumour, looks, frame)``: the grid-free draws in order, then the healthy
    brain on the grid; ``frame`` the coordinates (mm) the tumour is defined in. The tumour's
    volume is scaled by ``tumour_factor`` (:func:`.anatomy.scaled_tumour`; 1: as drawn)."""
    if anatomy == "cartoon":
        head = draw_head(rng)
        tumour = _scaled(draw_tumour(rng, head, no_et_probability=no_et_probability),
                         tumour_factor)
        looks = {c: draw_appearance(rng, c) for c in CONTRASTS}
        scale = fit_scale(head, field_of_view_mm)
        frame = tuple(p / scale - o for p, o in zip(physical, head.offset_mm))
        return brain_tissues(head, frame), tumour, looks, frame
    if anatomy == "mni152":
        pose = draw_pose(rng, field_of_view_mm)
        tumour = _scaled(draw_template_tumour(rng, pose, no_et_probability=no_et_probability),
                         tumour_factor)
        looks = {c: draw_appearance(rng, c) for c in CONTRASTS}
        return template_tissues(pose, physical), tumour, looks, physical
    raise ValueError(f"anatomy must be one of {ANATOMIES}, got {anatomy!r}")


def _scaled(tumour, factor: float):
    return tumour if factor == 1.0 else scaled_tumour(tumour, factor)


def _generate(*, seed: int, index: int, shape: tuple[int, int, int],
              spacing_mm: tuple[float, float, float], no_et_probability: float,
              anatomy: str = "cartoon", tumour_factor: float = 1.0,
              noise_stream: int | None = None) -> tuple[SyntheticCase, np.ndarray]:
    """The case and its tissue map (uint8, ``TISSUES`` values). ``tumour_factor``: the drawn
    tumour's volume scaled (a later scan of the same patient); ``noise_stream``: the noise drawn
    from ``default_rng([seed, index, noise_stream])`` instead of the case's own generator, so
    that another scan of the same anatomy gets noise of its own."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    if not 0.0 <= no_et_probability <= 1.0:
        raise ValueError(f"no_et_probability must be in [0, 1], got {no_et_probability}")
    shape = tuple(int(n) for n in shape)
    spacing_mm = tuple(float(s) for s in spacing_mm)
    if len(shape) != 3 or len(spacing_mm) != 3 or min(shape) < 1 or min(spacing_mm) <= 0:
        raise ValueError(f"need 3 positive sizes, got shape={shape}, spacing_mm={spacing_mm}")

    rng = np.random.default_rng([seed, index])
    # Every draw that shapes the case comes before the grid-sized noise draws, so
    # the anatomy does not depend on the grid.
    physical = tuple((np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing_mm))
    tissue, tumour, looks, frame = _draw_anatomy(
        rng, anatomy, physical, np.asarray(shape) * np.asarray(spacing_mm), no_et_probability,
        tumour_factor)
    label = add_tumour(tissue, tumour, frame)
    brain = tissue != TISSUES.index("background")

    n_brain = int(np.count_nonzero(brain))
    if noise_stream is not None:
        rng = np.random.default_rng([seed, index, noise_stream])
    images = {}
    for contrast in CONTRASTS:
        noise = rng.standard_normal((2, n_brain), dtype=np.float32)
        images[contrast] = render(tissue, brain, looks[contrast], noise,
                                  axes_mm=physical, spacing_mm=spacing_mm)
    case = SyntheticCase(
        images=images,
        label=label,
        affine=brats_affine(shape=shape, spacing_mm=spacing_mm),
        pixdim=spacing_mm,
        has_enhancing=tumour.has_enhancing,
    )
    return case, tissue


def generate_case(*, seed: int, index: int, shape: tuple[int, int, int] = BRATS_SHAPE,
                  spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
                  no_et_probability: float = 0.2, anatomy: str = "cartoon") -> SyntheticCase:
    """Generate one synthetic case, in canonical (BraTS 2020) labels.

    ``seed``, ``index``: non-negative; the case depends on nothing else but the
    grid. ``shape``: voxels ``(i, j, k)``. ``spacing_mm``: voxel size in mm.
    ``no_et_probability``: chance that the tumour has no enhancing part (then its
    core is all label 1). The whole tumour (WT) is never empty, nor is ET when present.
    ``anatomy``: one of :data:`ANATOMIES`, the healthy brain the tumour grows in.
    """
    case, _ = _generate(seed=seed, index=index, shape=shape, spacing_mm=spacing_mm,
                        no_et_probability=no_et_probability, anatomy=anatomy)
    return case


def write_raw_case(case: SyntheticCase, out_dir: str | os.PathLike, subject: str,
                   dataset: Dataset = BRATS2020) -> dict[str, Path]:
    """Write ``case`` in ``dataset``'s layout under ``out_dir`` (BraTS: the subject folder
    ``out_dir/<subject>/``, one ``.nii.gz`` per contrast and the label map; the Decathlon: one
    4D image and the label map), labels in the dataset's values; returns role -> path of each
    file written, contrasts first."""
    written = raw_subject_files(out_dir, subject, dataset=dataset).distinct_files()
    for role, path in written.items():
        if role == LABEL_SUFFIX:
            data = from_canonical(case.label, dataset.name)
        elif dataset.layout == "msd":
            data = np.stack([case.images[c] for c in dataset.channels], axis=-1)
        else:
            data = case.images[role]
        save_nifti(data, case.affine, path, pixdim=tuple(case.pixdim) + (1.0,) * (data.ndim - 3))
    return written


def generate_dataset(out_dir: str | os.PathLike, *, n: int, seed: int,
                     shape: tuple[int, int, int] = BRATS_SHAPE,
                     spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
                     no_et_probability: float = 0.2, start_index: int = 1,
                     dataset: Dataset = BRATS2020, anatomy: str = "cartoon") -> list[str]:
    """Write ``n`` cases (indices ``start_index`` on) in ``dataset``'s layout; returns the names.

    ``shape``, ``spacing_mm`` (mm), ``no_et_probability``, ``anatomy``: as in
    :func:`generate_case`.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    names = []
    for index in range(start_index, start_index + n):
        name = subject_name(index, dataset)
        case = generate_case(seed=seed, index=index, shape=shape, spacing_mm=spacing_mm,
                             no_et_probability=no_et_probability, anatomy=anatomy)
        write_raw_case(case, out_dir, name, dataset)
        names.append(name)
    return names
