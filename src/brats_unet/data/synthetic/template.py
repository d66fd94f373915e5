"""Synthetic cases on a real brain: the MNI152 template that nilearn's wheel ships.

The cartoon brain of :mod:`brats_unet.data.synthetic.anatomy` is an ellipsoid with a few
folds; models learn it in minutes. Here the healthy brain is the ICBM 2009 symmetric
template's grey- and white-matter probability maps (1 mm; nilearn's package data: the files
are read, nilearn is never imported), CSF where the template's brain holds neither. Each case
moves the brain by a random pose (a scale of 0.92-1.08 per axis, up to 6 degrees about each
axis, up to 4 mm of shift), and centres its tumour in deep white matter, which its oedema
then follows. The tumour, contrasts, bias field and noise are drawn as for the cartoon brain.

Like the cartoon brain, the anatomy does not depend on the grid: the pose and the tumour are
drawn in mm, the tumour centre among the template's own voxels.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from brats_unet.data.synthetic.anatomy import TISSUES, Tumour, shaped_tumour

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
_BG, _CSF, _GM, _WM = (TISSUES.index(t) for t in ("background", "csf", "grey_matter",
                                                    "white_matter"))
_DEEP_WM = 0.9        # white-matter probability of a voxel a tumour may be centred on
_FIT_MARGIN_MM = 4.0
_BRAINSTEM_MM = 25.0  # the lowest this many mm of the template do not count when it is fitted


def template_dir() -> Path:
    """Where the template's files are: ``BRATS_UNET_TEMPLATE_DIR``, else nilearn's package data."""
    if folder := os.environ.get("BRATS_UNET_TEMPLATE_DIR"):
        return Path(folder)
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "synthetic.anatomy: mni152 reads the MNI152 template from nilearn's package data, "
            "and nilearn is not installed: `BRATS_UNET_EXTRAS=anatomy bash bin/setup` (or set "
            "BRATS_UNET_TEMPLATE_DIR to a folder holding " + ", ".join(TEMPLATE_FILES.values())
            + ")")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


@functools.lru_cache(maxsize=1)
def load_template() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(brain, gm, wm, affine)``: the brain mask (bool), the grey- and white-matter
    probabilities (float32, 0-1) on the template's 1 mm grid, and its voxel-to-world affine."""
    folder = template_dir()
    images = {}
    for key, name in TEMPLATE_FILES.items():
        path = folder / name
        if not path.exists():
            raise FileNotFoundError(f"MNI152 template file missing: {path}")
        images[key] = nib.load(path)
    brain = np.asarray(images["t1"].dataobj) > 0
    gm, wm = (np.asarray(images[k].dataobj, np.float32) / 255.0 for k in ("gm", "wm"))
    return brain, gm, wm, images["t1"].affine


@functools.lru_cache(maxsize=1)
def _deep_white_matter() -> tuple[np.ndarray, np.ndarray]:
    """World positions (mm, N x 3) of the template's deep white-matter voxels, and their
    depth under the brain's surface (mm)."""
    brain, _, wm, affine = load_template()
    depth = ndimage.distance_transform_edt(brain)
    candidates = np.argwhere((wm >= _DEEP_WM) & brain)
    world = candidates @ affine[:3, :3].T + affine[:3, 3]
    return world, depth[tuple(candidates.T)]


@functools.lru_cache(maxsize=1)
def _brain_box_mm() -> tuple[np.ndarray, np.ndarray]:
    """Centre and half extent (world mm) of the template's brain above its lowest
    :data:`_BRAINSTEM_MM`: the brainstem may run out of a case's field of view, as in scans."""
    brain, _, _, affine = load_template()
    voxels = np.argwhere(brain)
    world = voxels @ affine[:3, :3].T + affine[:3, 3]
    world = world[world[:, 2] >= world[:, 2].min() + _BRAINSTEM_MM]
    low, high = world.min(axis=0), world.max(axis=0)
    return (low + high) / 2, (high - low) / 2


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """Rotation about the first, then second, then third axis by ``angles`` (radians)."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        a, b = [i for i in range(3) if i != axis]
        turn = np.eye(3)
        turn[a, a], turn[a, b], turn[b, a], turn[b, b] = c, -s, s, c
        matrix = matrix @ turn
    return matrix


def draw_pose(rng: np.random.Generator, field_of_view_mm: np.ndarray) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """``(linear, shift)``: template world mm = ``linear @ q + shift`` for ``q`` the case's
    world position relative to its volume centre (RAS mm). The brain is shrunk to fit a
    small field of view."""
    scale = rng.uniform(0.92, 1.08, size=3)
    angles = np.radians(rng.uniform(-6, 6, size=3))
    shift = rng.uniform(-4, 4, size=3)
    rotation = rotation_matrix(angles)
    centre, half = _brain_box_mm()
    # the posed brain's half extent in the case's axes: the rotated box, scaled, shifted
    to_case = np.abs(np.diag(scale) @ rotation.T)
    extent = to_case @ half + to_case @ np.abs(shift)
    fit = float(min(1.0, np.min((np.asarray(field_of_view_mm) / 2 - _FIT_MARGIN_MM) / extent)))
    # case mm -> template mm: undo the case's scale (and the fit), rotate
    linear = rotation @ np.diag(1.0 / (scale * fit))
    return linear, centre + shift


def draw_template_tumour(rng: np.random.Generator, pose: tuple[np.ndarray, np.ndarray], *,
                         no_et_probability: float) -> Tumour:
    """A tumour centred on a deep white-matter voxel of the template, at least about 0.7 core
    radii under the surface; its centre in the case's centred physical frame (mm, i j k)."""
    has_enhancing = bool(rng.random() >= no_et_probability)
    core = math.exp(rng.uniform(math.log(10.0), math.log(30.0)))
    rim = rng.uniform(2, 5)
    oedema = core + rng.uniform(3, 20)
    world, depth = _deep_white_matter()
    deep = depth >= min(0.7 * core, float(depth.max()))
    choice = world[deep][rng.integers(int(np.count_nonzero(deep)))]
    linear, shift = pose
    q = np.linalg.solve(linear, choice - shift)
    centre = q * np.array([-1.0, -1.0, 1.0])  # RAS -> the LPS voxel axes of brats_affine
    return shaped_tumour(rng, centre, core=core, rim=rim, oedema=oedema,
                         has_enhancing=has_enhancing)


def template_tissues(pose: tuple[np.ndarray, np.ndarray],
                     axes_mm: tuple[np.ndarray, ...]) -> np.ndarray:
    """Tissue map (uint8, ``TISSUES`` values) of the posed template on the grid whose centred
    physical coordinates along i, j, k are ``axes_mm``: background, CSF, grey or white matter,
    whichever of the brain's three is the most likely (trilinear in the template)."""
    brain, gm, wm, affine = load_template()
    linear, shift = pose
    to_voxel = np.linalg.inv(affine)
    # voxel of the template = to_voxel @ (linear @ F @ p + shift), F = diag(-1, -1, 1)
    matrix = to_voxel[:3, :3] @ linear @ np.diag([-1.0, -1.0, 1.0])
    offset = to_voxel[:3, :3] @ shift + to_voxel[:3, 3]
    shape = tuple(a.size for a in axes_mm)
    coords = np.empty((3, *shape), np.float32)
    for row in range(3):
        coords[row] = offset[row]
        for axis in range(3):
            view = [None, None, None]
            view[axis] = slice(None)
            coords[row] += np.float32(matrix[row, axis]) * axes_mm[axis].astype(np.float32)[
                tuple(view)]
    sample = functools.partial(ndimage.map_coordinates, coordinates=coords, order=1,
                               mode="constant", cval=0.0)
    inside = sample(brain.astype(np.float32)) >= 0.5
    p_gm, p_wm = sample(gm), sample(wm)
    p_csf = np.clip(1.0 - p_gm - p_wm, 0.0, None)
    tissue = np.full(shape, _BG, np.uint8)
    best = np.argmax(np.stack([p_csf, p_gm, p_wm]), axis=0).astype(np.uint8)
    tissue[inside] = np.array([_CSF, _GM, _WM], np.uint8)[best[inside]]
    return tissue
