"""The report's figures: pure functions from the pipeline's tables to matplotlib figures.

Each takes data frames and returns a :class:`~matplotlib.figure.Figure` (Agg back end,
nothing shown); :mod:`brats_unet.reporting.page` saves and embeds them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from brats_unet.labels import ordered_regions  # noqa: E402

#: What each standard figure shows, under it in the report.
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


def regions_of(per_case: pd.DataFrame) -> list[str]:
    """The regions present, WT, TC, ET first, then any other by name."""
    return ordered_regions(per_case["region"])


def models_of(frame: pd.DataFrame) -> list[str]:
    """The models present, by name."""
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
    regions = regions_of(per_case)
    models = models_of(per_case)
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
    regions = regions_of(per_case)
    models = models_of(per_case)
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
    models = models_of(per_case)
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


def standard_figures(per_case: pd.DataFrame,
                     histories: Mapping[str, pd.DataFrame]) -> dict[str, Figure]:
    """The report's figures by name (the keys of :data:`FIGURE_CAPTIONS`); training curves
    only where there are histories."""
    figures = {
        "dice_by_model": dice_by_model(per_case),
        "hd95_by_model": hd95_by_model(per_case),
        "volume_agreement": volume_agreement(per_case),
        "bland_altman": bland_altman(per_case),
        "slicewise_vs_case": slicewise_vs_case(per_case),
    }
    if histories:
        figures["training_curves"] = training_curves(histories)
    return figures
