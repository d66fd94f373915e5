"""The synthetic brain, its tumour and their contrasts: random parameters in mm, then the grid.

Drawing (``draw_head``, ``draw_tumour``, ``draw_appearance``) uses no grid, so the same
draws give the same anatomy at every voxel size; ``brain_tissues``, ``add_tumour`` and
``render`` then evaluate it on a grid given as 1-D coordinate arrays in mm, axis order
``(i, j, k)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from brats_unet.labels import ENHANCING, NECROSIS, OEDEMA

#: Tissue classes of the (private) tissue map; the index is the class value.
TISSUES: tuple[str, ...] = (
    "background", "csf", "grey_matter", "white_matter",
    "oedema", "non_enhancing", "necrosis", "enhancing",
)
_BG, _CSF, _GM, _WM, _ED, _NET, _NCR, _ET = range(len(TISSUES))

#: Mean intensity of each tissue (``TISSUES`` order) per contrast, before the
#: per-case scale. Chosen to follow the usual appearance: oedema bright on FLAIR
#: and T2, enhancing rim bright on T1ce, necrosis dark on T1/T1ce and bright on
#: T2, CSF dark on FLAIR/T1 and bright on T2, WM > GM on T1 and GM > WM on T2/FLAIR.
#: Background stays 0 (skull-stripped).
RELATIVE_INTENSITY: dict[str, tuple[float, ...]] = {
    "flair": (0.0, 0.25, 0.75, 0.60, 1.20, 0.95, 0.55, 0.85),
    "t1":    (0.0, 0.25, 0.65, 0.85, 0.55, 0.50, 0.30, 0.60),
    "t1ce":  (0.0, 0.25, 0.65, 0.85, 0.55, 0.50, 0.30, 1.30),
    "t2":    (0.0, 1.30, 0.65, 0.45, 0.95, 0.85, 1.10, 0.80),
}

_FIT_MARGIN_MM = 4.0          # gap kept between the brain and the edge of the field of view
_PARTIAL_VOLUME_SIGMA_MM = 0.7
_BIAS_LENGTH_MM = 120.0       # bias-field coordinates are mm / this, so |u| < 1 over the brain
_BIAS_MAX_LOG = math.log(1.2)  # bias stays within about +-20 %


# --- smooth random fields -------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Field:
    """Smooth random field (unit variance) in mm: Gaussian bumps of width ``spacing_mm``
    on a regular grid of nodes centred at ``centre_mm``, with N(0, 1) weights."""

    centre_mm: np.ndarray
    spacing_mm: float
    coeffs: np.ndarray

    def nodes(self, axis: int) -> np.ndarray:
        m = self.coeffs.shape[axis]
        return self.centre_mm[axis] + self.spacing_mm * (np.arange(m) - (m - 1) / 2)


def _draw_field(rng: np.random.Generator, *, centre_mm: np.ndarray, half_extent_mm: np.ndarray,
                spacing_mm: float) -> _Field:
    # The number of nodes depends only on mm sizes, never on the grid, so the
    # draws (and the anatomy) are the same at every resolution.
    counts = tuple(int(math.ceil(2 * h / spacing_mm)) + 3 for h in half_extent_mm)
    return _Field(np.asarray(centre_mm, float), float(spacing_mm), rng.standard_normal(counts))


def _axis_weights(coords_mm: np.ndarray, nodes_mm: np.ndarray, width_mm: float) -> np.ndarray:
    w = np.exp(-0.5 * ((coords_mm[:, None] - nodes_mm[None, :]) / width_mm) ** 2)
    # Unit row norm makes the field's variance 1 everywhere, also near the grid's edge.
    norm = np.sqrt((w * w).sum(axis=1, keepdims=True))
    return (w / np.maximum(norm, 1e-300)).astype(np.float32)


def _evaluate(field: _Field, axes_mm: tuple[np.ndarray, ...]) -> np.ndarray:
    """The field on the grid spanned by the 1-D coordinate arrays ``axes_mm`` (mm); float32."""
    wx, wy, wz = (_axis_weights(a, field.nodes(d), field.spacing_mm) for d, a in enumerate(axes_mm))
    # Separable: three small matrix products instead of a sum over nodes per voxel.
    t = np.tensordot(wx, field.coeffs.astype(np.float32), axes=(1, 0))  # (nx, my, mz)
    t = np.tensordot(t, wy, axes=(1, 1))                                # (nx, mz, ny)
    return np.tensordot(t, wz, axes=(1, 1))                             # (nx, ny, nz)


def _box(axes_mm: tuple[np.ndarray, ...], centre_mm: np.ndarray,
         half_mm: np.ndarray) -> tuple[slice, slice, slice]:
    """Index ranges of the voxels within ``half_mm`` of ``centre_mm`` along each increasing axis."""
    return tuple(
        slice(int(np.searchsorted(a, c - h, side="left")),
              int(np.searchsorted(a, c + h, side="right")))
        for a, c, h in zip(axes_mm, centre_mm, half_mm)
    )


def _squared_distance(axes_mm: tuple[np.ndarray, ...], centre_mm: np.ndarray | tuple,
                      semi_axes_mm: np.ndarray | tuple = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Sum over axes of ((x - centre) / semi_axis)^2 on the grid, by broadcasting (float32)."""
    x, y, z = (((a - c) / s).astype(np.float32) ** 2
               for a, c, s in zip(axes_mm, centre_mm, semi_axes_mm))
    return x[:, None, None] + y[None, :, None] + z[None, None, :]


# --- random parameters (no grid involved) ----------------------------------------------

@dataclass(frozen=True, eq=False)
class Head:
    """The healthy brain's parameters, in mm."""

    offset_mm: np.ndarray          # brain centre relative to the volume centre
    semi_axes_mm: np.ndarray       # brain ellipsoid (LR, AP, SI)
    surface_amplitude: float       # relative radial bump of the brain surface
    surface: _Field
    csf_rim_mm: float
    cortex_mm: float               # thinnest cortex
    fold_mm: float                 # amplitude of the cortex-thickness wave (folds)
    folds: _Field
    ventricles: tuple[tuple[np.ndarray, np.ndarray], ...]  # (centre, semi-axes), mm


@dataclass(frozen=True, eq=False)
class Tumour:
    """The glioma's parameters, in mm in the brain frame."""

    centre_mm: np.ndarray
    core_radius_mm: float
    rim_mm: float                  # mean enhancing rim thickness
    rim_amplitude: float           # relative variation of the rim thickness
    oedema_radius_mm: float
    core_amplitude: float          # relative radial irregularity of the core
    oedema_amplitude: float
    core_shape: _Field
    oedema_shape: _Field
    rim_shape: _Field
    has_enhancing: bool

    @property
    def reach_mm(self) -> float:
        """No tumour voxel lies further than this from the centre."""
        return max(self.core_radius_mm * (1 + self.core_amplitude),
                   self.oedema_radius_mm * (1 + self.oedema_amplitude))


@dataclass(frozen=True, eq=False)
class Appearance:
    """One contrast's intensities, bias field and noise level for one case."""

    intensities: np.ndarray        # per tissue, relative
    scale: float                   # arbitrary scanner units per relative unit
    bias: np.ndarray               # log-bias polynomial: x, y, z, x2, y2, z2, xy, xz, yz
    noise_fraction: float          # noise sigma / scale


def draw_head(rng: np.random.Generator) -> Head:
    """Brain size, surface, cortex folds and ventricles, drawn from ``rng``."""
    semi = np.array([rng.uniform(62, 70), rng.uniform(76, 84), rng.uniform(56, 64)])
    offset = rng.uniform(-2, 2, size=3)
    amplitude = rng.uniform(0.03, 0.06)
    surface = _draw_field(rng, centre_mm=np.zeros(3), half_extent_mm=semi * 1.1, spacing_mm=28.0)
    csf_rim = rng.uniform(1.0, 2.0)
    cortex = rng.uniform(2.0, 3.0)
    fold = rng.uniform(4.0, 6.0)
    folds = _draw_field(rng, centre_mm=np.zeros(3), half_extent_mm=semi * 1.1, spacing_mm=4.5)
    half_width = rng.uniform(4, 8)
    lateral = half_width + rng.uniform(1, 4)
    y0, z0 = rng.uniform(-6, 6), rng.uniform(6, 16)
    ventricles = tuple(
        (np.array([side * lateral, y0, z0]),
         np.array([half_width, rng.uniform(18, 28), rng.uniform(7, 12)]))
        for side in (-1.0, 1.0)
    )
    return Head(offset_mm=offset, semi_axes_mm=semi, surface_amplitude=amplitude, surface=surface,
                csf_rim_mm=csf_rim, cortex_mm=cortex, fold_mm=fold, folds=folds,
                ventricles=ventricles)


def draw_tumour(rng: np.random.Generator, head: Head, *, no_et_probability: float) -> Tumour:
    """A tumour inside ``head``, drawn from ``rng``; without enhancing part with probability
    ``no_et_probability``."""
    has_enhancing = bool(rng.random() >= no_et_probability)
    # Log-uniform radius: small tumours as common as large ones, volumes like BraTS
    # (whole tumour about 10-400 ml, median near 100 ml).
    core = math.exp(rng.uniform(math.log(10.0), math.log(35.0)))
    rim = rng.uniform(2, 5)
    oedema = core + rng.uniform(3, 20)
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    # Mostly supratentorial: not too far down.
    direction[2] = max(direction[2], -0.4)
    direction /= np.linalg.norm(direction)
    to_surface = 1 / np.sqrt(np.sum((direction / head.semi_axes_mm) ** 2))
    # Keep the centre at least about 0.7 core radii under the surface.
    deepest = max(0.2, 1 - 0.7 * core / to_surface)
    centre = direction * to_surface * rng.uniform(0.15, deepest)
    return shaped_tumour(rng, centre, core=core, rim=rim, oedema=oedema,
                         has_enhancing=has_enhancing)


def shaped_tumour(rng: np.random.Generator, centre: np.ndarray, *, core: float, rim: float,
                  oedema: float, has_enhancing: bool) -> Tumour:
    """A tumour of the given centre and radii (mm), its irregular outlines drawn from ``rng``."""
    core_amp, oedema_amp = rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.4)
    rim_amp = rng.uniform(0.3, 0.6)
    core_half = np.full(3, core * (1 + core_amp))
    core_shape = _draw_field(rng, centre_mm=centre, half_extent_mm=core_half,
                             spacing_mm=max(0.45 * core, 6.0))
    oedema_shape = _draw_field(rng, centre_mm=centre, spacing_mm=12.0,
                               half_extent_mm=np.full(3, oedema * (1 + oedema_amp)))
    rim_shape = _draw_field(rng, centre_mm=centre, half_extent_mm=core_half, spacing_mm=8.0)
    return Tumour(centre_mm=centre, core_radius_mm=core, rim_mm=rim, rim_amplitude=rim_amp,
                  oedema_radius_mm=oedema, core_amplitude=core_amp, oedema_amplitude=oedema_amp,
                  core_shape=core_shape, oedema_shape=oedema_shape, rim_shape=rim_shape,
                  has_enhancing=has_enhancing)


def scaled_tumour(tumour: Tumour, volume_factor: float) -> Tumour:
    """``tumour`` grown (factor > 1) or shrunk about its centre so that its unclipped volume
    scales by ``volume_factor``: every radius, the rim and the outlines' random fields scale
    by its cube root. (The labelled volume follows it up to the clipping by brain and white
    matter and to the grid; a case's true volumes are always counted from its labels.)"""
    if volume_factor <= 0:
        raise ValueError(f"volume_factor must be > 0, got {volume_factor}")
    g = float(volume_factor) ** (1 / 3)

    def grown(field: _Field) -> _Field:
        # nodes at centre + g (node - centre), bumps g times wider: field(centre + (p - c) / g)
        centre = tumour.centre_mm + g * (field.centre_mm - tumour.centre_mm)
        return _Field(centre, field.spacing_mm * g, field.coeffs)

    return replace(tumour, core_radius_mm=tumour.core_radius_mm * g, rim_mm=tumour.rim_mm * g,
                   oedema_radius_mm=tumour.oedema_radius_mm * g,
                   core_shape=grown(tumour.core_shape), oedema_shape=grown(tumour.oedema_shape),
                   rim_shape=grown(tumour.rim_shape))


def draw_appearance(rng: np.random.Generator, contrast: str) -> Appearance:
    """``contrast``'s look in one case (a key of ``RELATIVE_INTENSITY``), drawn from ``rng``."""
    base = np.asarray(RELATIVE_INTENSITY[contrast], float)
    intensities = base * rng.uniform(0.95, 1.05, size=base.size)  # small per-case variation
    raw = rng.uniform(-1, 1, size=9)
    bias = raw / np.abs(raw).sum() * rng.uniform(0.3, 1.0) * _BIAS_MAX_LOG
    return Appearance(intensities=intensities, scale=rng.uniform(300, 3000), bias=bias,
                      noise_fraction=rng.uniform(0.015, 0.04))


# --- rendering -------------------------------------------------------------------------

def fit_scale(head: Head, field_of_view_mm: np.ndarray) -> float:
    """Uniform shrink factor (<= 1) that keeps the brain inside the field of view."""
    extent = np.abs(head.offset_mm) + head.semi_axes_mm * (1 + head.surface_amplitude)
    room = field_of_view_mm / 2 - _FIT_MARGIN_MM
    return float(min(1.0, np.min(room / extent)))


def brain_tissues(head: Head, axes_mm: tuple[np.ndarray, ...]) -> np.ndarray:
    """Tissue map (uint8, ``TISSUES`` values) of the healthy brain.

    ``axes_mm``: voxel coordinates along each axis in the brain frame (mm).
    """
    rho2 = _squared_distance(axes_mm, (0, 0, 0), head.semi_axes_mm)
    r2 = _squared_distance(axes_mm, (0, 0, 0))
    rho = np.sqrt(rho2)
    # Distance along the ray from the centre to the ellipsoid surface; r / rho depends
    # only on direction. The centre voxel gets the shortest semi-axis.
    to_ellipsoid = np.full(rho.shape, head.semi_axes_mm.min(), np.float32)
    np.divide(np.sqrt(r2), rho, out=to_ellipsoid, where=rho2 > 0)
    surface = 1 + head.surface_amplitude * np.tanh(_evaluate(head.surface, axes_mm))
    depth_mm = (surface - rho) * to_ellipsoid
    # |field| has sharp minima: narrow ribbons between broad tongues of grey matter,
    # which reads as gyri and sulci once blurred.
    cortex_mm = head.cortex_mm + head.fold_mm * np.abs(_evaluate(head.folds, axes_mm))

    tissue = np.where(depth_mm < head.csf_rim_mm + cortex_mm, np.uint8(_GM), np.uint8(_WM))
    tissue[depth_mm < head.csf_rim_mm] = _CSF
    tissue[depth_mm <= 0] = _BG
    for centre, semi in head.ventricles:
        box = _box(axes_mm, centre, semi)
        inside = _squared_distance(tuple(a[b] for a, b in zip(axes_mm, box)), centre, semi) <= 1
        view = tissue[box]
        view[inside & (view != _BG)] = _CSF
    return tissue


def add_tumour(tissue: np.ndarray, tumour: Tumour, axes_mm: tuple[np.ndarray, ...]) -> np.ndarray:
    """Write the tumour into ``tissue`` (in place) and return the BraTS 2020 label map (uint8)."""
    label = np.zeros(tissue.shape, np.uint8)
    box = _box(axes_mm, tumour.centre_mm, np.full(3, tumour.reach_mm))
    sub_axes = tuple(a[b] for a, b in zip(axes_mm, box))
    distance = np.sqrt(_squared_distance(sub_axes, tumour.centre_mm))
    # Radius perturbed by a smooth field: an irregular, roughly star-shaped blob.
    core_r = distance / (1 + tumour.core_amplitude
                         * np.tanh(_evaluate(tumour.core_shape, sub_axes)))
    oedema_r = distance / (1 + tumour.oedema_amplitude
                           * np.tanh(_evaluate(tumour.oedema_shape, sub_axes)))
    sub_tissue, sub_label = tissue[box], label[box]
    brain = sub_tissue != _BG
    core = (core_r < tumour.core_radius_mm) & brain
    if not core.any():
        # A grid too coarse for the core: keep WT non-empty with the nearest brain voxel.
        if not brain.any():
            raise ValueError("grid too coarse: no brain voxel near the tumour")
        core.flat[np.argmin(np.where(brain, distance, np.inf))] = True
    # Oedema spreads through white matter and spares cortex and ventricles.
    oedema = (oedema_r < tumour.oedema_radius_mm) & (sub_tissue == _WM) & ~core
    sub_tissue[oedema] = _ED
    sub_label[oedema] = OEDEMA
    if tumour.has_enhancing:
        rim_mm = tumour.rim_mm * (1 + tumour.rim_amplitude
                                  * np.tanh(_evaluate(tumour.rim_shape, sub_axes)))
        enhancing = core & (core_r >= tumour.core_radius_mm - rim_mm)
        if not enhancing.any():
            enhancing.flat[np.argmax(np.where(core, core_r, -np.inf))] = True
        necrosis = core & ~enhancing
        sub_tissue[necrosis], sub_label[necrosis] = _NCR, NECROSIS
        sub_tissue[enhancing], sub_label[enhancing] = _ET, ENHANCING
    else:
        sub_tissue[core], sub_label[core] = _NET, NECROSIS
    return label


def _log_bias(coeffs: np.ndarray, axes_mm: tuple[np.ndarray, ...]) -> np.ndarray:
    """Quadratic polynomial in ``axes_mm / _BIAS_LENGTH_MM`` on the grid (float32)."""
    x, y, z = (a.astype(np.float32) / _BIAS_LENGTH_MM for a in axes_mm)
    cx, cy, cz, cxx, cyy, czz, cxy, cxz, cyz = coeffs.astype(np.float32)
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
    # Grouped into three partial-grid terms so the full grid is touched only twice.
    return (cx * x + cy * y + cxx * x * x + cyy * y * y + cxy * x * y) \
        + (cz * z + czz * z * z + cxz * x * z) + cyz * y * z


def render(tissue: np.ndarray, brain: np.ndarray, look: Appearance, noise: np.ndarray, *,
           axes_mm: tuple[np.ndarray, ...], spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """One contrast (int16): tissue means, partial-volume blur, bias, Rician noise, skull-stripped.

    ``noise``: (2, number of brain voxels) standard normal draws.
    """
    clean = look.intensities.astype(np.float32)[tissue]
    sigma_vox = [_PARTIAL_VOLUME_SIGMA_MM / s for s in spacing_mm]
    blurred = ndimage.gaussian_filter(clean, sigma=sigma_vox, mode="constant")
    bias = np.exp(_log_bias(look.bias, axes_mm)[brain])
    signal = blurred[brain] * bias * np.float32(look.scale)
    sigma = np.float32(look.noise_fraction * look.scale)
    # Magnitude of a complex signal with Gaussian noise in both channels.
    magnitude = np.hypot(signal + sigma * noise[0], sigma * noise[1])
    out = np.zeros(tissue.shape, np.int16)
    out[brain] = np.clip(np.rint(magnitude), 1, np.iinfo(np.int16).max)
    return out
