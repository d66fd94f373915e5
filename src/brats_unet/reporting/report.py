"""The benchmark report: figures, data-driven discussion and one self-contained HTML file.

Every figure function is pure: it takes data frames or arrays and returns a
matplotlib :class:`~matplotlib.figure.Figure` (Agg back end, nothing shown);
:func:`build_report` saves the figures as PNG, closes them and embeds them as
base64 data URIs, so the HTML needs no network and no other file.

Inputs are the pipeline's own tables:

* ``per_case``: one row per model, subject and region (``results/per_case.csv``),
  with ``dice``, ``hd95_mm``, ``dice_slicewise``, ``volume_true_ml``,
  ``volume_pred_ml``, ``volume_error_ml`` (predicted - true, ml),
  ``components_pred``, ``largest_component_share_pred``, ``predict_seconds``...
* ``benchmark``: one row per model and region (``results/benchmark.csv``).
* ``comparison``: paired statistics per region and model pair
  (``results/comparison.csv``): ``mean_difference`` (a - b), bootstrap
  ``ci95_low``/``ci95_high`` and ``wilcoxon_p``.
* ``histories``: model -> per-epoch training history (``models/<m>.history.csv``).
* ``summaries``: model -> training summary (``models/<m>.json``).

Image arrays are in the file's voxel order ``(i, j, k)``; which axis is
sagittal, coronal or axial is read from the affine (:func:`plane_axes`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import importlib.metadata
import io
import platform
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from brats_unet.labels import REGIONS, to_canonical  # noqa: E402
from brats_unet.evaluation.metrics import HD95_ONE_EMPTY_MM  # noqa: E402
from brats_unet.data.qc import case_notes  # noqa: E402
from brats_unet.training.summary import TrainingSummary, read_training_summary  # noqa: E402

#: Models read as slice-by-slice (2D) and volumetric (3D) in the discussion.
TWO_D_MODELS: tuple[str, ...] = ("unet2d",)
THREE_D_MODELS: tuple[str, ...] = ("unet3d", "resunet3d")

#: Significance level of the paired tests.
ALPHA = 0.05
#: Below this many paired subjects the Wilcoxon test is called underpowered.
MIN_SUBJECTS_FOR_POWER = 6

#: RGB of each canonical label in the overlays (load_overlay_inputs maps a file's ET to 4).
LABEL_COLOURS: dict[int, tuple[float, float, float]] = {
    1: (0.90, 0.15, 0.15),
    2: (0.15, 0.80, 0.25),
    4: (1.00, 0.90, 0.10),
}
OVERLAY_ALPHA = 0.45

#: Packages whose versions go into the provenance.
PROVENANCE_PACKAGES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "scipy",
    "keras",
    "tensorflow",
    "torch",
    "nibabel",
    "matplotlib",
    "seaborn",
    "snakemake",
    "dvc",
    "brats-unet",
)

_EPS = 1e-12


# --------------------------------------------------------------------------- helpers


def _regions(per_case: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(per_case["region"].astype(str)))
    return [r for r in REGIONS if r in present] + sorted(r for r in present if r not in REGIONS)


def _models(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["model"].astype(str).unique())


def _panel_grid(n: int, width: float = 4.2, height: float = 3.8) -> tuple[Figure, list]:
    fig, axes = plt.subplots(1, max(n, 1), figsize=(width * max(n, 1), height), squeeze=False)
    return fig, list(axes[0])


def _identity_line(ax, values: Sequence[float]) -> None:
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 0.05
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", lw=1, ls="--", zorder=0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)


def _box_with_points(per_case: pd.DataFrame, column: str, ylabel: str, title: str) -> Figure:
    regions = _regions(per_case)
    models = _models(per_case)
    palette = dict(zip(models, sns.color_palette("colorblind", len(models)), strict=True))
    fig, axes = _panel_grid(len(regions))
    for ax, region in zip(axes, regions, strict=False):
        data = per_case[per_case["region"] == region]
        with warnings.catch_warnings():
            # seaborn 0.13 passes boxplot(vert=...), deprecated in matplotlib 3.11
            warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
            sns.boxplot(
                data=data, x="model", y=column, hue="model", order=models, hue_order=models,
                palette=palette, legend=False, showfliers=False, width=0.6, ax=ax,
                boxprops={"alpha": 0.6},
            )
        sns.stripplot(
            data=data, x="model", y=column, order=models, color="black", size=4,
            jitter=0.15, ax=ax,
        )
        ax.set_title(region)
        ax.set_xlabel("")
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- figures


def dice_by_model(per_case: pd.DataFrame) -> Figure:
    """Per-case Dice per model: box (quartiles) plus every case as a point; a panel per region."""
    return _box_with_points(per_case, "dice", "Dice (per case)", "Dice per model and region")


def hd95_by_model(per_case: pd.DataFrame) -> Figure:
    """Per-case HD95 (mm) per model, one panel per region; empty-mask cases sit at 373.13 mm."""
    return _box_with_points(per_case, "hd95_mm", "HD95 (mm)", "95th-percentile Hausdorff distance")


def _scatter_by_region(per_case: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str,
                       title: str) -> Figure:
    """``y`` against ``x`` coloured by model, one panel per region, identity dashed."""
    regions = _regions(per_case)
    models = _models(per_case)
    fig, axes = _panel_grid(len(regions))
    for ax, region in zip(axes, regions, strict=False):
        data = per_case[per_case["region"] == region]
        sns.scatterplot(
            data=data, x=x, y=y, hue="model", hue_order=models,
            style="model", style_order=models, palette="colorblind", s=45, ax=ax,
        )
        _identity_line(ax, list(data[x]) + list(data[y]))
        ax.set_title(region)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ax.get_legend() is not None and ax is not axes[-1]:
            ax.get_legend().remove()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def volume_agreement(per_case: pd.DataFrame) -> Figure:
    """Predicted against true volume (ml) by model, one panel per region; identity dashed."""
    return _scatter_by_region(per_case, "volume_true_ml", "volume_pred_ml", "true volume (ml)",
                              "predicted volume (ml)", "Volume agreement")


def bland_altman(per_case: pd.DataFrame, region: str = "WT") -> Figure:
    """Bland-Altman plot of volumes in ``region``, one panel per model.

    x: mean of true and predicted volume (ml); y: predicted - true (ml); solid
    line: mean bias; dashed: bias +- 1.96 sd (sample sd, ddof=1).
    """
    data = per_case[per_case["region"] == region]
    models = _models(per_case)
    fig, axes = _panel_grid(len(models))
    for ax, model in zip(axes, models, strict=False):
        rows = data[data["model"] == model]
        true = rows["volume_true_ml"].to_numpy(float)
        pred = rows["volume_pred_ml"].to_numpy(float)
        mean, diff = (true + pred) / 2.0, pred - true
        ax.scatter(mean, diff, s=30, color="C0")
        if diff.size:
            bias = float(np.mean(diff))
            sd = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0
            ax.axhline(bias, color="C3", lw=1.5, label=f"bias {bias:+.2f} ml")
            for sign in (-1, 1):
                ax.axhline(bias + sign * 1.96 * sd, color="C3", lw=1, ls="--")
            ax.legend(loc="best", fontsize="small")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_title(f"{model} ({region})")
        ax.set_xlabel("mean of true and predicted volume (ml)")
        ax.set_ylabel("predicted - true (ml)")
    fig.suptitle(f"Bland-Altman, {region} volume (bias and ±1.96 sd)")
    fig.tight_layout()
    return fig


def training_curves(histories: Mapping[str, pd.DataFrame]) -> Figure:
    """Two panels: training and validation loss per epoch; validation Dice per epoch.

    The validation Dice panel draws ``val_dice_mean`` solid and each
    ``val_dice_<region>`` thin and dotted, one colour per model.
    """
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(10, 3.8))
    for colour, model in zip(sns.color_palette("colorblind", len(histories)), sorted(histories),
                             strict=True):
        history = histories[model]
        epochs = history["epoch"] if "epoch" in history else np.arange(len(history))
        if "loss" in history:
            ax_loss.plot(epochs, history["loss"], color=colour, label=f"{model} train")
        if "val_loss" in history:
            ax_loss.plot(epochs, history["val_loss"], color=colour, ls="--", label=f"{model} val")
        if "val_dice_mean" in history:
            ax_dice.plot(epochs, history["val_dice_mean"], color=colour, lw=2,
                         label=f"{model} mean")
        for column in sorted(c for c in history.columns
                             if c.startswith("val_dice_") and c != "val_dice_mean"):
            ax_dice.plot(epochs, history[column], color=colour, lw=0.8, ls=":")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss (solid train, dashed validation)")
    ax_dice.set(xlabel="epoch", ylabel="validation Dice",
                title="Validation Dice (bold mean, dotted per region)")
    for ax in (ax_loss, ax_dice):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def slicewise_vs_case(per_case: pd.DataFrame) -> Figure:
    """Slice-wise Dice against per-case Dice, one panel per region, identity dashed."""
    return _scatter_by_region(per_case, "dice", "dice_slicewise", "per-case Dice",
                              "slice-wise Dice", "Slice-wise against per-case Dice")


def plane_axes(affine: np.ndarray | None) -> dict[str, int]:
    """Voxel axis normal to each plane: ``{"sagittal": i, "coronal": j, "axial": k}``.

    Read from ``nib.aff2axcodes(affine)``; without an affine the BraTS order
    (i, j, k) = (left-right, posterior-anterior, inferior-superior) is assumed.
    """
    codes = nib.aff2axcodes(affine) if affine is not None else ("R", "A", "S")
    axes = {}
    for axis, code in enumerate(codes[:3]):
        plane = {"L": "sagittal", "R": "sagittal", "A": "coronal", "P": "coronal",
                 "S": "axial", "I": "axial"}.get(code)
        if plane is not None:
            axes[plane] = axis
    if sorted(axes.values()) != [0, 1, 2]:
        return {"sagittal": 0, "coronal": 1, "axial": 2}
    return axes


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


def tumour_centre(truth: np.ndarray) -> tuple[int, ...]:
    """Voxel index of the centre of mass of the tumour (labels > 0); the array centre if empty."""
    index = np.argwhere(np.asarray(truth) > 0)
    if index.size == 0:
        return tuple(s // 2 for s in np.shape(truth))
    return tuple(int(round(c)) for c in index.mean(axis=0))


def overlays(
    flair: np.ndarray,
    truth: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    title: str = "",
    *,
    affine: np.ndarray | None = None,
) -> Figure:
    """Axial, coronal and sagittal slices through the tumour centre of ``truth``.

    Args:
        flair: FLAIR intensities, 3-D, in the file's voxel order (i, j, k).
        truth: reference labels (0, 1, 2, 4), same shape.
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
    for name, labels in [("truth", truth), *predictions.items()]:
        if np.shape(labels) != flair.shape:
            raise ValueError(f"{name} has shape {np.shape(labels)}, FLAIR {flair.shape}")
    codes = nib.aff2axcodes(affine) if affine is not None else ("R", "A", "S")
    axes_of = plane_axes(affine)
    # Voxel size per axis, so that anisotropic voxels are drawn to scale.
    spacing = (np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
               if affine is not None else np.ones(3))
    centre = tumour_centre(truth)
    finite = flair[np.isfinite(flair)]
    vmin, vmax = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
    rows = [("ground truth", np.asarray(truth))] + [
        (model, np.asarray(predictions[model])) for model in sorted(predictions)
    ]
    planes = ("axial", "coronal", "sagittal")
    fig, grid = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for r, (name, labels) in enumerate(rows):
        for c, plane in enumerate(planes):
            axis = axes_of[plane]
            remaining = tuple(a for a in range(3) if a != axis)
            index = [slice(None)] * 3
            index[axis] = centre[axis]
            ax = grid[r][c]
            background = _oriented(flair[tuple(index)], remaining, codes)
            vertical = _vertical_axis(remaining, codes)
            horizontal = remaining[1] if vertical == remaining[0] else remaining[0]
            aspect = float(spacing[vertical] / spacing[horizontal])
            ax.imshow(background, cmap="gray", vmin=vmin, vmax=vmax, origin="lower",
                      interpolation="nearest", aspect=aspect)
            ax.imshow(_label_rgba(_oriented(labels[tuple(index)], remaining, codes)),
                      origin="lower", interpolation="nearest", aspect=aspect)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{plane} ({'ijk'[axis]}={centre[axis]})")
            if c == 0:
                ax.set_ylabel(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- cases and text


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


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "not available"
    return f"{p:.3g}" if p >= 0.001 else "< 0.001"


def _pair_row(comparison: pd.DataFrame, region: str, best: str, other: str) -> dict | None:
    """The comparison row for (best, other) in ``region``, with signs as best - other."""
    rows = comparison[comparison["region"] == region]
    if "metric" in rows:
        rows = rows[rows["metric"] == "dice"]
    for a, b, sign in ((best, other, 1.0), (other, best, -1.0)):
        hit = rows[(rows["model_a"] == a) & (rows["model_b"] == b)]
        if not hit.empty:
            row = hit.iloc[0]
            low, high = sign * float(row["ci95_low"]), sign * float(row["ci95_high"])
            return {
                "difference": sign * float(row["mean_difference"]),
                "low": min(low, high),
                "high": max(low, high),
                "p": float(row["wilcoxon_p"]),
                "n": int(row["n_subjects"]) if "n_subjects" in row else None,
            }
    return None


def _best_model_paragraph(per_case: pd.DataFrame, comparison: pd.DataFrame, region: str) -> str:
    data = per_case[per_case["region"] == region]
    means = data.groupby("model")["dice"].mean()
    best = sorted(means.items(), key=lambda t: (-t[1], t[0]))[0][0]
    n = data[data["model"] == best]["subject"].nunique()
    sentences = [
        f"{region}: {best} had the highest mean Dice ({means[best]:.3f} over {n} test subjects; "
        + ", ".join(f"{m} {means[m]:.3f}" for m in sorted(means.index) if m != best)
        + ")."
    ]
    smallest_n = n
    for other in sorted(m for m in means.index if m != best):
        pair = _pair_row(comparison, region, best, other)
        if pair is None:
            sentences.append(f"No paired comparison of {best} with {other} is available.")
            continue
        wilcoxon_sig = pair["p"] < ALPHA
        ci_excludes = pair["low"] > 0 or pair["high"] < 0
        if wilcoxon_sig and ci_excludes:
            verdict = "significant by both criteria"
        elif wilcoxon_sig:
            verdict = ("significant by the Wilcoxon test but not by the bootstrap CI, "
                       "which includes 0")
        elif ci_excludes:
            verdict = ("not significant by the Wilcoxon test, although the bootstrap CI "
                       "excludes 0")
        else:
            verdict = "not significant by either criterion"
        sentences.append(
            f"Against {other} the mean paired difference was {pair['difference']:+.3f} "
            f"(95% bootstrap CI {pair['low']:+.3f} to {pair['high']:+.3f}, "
            f"{'excluding' if ci_excludes else 'including'} 0; Wilcoxon p = {_fmt_p(pair['p'])}, "
            f"{'<' if wilcoxon_sig else '≥'} {ALPHA}): {verdict}."
        )
        if pair["n"] is not None:
            smallest_n = min(smallest_n, pair["n"])
    if smallest_n < MIN_SUBJECTS_FOR_POWER:
        sentences.append(
            f"With only {smallest_n} paired test subjects the Wilcoxon signed-rank test has "
            f"little power: its smallest attainable two-sided p is {2.0 ** (1 - smallest_n):.3g}, "
            "so a non-significant result says little."
        )
    return " ".join(sentences)


def _slicewise_paragraph(per_case: pd.DataFrame, two_d_models: Sequence[str]) -> str | None:
    if "dice_slicewise" not in per_case:
        return None
    data = per_case.assign(gap=per_case["dice_slicewise"] - per_case["dice"]).dropna(subset=["gap"])
    if data.empty:
        return None

    def describe(gap: float) -> str:
        if abs(gap) < 5e-4:
            return f"about equal to per-case Dice (mean difference {gap:+.4f})"
        return (f"{'higher' if gap > 0 else 'lower'} than per-case Dice by {abs(gap):.3f} on "
                f"average (slice-wise - per-case = {gap:+.3f})")

    sentences = []
    for model in [m for m in two_d_models if m in set(data["model"])]:
        rows = data[data["model"] == model]
        per_region = rows.groupby("region")["gap"].mean()
        sentences.append(
            f"For the 2D model {model}, slice-wise Dice was {describe(float(rows['gap'].mean()))}; "
            "per region: "
            + ", ".join(f"{r} {per_region[r]:+.3f}" for r in _regions(rows)) + "."
        )
    by_model = data.groupby("model")["gap"].mean()
    sentences.append(
        f"Over all models and regions slice-wise Dice was {describe(float(data['gap'].mean()))}; "
        "per model: " + ", ".join(f"{m} {by_model[m]:+.3f}" for m in sorted(by_model.index)) + "."
    )
    lower = int((data["gap"] < 0).sum())
    sentences.append(
        f"It was below the per-case Dice in {lower} of {len(data)} model-case-region rows."
    )
    return " ".join(sentences)


def _paradox_paragraph(
    per_case: pd.DataFrame,
    two_d_models: Sequence[str],
    three_d_models: Sequence[str],
    region: str = "WT",
) -> str:
    needed = ("components_pred", "largest_component_share_pred", "volume_error_ml")
    data = per_case[per_case["region"] == region]
    two = data[data["model"].isin(two_d_models)]
    three = data[data["model"].isin(three_d_models)]
    claim = ("The 'Volume-Dice paradox' claim of slice-level studies is that 3D models give "
             "more connected and larger volumes than 2D ones.")
    if two.empty or three.empty or any(c not in data for c in needed):
        return (f"{claim} It cannot be tested on this run: it needs {region} rows of both a 2D "
                f"model ({', '.join(two_d_models)}) and a 3D model ({', '.join(three_d_models)}) "
                f"with {', '.join(needed)}.")
    m2 = {c: float(two[c].mean()) for c in needed}
    m3 = {c: float(three[c].mean()) for c in needed}
    fewer = m3["components_pred"] < m2["components_pred"] - _EPS
    more_components = m3["components_pred"] > m2["components_pred"] + _EPS
    higher_share = m3["largest_component_share_pred"] > m2["largest_component_share_pred"] + _EPS
    lower_share = m3["largest_component_share_pred"] < m2["largest_component_share_pred"] - _EPS
    connected = (fewer or higher_share) and not (more_components or lower_share)
    larger = m3["volume_error_ml"] > m2["volume_error_ml"] + _EPS
    names3 = "/".join(m for m in three_d_models if m in set(three["model"]))
    names2 = "/".join(m for m in two_d_models if m in set(two["model"]))
    numbers = (
        f"In {region}, the 3D models ({names3}) predicted on average "
        f"{m3['components_pred']:.2f} connected components against {m2['components_pred']:.2f} "
        f"for {names2}, a largest-component share of {m3['largest_component_share_pred']:.3f} "
        f"against {m2['largest_component_share_pred']:.3f}, and a mean signed volume error of "
        f"{m3['volume_error_ml']:+.2f} ml against {m2['volume_error_ml']:+.2f} ml "
        f"({three['subject'].nunique()} test subjects)."
    )
    parts = (
        f"3D predictions were {'more' if connected else 'not more'} connected and "
        f"{'larger' if larger else 'not larger'} than 2D ones."
    )
    if connected and larger:
        verdict = "The claim is supported by this run's data."
    else:
        failing = [p for p, ok in (("connectivity", connected), ("volume", larger)) if not ok]
        verdict = (f"The claim is not supported by this run's data (the {' and '.join(failing)} "
                   f"part{'s' if len(failing) > 1 else ''} did not hold).")
    return " ".join([claim, numbers, parts, verdict])


def discussion(
    per_case: pd.DataFrame,
    benchmark: pd.DataFrame | None,
    comparison: pd.DataFrame,
    *,
    two_d_models: Sequence[str] = TWO_D_MODELS,
    three_d_models: Sequence[str] = THREE_D_MODELS,
) -> list[str]:
    """Discussion paragraphs written from this run's numbers only.

    (a) best model per region by mean per-case Dice and the significance of
    its differences (Wilcoxon p < 0.05 and bootstrap CI excluding 0, both
    stated); (b) slice-wise against per-case Dice; (c) the Volume-Dice paradox
    claim tested on WT components, largest-component share and signed volume
    error of the 3D models against the 2D one.

    ``benchmark`` is accepted for symmetry with :func:`build_report`; the
    means are recomputed from ``per_case`` so that they match the paired tests.
    """
    del benchmark
    paragraphs = [_best_model_paragraph(per_case, comparison, r) for r in _regions(per_case)]
    slicewise = _slicewise_paragraph(per_case, two_d_models)
    if slicewise:
        paragraphs.append(slicewise)
    paragraphs.append(_paradox_paragraph(per_case, two_d_models, three_d_models))
    return paragraphs


# --------------------------------------------------------------------------- inputs


def load_overlay_inputs(
    subject: str,
    flair_path: str | Path,
    label_path: str | Path,
    prediction_paths: Mapping[str, str | Path],
    *,
    label_convention: str = "brats2020",
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read a subject's FLAIR, reference labels and each model's prediction.

    Arrays keep the file's voxel order (i, j, k); pass the FLAIR's affine to
    :func:`overlays`. Labels become int16; with ``label_convention="brats2023"``
    a label 3 (enhancing tumour) is mapped to the canonical 4.

    Returns:
        ``(flair, truth, predictions)`` with ``predictions`` model -> labels.
    """
    def labels_of(path: str | Path) -> np.ndarray:
        labels = np.rint(np.asanyarray(nib.load(str(path)).dataobj))
        return to_canonical(labels, label_convention).astype(np.int16)

    flair = np.asanyarray(nib.load(str(flair_path)).dataobj).astype(np.float32)
    truth = labels_of(label_path)
    predictions = {model: labels_of(path) for model, path in prediction_paths.items()}
    for name, labels in [("label", truth), *predictions.items()]:
        if labels.shape != flair.shape:
            raise ValueError(f"{subject}: {name} shape {labels.shape} != FLAIR {flair.shape}")
    return flair, truth, predictions


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(repo_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True,
                              text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def _dvc_md5s(lock: Path) -> str:
    """``stage  path  md5`` lines for every output and dependency hashed in a dvc.lock."""
    try:
        data = yaml.safe_load(lock.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        return f"unreadable dvc.lock: {error}"
    lines = []
    for stage, spec in sorted((data.get("stages") or {}).items()):
        for kind in ("deps", "outs"):
            for entry in (spec or {}).get(kind) or []:
                if isinstance(entry, dict) and "md5" in entry:
                    lines.append(f"{stage}  {kind[:-1]}  {entry.get('path', '?')}  {entry['md5']}")
    return "\n".join(lines) if lines else "dvc.lock has no md5s"


def provenance(config: Mapping[str, Any], repo_dir: Path | None) -> dict[str, str]:
    """What produced this report: date, Python, packages, platform, git and DVC state, config.

    Git is asked only when ``repo_dir`` holds a ``.git``; failures read "unknown".
    """
    info: dict[str, str] = {
        "date (UTC)": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine() or "unknown",
    }
    info.update({f"version {p}": _version(p) for p in PROVENANCE_PACKAGES})
    if repo_dir is not None and (Path(repo_dir) / ".git").exists():
        info["git revision"] = _git(Path(repo_dir), "rev-parse", "HEAD")
        status = _git(Path(repo_dir), "status", "--porcelain")
        info["git tree"] = "unknown" if status == "unknown" else ("dirty" if status else "clean")
    else:
        info["git revision"] = "unknown (not a git checkout)"
    lock = Path(repo_dir) / "dvc.lock" if repo_dir is not None else None
    info["dvc.lock md5s"] = _dvc_md5s(lock) if lock is not None and lock.exists() else "no dvc.lock"
    info["config"] = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False)
    return info


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left;vertical-align:top}
th{background:#eee}tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444}pre{margin:0;white-space:pre-wrap;font-size:0.85em}
"""

FIGURE_CAPTIONS: dict[str, str] = {
    "dice_by_model": "Per-case Dice per model and region: box = quartiles, points = test cases.",
    "hd95_by_model": "Per-case HD95 (mm) per model and region; a case with exactly one empty "
    "mask sits at 373.13 mm.",
    "volume_agreement": "Predicted against true volume (ml) per region; dashed: identity.",
    "bland_altman": "Bland-Altman plot of WT volume per model: x = mean of true and predicted "
    "volume, y = predicted - true; solid = mean bias, dashed = bias ± 1.96 sd.",
    "training_curves": "Training and validation loss, and validation Dice, per epoch.",
    "slicewise_vs_case": "Slice-wise Dice (axial slices, as slice-level studies report it) "
    "against per-case Dice; dashed: identity.",
}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value) if value is not None else "–"
    return "–" if not np.isfinite(number) else f"{number:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; ``rows`` hold already escaped / formatted cell HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png_base64(fig: Figure, path: Path) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = buffer.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


def _figure_html(name: str, fig: Figure, caption: str, figures_dir: Path) -> str:
    encoded = _png_base64(fig, figures_dir / f"{name}.png")
    return (f'<figure id="{_e(name)}"><img alt="{_e(name)}" '
            f'src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _hardware(summary: TrainingSummary | None) -> str:
    if summary is None:
        return "–"
    gpus, threads = summary.gpus, summary.cpu_threads
    cpu = f"CPU, {threads} thread{'s' if threads != 1 else ''}" if threads else "CPU"
    return f"{gpus} GPU{'s' if gpus != 1 else ''}" if gpus > 0 else cpu


def _machine_lines(summaries: Mapping[str, TrainingSummary]) -> list[str]:
    """Why each model trained on its back end, and on which CPU (as its summary records)."""
    lines = []
    for model in sorted(summaries):
        summary = summaries[model]
        if summary.backend_reason:
            lines.append(f"<li>{_e(model)} trained on {_e(summary.backend)}: "
                         f"{_e(summary.backend_reason)}</li>")
    cpus = sorted({s.cpu for s in summaries.values() if s.cpu})
    if cpus:
        lines.append(f"<li>Training CPU: {_e('; '.join(cpus))}</li>")
    return lines


def benchmark_rows(benchmark: pd.DataFrame, summaries: Mapping[str, TrainingSummary]) -> list:
    """Cells of the benchmark table, one row per model and region (already HTML)."""
    rows = []
    order = {r: i for i, r in enumerate(REGIONS)}
    frame = benchmark.assign(_r=benchmark["region"].map(lambda r: order.get(r, len(order))))
    for _, row in frame.sort_values(["model", "_r"]).iterrows():
        summary = summaries.get(str(row["model"]))

        def pick(column: str, key: str | None = None) -> Any:
            if column in row and pd.notna(row[column]):
                return row[column]
            return getattr(summary, key or column, None)

        training = pick("training_seconds", "training_seconds_total")
        rows.append([
            _e(row["model"]), _e(row["region"]), _e(pick("n_subjects") or "–"),
            f"{_num(row.get('dice_mean'))} ± {_num(row.get('dice_sd'))}",
            _num(row.get("dice_median")), _num(row.get("hd95_mm_mean"), 2),
            _num(row.get("volume_abs_error_ml_mean"), 2),
            _e(f"{int(pick('trainable_parameters')):,}") if pick("trainable_parameters") is not None
            else "–",
            _num(training, 0), _num(pick("predict_seconds_per_case"), 2),
            _e(pick("backend") or "–"), _e(pick("precision") or "–"), _e(_hardware(summary)),
        ])
    return rows


def build_report(
    *,
    per_case: pd.DataFrame,
    benchmark: pd.DataFrame,
    comparison: pd.DataFrame,
    qc: pd.DataFrame | None,
    histories: Mapping[str, pd.DataFrame],
    summaries: Mapping[str, TrainingSummary],
    overlays: Mapping[str, Figure] | None = None,
    provenance: Mapping[str, Any] | None = None,
    figures_dir: Path,
    figures: Mapping[str, Figure] | None = None,
    cases: Mapping[str, str] | None = None,
    title: str = "BraTS U-Net benchmark",
) -> str:
    """Save every figure as PNG under ``figures_dir`` and return one self-contained HTML page.

    Args:
        per_case, benchmark, comparison: the pipeline's tables (see module doc).
        qc: subject table with ``subject`` and ``status`` (``included`` or not),
            optionally ``file`` and ``problem``; None when there was no QC.
        histories: model -> per-epoch history.
        summaries: model -> training summary (``trainable_parameters``,
            ``training_seconds_total``, ``gpus``, ``backend``, ``precision``...).
        overlays: rank ("best", "median", "worst") -> overlay figure; saved
            as ``overlay_<rank>.png``.
        provenance: key -> value (strings, or anything YAML can dump).
        figures_dir: where the PNGs go (created).
        figures: name -> figure to use instead of the standard set built here.
        cases: rank -> subject, for the overlay captions (default: :func:`pick_cases`).
        title: page title.

    Returns:
        The HTML document; images as base64 data URIs, inline CSS, no scripts
        and no external links. All figures passed in or built are closed.
    """
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    if figures is None:
        figures = {
            "dice_by_model": dice_by_model(per_case),
            "hd95_by_model": hd95_by_model(per_case),
            "volume_agreement": volume_agreement(per_case),
            "bland_altman": bland_altman(per_case),
            "slicewise_vs_case": slicewise_vs_case(per_case),
        }
        if histories:
            figures["training_curves"] = training_curves(histories)
    overlays = dict(overlays or {})
    cases = dict(cases) if cases is not None else (pick_cases(per_case) if len(per_case) else {})

    models = _models(per_case)
    subjects = sorted(per_case["subject"].astype(str).unique())
    excluded = (qc[qc["status"].astype(str) != "included"] if qc is not None and "status" in qc
                else pd.DataFrame())
    backends = sorted({s.backend for s in summaries.values()})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<h2>Run summary</h2><ul>",
        f"<li>Models: {_e(', '.join(models))}</li>",
        f"<li>Test subjects: {len(subjects)} ({_e(', '.join(subjects))})</li>",
        f"<li>Regions: {_e(', '.join(_regions(per_case)))}</li>",
        f"<li>Back end(s): {_e(', '.join(backends) or 'not recorded')}</li>",
        *_machine_lines(summaries),
    ]
    if qc is not None:
        parts.append(f"<li>QC: {len(qc)} subjects checked, {len(excluded)} excluded, "
                     f"{len(case_notes(qc))} with a warning</li>")
    parts.append("</ul>")

    parts.append("<h2>Benchmark</h2>")
    parts.append("<p>Per-case metrics on the test subjects, summarised per model and region. "
                 "Training time is the total over all training runs (s); inference is the mean "
                 "prediction time per case (s).</p>")
    parts.append(_table(
        ["model", "region", "n", "Dice mean ± sd", "Dice median", "HD95 mean (mm)",
         "|volume error| mean (ml)", "trainable parameters", "training (s)",
         "inference (s/case)", "back end", "precision", "hardware"],
        benchmark_rows(benchmark, summaries),
    ))

    parts.append("<h2>Figures</h2>")
    for name, fig in figures.items():
        parts.append(_figure_html(name, fig, FIGURE_CAPTIONS.get(name, name), figures_dir))

    parts.append("<h2>Example cases</h2>")
    if not overlays:
        parts.append("<p>No overlays were made.</p>")
    for rank, fig in overlays.items():
        subject = cases.get(rank, "")
        caption = (f"{rank.capitalize()} case by mean WT Dice over models"
                   + (f": {subject}" if subject else "")
                   + ". Rows: ground truth and each model; columns: axial, coronal, sagittal "
                   "slices through the tumour centre. Red: necrosis/non-enhancing core (1), "
                   "green: oedema (2), yellow: enhancing tumour (4).")
        parts.append(_figure_html(f"overlay_{rank}", fig, caption, figures_dir))

    parts.append("<h2>Paired statistics</h2>")
    parts.append("<p>Paired over test subjects: mean difference (model a - model b), its 95% "
                 "bootstrap confidence interval, and the Wilcoxon signed-rank p; "
                 f"α = {ALPHA}.</p>")
    stat_rows = [
        [_e(r["region"]), _e(r.get("metric", "dice")), _e(r["model_a"]), _e(r["model_b"]),
         _e(r.get("n_subjects", "–")), _num(r["mean_difference"], 4),
         f"{_num(r['ci95_low'], 4)} to {_num(r['ci95_high'], 4)}", _num(r["wilcoxon_p"], 3)]
        for _, r in comparison.iterrows()
    ]
    parts.append(_table(["region", "metric", "model a", "model b", "n", "mean difference",
                         "95% CI", "Wilcoxon p"], stat_rows) if stat_rows else "<p>none</p>")

    parts.append("<h2>Quality control: excluded subjects</h2>")
    if excluded.empty:
        parts.append("<p>none</p>")
    else:
        wanted = ("subject", "status", "has_label", "file", "problem")
        columns = [c for c in wanted if c in excluded]
        parts.append(_table(columns, [
            [_e("" if pd.isna(r[c]) else r[c]) for c in columns] for _, r in excluded.iterrows()
        ]))
    notes = case_notes(qc) if qc is not None else []
    if notes:
        parts.append("<h2>Quality control: warnings (subjects included)</h2>")
        parts.append(_table(["subject", "warning"], [[_e(s), _e(n)] for s, n in notes]))

    parts.append("<h2>Conventions</h2><ul>")
    for item in (
        "Metrics are computed per case on the original image grid (predictions resampled back "
        "to the input geometry), per region: whole tumour WT = labels {1, 2, 4}, tumour core "
        "TC = {1, 4}, enhancing tumour ET = {4}.",
        "Dice: both masks empty -> 1; exactly one empty -> 0.",
        f"HD95 (mm): 95th percentile of the symmetric surface distances; both masks empty -> 0 mm; "
        f"exactly one empty -> {HD95_ONE_EMPTY_MM:.2f} mm (the diagonal of a 240 × 240 × 155 mm "
        "volume).",
        "Slice-wise Dice: the mean of per-slice Dice over the axial slices where truth or "
        "prediction is non-empty, as slice-level 2D studies report it; a small tumour slice "
        "weighs as much as a large one.",
        "Volumes (ml) are voxel counts times the voxel volume from the NIfTI pixdim; "
        "volume error = predicted - true.",
    ):
        parts.append(f"<li>{_e(item)}</li>")
    parts.append("</ul>")

    parts.append("<h2>Discussion</h2>")
    parts.append("<p><em>Every statement below is computed from this run's tables.</em></p>")
    parts.extend(f"<p>{_e(p)}</p>" for p in discussion(per_case, benchmark, comparison))

    parts.append("<h2>Provenance</h2>")
    prov_rows = []
    for key, value in (provenance or {}).items():
        text = value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False)
        cell = f"<pre>{_e(text)}</pre>" if "\n" in text.strip() else _e(text)
        prov_rows.append([_e(key), cell])
    parts.append(_table(["item", "value"], prov_rows) if prov_rows else "<p>not recorded</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(*, per_case, benchmark, comparison, qc, histories: Sequence, summaries: Sequence,
                 subjects: Sequence[str], flair: Sequence, labels: Sequence, predictions: Sequence,
                 config: Mapping[str, Any], repo_dir: Path | None, figures_dir: Path,
                 label_convention: str = "brats2020") -> str:
    """The report from the workflow's files: tables (CSV/TSV), model histories and summaries,
    and, for the overlays, each test subject's FLAIR, label map and predictions.

    ``flair`` and ``labels`` follow ``subjects``; ``predictions`` are
    ``results/predictions/<model>/<subject>.nii.gz`` paths. Returns the HTML.
    """
    per_case = pd.read_csv(per_case)
    models = _models(per_case)
    by_model = {Path(p).name.split(".")[0]: p for p in histories}
    history_frames = {m: pd.read_csv(by_model[m]) for m in models}
    records = {s.model: s for s in map(read_training_summary, summaries)}
    files = dict(zip(subjects, zip(flair, labels)))
    predicted = {(Path(p).parent.name, Path(p).name.split(".")[0]): p for p in predictions}
    cases = pick_cases(per_case)
    figures = {}
    for rank, subject in cases.items():
        flair_path, label_path = files[subject]
        image, truth, preds = load_overlay_inputs(
            subject, flair_path, label_path, {m: predicted[(m, subject)] for m in models},
            label_convention=label_convention)
        figures[rank] = overlays(image, truth, preds, f"{rank}: {subject}",
                                 affine=nib.load(flair_path).affine)
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    return build_report(
        per_case=per_case, benchmark=pd.read_csv(benchmark), comparison=pd.read_csv(comparison),
        qc=pd.read_csv(qc, sep="\t", keep_default_na=False), histories=history_frames,
        summaries=records, overlays=figures, provenance=provenance(config, repo_dir),
        figures_dir=Path(figures_dir), cases=cases)
