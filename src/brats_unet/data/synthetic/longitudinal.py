"""Synthetic longitudinal pairs: one patient scanned twice, the tumour grown or shrunk by a known
factor, the head moved and the voxels changed between the scans.

The follow-up is the baseline's anatomy (same seed and index: same brain, same tumour outline)
with the tumour's volume scaled by the pair's factor (:func:`.anatomy.scaled_tumour`), rendered
on the baseline's grid with noise of its own, then moved rigidly (a rotation about the volume
centre and a shift) and resampled onto a grid of another voxel size and shape: images
trilinearly, labels by nearest neighbour. Each scan's labels are its truth, so a test knows
the true change: true volumes are counted on them with each scan's own pixdim. The factor is
the unclipped shape's; the labelled one follows it up to the brain's and white matter's
clipping and the two grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from brats_unet.data.datasets import BRATS2020, Dataset
from brats_unet.data.synthetic.generate import (
    WORLD_CENTRE_MM,
    SyntheticCase,
    _generate,
    brats_affine,
    subject_name,
)
from brats_unet.data.synthetic.template import rotation_matrix as template_rotation
from brats_unet.labels import ENHANCING

#: Volume factors of the pairs, in turn: progression, stable, response, and milder changes.
FOLLOW_UP_FACTORS = (2.0, 1.0, 0.3, 1.5, 1.0, 0.6)
#: A follow-up's subject index: its baseline's plus this (baselines must stay below it).
FOLLOW_UP_OFFSET = 900


@dataclass(frozen=True)
class FollowUp:
    """How one pair's follow-up differs from its baseline (subject ``baseline_index``)."""

    baseline_index: int
    factor: float                           # tumour volume, follow-up over baseline
    rotation_deg: tuple[float, float, float]  # about the i, j, k axes through the volume centre
    shift_mm: tuple[float, float, float]
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]

    @property
    def index(self) -> int:
        return self.baseline_index + FOLLOW_UP_OFFSET


def plan_follow_ups(n_pairs: int, *, seed: int, first_index: int, shape, spacing_mm,
                    factors=FOLLOW_UP_FACTORS) -> list[FollowUp]:
    """``n_pairs`` follow-ups of baselines ``first_index`` on, factors taken from ``factors`` in
    turn; each draws a rotation (up to 8 degrees per axis), a shift (up to 6 mm per axis) and a
    voxel size (0.8 to 1.25 times the baseline's per axis; the shape keeps the field of view)
    from ``default_rng([seed, follow-up index])``."""
    if n_pairs < 0:
        raise ValueError(f"the number of pairs must be >= 0, got {n_pairs}")
    if n_pairs and first_index + n_pairs > FOLLOW_UP_OFFSET:
        raise ValueError(f"longitudinal baselines must have indices below {FOLLOW_UP_OFFSET} "
                         f"(got {first_index}..{first_index + n_pairs - 1})")
    plans = []
    for k in range(n_pairs):
        baseline = first_index + k
        rng = np.random.default_rng([seed, baseline + FOLLOW_UP_OFFSET])
        rotation = tuple(float(a) for a in rng.uniform(-8, 8, size=3))
        shift = tuple(float(s) for s in rng.uniform(-6, 6, size=3))
        new_spacing = np.asarray(spacing_mm, float) * rng.uniform(0.8, 1.25, size=3)
        new_shape = np.maximum(np.round(np.asarray(shape) * np.asarray(spacing_mm) / new_spacing),
                               1).astype(int)
        plans.append(FollowUp(baseline, float(factors[k % len(factors)]), rotation, shift,
                              tuple(int(n) for n in new_shape),
                              tuple(round(float(s), 3) for s in new_spacing)))
    return plans


def rotation_matrix(degrees) -> np.ndarray:
    """Rotation about the i, then j, then k axis, by ``degrees`` each."""
    return template_rotation(np.radians(np.asarray(degrees, float)))


def moved(case: SyntheticCase, *, rotation_deg, shift_mm, shape, spacing_mm) -> SyntheticCase:
    """``case`` with the head rotated about the volume centre and shifted (world mm), scanned
    on a new grid (``shape`` voxels of ``spacing_mm``, the same world centre): images
    trilinear inside the resampled brain mask and 0 outside it, labels nearest neighbour."""
    target = brats_affine(shape=tuple(shape), spacing_mm=tuple(spacing_mm))
    rotation = rotation_matrix(rotation_deg)
    centre = np.asarray(WORLD_CENTRE_MM, float)
    to_source = np.linalg.inv(case.affine)
    # a target voxel's world point x came from R^T (x - c - t) + c in the first scan
    matrix = to_source[:3, :3] @ rotation.T @ target[:3, :3]
    offset = (to_source[:3, :3] @ (rotation.T @ (target[:3, 3] - centre - np.asarray(shift_mm))
                                   + centre) + to_source[:3, 3])
    resample = {"matrix": matrix, "offset": offset, "output_shape": tuple(shape),
                "mode": "constant", "cval": 0.0}
    # the brain where its mask resamples to at least one half, >= 1 inside and 0 outside
    any_image = next(iter(case.images.values()))
    brain = ndimage.affine_transform((any_image > 0).astype(np.float32), order=1,
                                     **resample) >= 0.5
    images = {}
    for contrast, image in case.images.items():
        values = np.round(ndimage.affine_transform(image.astype(np.float32), order=1, **resample))
        images[contrast] = np.where(brain, np.maximum(values, 1), 0).astype(image.dtype)
    label = np.where(brain, ndimage.affine_transform(case.label, order=0, **resample), 0
                     ).astype(np.uint8)
    return SyntheticCase(images=images, label=label, affine=target,
                         pixdim=tuple(float(s) for s in spacing_mm),
                         has_enhancing=bool((label == ENHANCING).any()))


def generate_follow_up(plan: FollowUp, *, seed: int, shape, spacing_mm,
                       no_et_probability: float, anatomy: str = "cartoon") -> SyntheticCase:
    """The follow-up scan of baseline ``plan.baseline_index`` (drawn with ``seed`` on the
    baseline's ``shape`` and ``spacing_mm``, as :func:`.generate.generate_case` draws it)."""
    grown, _ = _generate(seed=seed, index=plan.baseline_index, shape=tuple(shape),
                         spacing_mm=tuple(spacing_mm), no_et_probability=no_et_probability,
                         anatomy=anatomy, tumour_factor=plan.factor, noise_stream=plan.index)
    return moved(grown, rotation_deg=plan.rotation_deg, shift_mm=plan.shift_mm,
                 shape=plan.shape, spacing_mm=plan.spacing_mm)


def pair_rows(plans: list[FollowUp], dataset: Dataset = BRATS2020) -> list[dict]:
    """The pairs table's rows (``patient``, ``baseline``, ``follow_up``, ``factor``) of
    ``plans``; the patient is named after the baseline."""
    return [{"patient": f"patient-{p.baseline_index:03d}",
             "baseline": subject_name(p.baseline_index, dataset),
             "follow_up": subject_name(p.index, dataset), "factor": p.factor} for p in plans]
