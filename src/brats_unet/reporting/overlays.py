"""Three-plane overlays of example cases: FLAIR with the reference and each model's labels.

Image arrays stay in the file's voxel order ``(i, j, k)``; which axis is sagittal, coronal
or axial, and which way is up, is read from the affine (:mod:`brats_unet.voxels`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from brats_unet.labels import RESECTION_CAVITY, to_canonical, tumour_mask  # noqa: E402
from brats_unet.voxels import axis_codes, plane_axes  # noqa: E402

#: RGB of each canonical label in the overlays (load_overlay_inputs maps a file's ET to 4).
LABEL_COLOURS: dict[int, tuple[float, float, float]] = {
    1: (0.90, 0.15, 0.15),
    2: (0.15, 0.80, 0.25),
    4: (1.00, 0.90, 0.10),
    RESECTION_CAVITY: (0.20, 0.45, 1.00),
}
OVERLAY_ALPHA = 0.45
PLANES = ("axial", "coronal", "sagittal")


def _oriented(slice2d: np.ndarray, remaining: tuple[int, int], codes: Sequence[str]) -> np.ndarray:
    """Arrange a slice as (rows = up-down, columns = left-right) for ``origin="lower"``.

    The vertical axis is the superior one when present, else anterior; it is
    flipped so that superior / anterior is up.
    """
    vertical = _vertical_axis(remaining, codes)
    image = slice2d if vertical == remaining[0] else slice2d.T
    if codes[vertical] in ("I", "P"):
        image = image[::-1, :]
    return image


def _vertical_axis(remaining: tuple[int, int], codes: Sequence[str]) -> int:
    """Of the two in-plane voxel axes, the one drawn vertically (superior, else anterior)."""
    rank = {"S": 0, "I": 0, "A": 1, "P": 1, "L": 2, "R": 2}
    first, second = remaining
    return first if rank.get(codes[first], 2) <= rank.get(codes[second], 2) else second


def _label_rgba(labels: np.ndarray) -> np.ndarray:
    rgba = np.zeros(labels.shape + (4,), dtype=float)
    for value, colour in LABEL_COLOURS.items():
        mask = labels == value
        rgba[mask, :3] = colour
        rgba[mask, 3] = OVERLAY_ALPHA
    return rgba


def tumour_centre_of_mass(truth: np.ndarray) -> tuple[int, ...]:
    """Voxel index of the centre of mass of the tumour (WT: no cavity); the array centre if none."""
    index = np.argwhere(tumour_mask(np.asarray(truth)))
    if index.size == 0:
        return tuple(s // 2 for s in np.shape(truth))
    return tuple(int(round(c)) for c in index.mean(axis=0))


def _draw_panel(ax, flair: np.ndarray, labels: np.ndarray, *, axis: int, centre: int,
                codes: Sequence[str], spacing: np.ndarray, window: tuple[float, float]) -> None:
    """One plane of one row: the FLAIR slice through ``centre`` along ``axis``, labels on top,
    drawn to scale with superior (else anterior) up."""
    remaining = tuple(a for a in range(3) if a != axis)
    index = [slice(None)] * 3
    index[axis] = centre
    vertical = _vertical_axis(remaining, codes)
    horizontal = remaining[1] if vertical == remaining[0] else remaining[0]
    aspect = float(spacing[vertical] / spacing[horizontal])
    ax.imshow(_oriented(flair[tuple(index)], remaining, codes), cmap="gray", vmin=window[0],
              vmax=window[1], origin="lower", interpolation="nearest", aspect=aspect)
    ax.imshow(_label_rgba(_oriented(labels[tuple(index)], remaining, codes)),
              origin="lower", interpolation="nearest", aspect=aspect)
    ax.set_xticks([])
    ax.set_yticks([])


def overlay_figure(
    flair: np.ndarray,
    truth: np.ndarray | None,
    predictions: Mapping[str, np.ndarray],
    title: str = "",
    *,
    affine: np.ndarray | None = None,
) -> Figure:
    """Axial, coronal and sagittal slices through the tumour centre of ``truth`` (without
    truth: of the first model's prediction by name).

    Args:
        flair: FLAIR intensities, 3-D, in the file's voxel order (i, j, k).
        truth: reference labels (0, 1, 2, 4), same shape; None: no ground-truth row.
        predictions: model -> predicted labels, same shape.
        title: figure title (for example the subject and its rank).
        affine: the image's voxel-to-world affine; it says which voxel axis is
            axial, coronal and sagittal. Without it, (i, j, k) = (sagittal,
            coronal, axial) normals as in BraTS.

    Returns:
        A figure with rows = ground truth then each model (sorted by name) and
        columns = axial, coronal, sagittal: FLAIR in grey, labels 1 red,
        2 green, 4 yellow, semi-transparent.
    """
    flair = np.asarray(flair, dtype=float)
    reference = [("ground truth", np.asarray(truth))] if truth is not None else []
    for name, labels in [*reference, *predictions.items()]:
        if np.shape(labels) != flair.shape:
            raise ValueError(f"{name} has shape {np.shape(labels)}, FLAIR {flair.shape}")
    codes, axes_of = axis_codes(affine), plane_axes(affine)
    # Voxel size per axis, so that anisotropic voxels are drawn to scale.
    spacing = (np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
               if affine is not None else np.ones(3))
    centre = tumour_centre_of_mass(truth if truth is not None
                                   else predictions[sorted(predictions)[0]])
    finite = flair[np.isfinite(flair)]
    window = tuple(np.percentile(finite, [0.5, 99.5])) if finite.size else (0.0, 1.0)
    rows = reference + [(model, np.asarray(predictions[model])) for model in sorted(predictions)]
    fig, grid = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for r, (name, labels) in enumerate(rows):
        for c, plane in enumerate(PLANES):
            axis = axes_of[plane]
            _draw_panel(grid[r][c], flair, labels, axis=axis, centre=centre[axis], codes=codes,
                        spacing=spacing, window=window)
            if r == 0:
                grid[r][c].set_title(f"{plane} ({'ijk'[axis]}={centre[axis]})")
            if c == 0:
                grid[r][c].set_ylabel(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def pick_cases(per_case: pd.DataFrame, region: str = "WT") -> dict[str, str]:
    """Best, median and worst subject by the mean over models of the per-case Dice in ``region``.

    The median case is the one whose mean Dice is closest to the median of the
    subjects' means. Every tie is broken by subject name (alphabetically first).
    """
    data = per_case[per_case["region"] == region]
    if data.empty:
        raise ValueError(f"no rows for region {region!r}")
    mean = {str(s): float(d) for s, d in data.groupby("subject")["dice"].mean().items()}
    middle = float(np.median(list(mean.values())))
    return {
        "best": min(mean, key=lambda s: (-mean[s], s)),
        "median": min(mean, key=lambda s: (abs(mean[s] - middle), s)),
        "worst": min(mean, key=lambda s: (mean[s], s)),
    }


def load_overlay_inputs(
    subject: str,
    flair_path: str | Path,
    label_path: str | Path | None,
    prediction_paths: Mapping[str, str | Path],
    *,
    label_convention: str = "brats2020",
    flair_channel: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read a subject's FLAIR, reference labels and each model's prediction.

    Arrays keep the file's voxel order (i, j, k); pass the FLAIR's affine to
    :func:`overlay_figure`. Labels become canonical int16 (``label_convention``: the
    dataset's values, for example ``"brats2023"``'s enhancing tumour 3 becomes 4).
    ``flair_channel``: the FLAIR's channel where ``flair_path`` is a 4D image of every
    contrast (the Decathlon's layout).

    Returns:
        ``(flair, truth, predictions)`` with ``predictions`` model -> labels (``truth`` None
        without ``label_path``).
    """
    def labels_of(path: str | Path) -> np.ndarray:
        labels = np.rint(np.asanyarray(nib.load(str(path)).dataobj))
        return to_canonical(labels, label_convention).astype(np.int16)

    image = nib.load(str(flair_path))
    flair = np.asanyarray(image.dataobj if flair_channel is None
                          else image.dataobj[..., flair_channel]).astype(np.float32)
    truth = labels_of(label_path) if label_path is not None else None
    predictions = {model: labels_of(path) for model, path in prediction_paths.items()}
    for name, labels in [*([("label", truth)] if truth is not None else []),
                         *predictions.items()]:
        if labels.shape != flair.shape:
            raise ValueError(f"{subject}: {name} shape {labels.shape} != FLAIR {flair.shape}")
    return flair, truth, predictions
