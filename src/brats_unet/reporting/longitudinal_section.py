"""The report's longitudinal section: each followed patient's change between two scans."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from brats_unet.evaluation.intervals import wilson_interval
from brats_unet.evaluation.longitudinal import CHANGE_REGIONS
from brats_unet.reporting.overlays import load_overlay_inputs, overlay_figure
from brats_unet.reporting.page import escape, figure, number, table

#: ratios drawn on a log axis between these (an unbounded bar ends at the top)
RATIO_AXIS = (0.05, 20.0)


def _interval(value, low, high, digits: int = 1) -> str:
    return f"{number(value, digits)} [{number(low, digits)}, {_upper(high, digits)}]"


def _upper(high, digits: int) -> str:
    return "∞" if isinstance(high, float) and math.isinf(high) else number(high, digits)


def _rows(measured: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in measured.itertuples():
        truth = "–"
        if "true_ratio" in measured and not pd.isna(getattr(r, "true_ratio", np.nan)):
            inside = "inside" if r.change_covered else "outside"
            truth = f"{number(r.true_ratio, 2)} ({inside})"
        rows.append([escape(r.model), escape(r.patient), escape(r.region),
                     _interval(r.volume_before_ml, r.volume_before_low_ml, r.volume_before_high_ml),
                     _interval(r.volume_after_ml, r.volume_after_low_ml, r.volume_after_high_ml),
                     _interval(r.change_ml, r.change_low_ml, r.change_high_ml),
                     _interval(r.ratio, r.ratio_low, r.ratio_high, 2), truth,
                     f"<b>{escape(r.call)}</b>"])
    return rows


def change_figure(measured: pd.DataFrame, progression: float, response: float) -> Figure:
    """Per region: each patient's volume ratio (follow-up over baseline) with its interval,
    against the response band (below) and the progression band (above); the true ratio as a
    cross where the scans have labels. One colour per model."""
    regions = [r for r in CHANGE_REGIONS if r in set(measured["region"])]
    models = sorted(measured["model"].astype(str).unique())
    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    fig, axes = plt.subplots(1, len(regions), figsize=(3.6 * len(regions), 3.8), squeeze=False,
                             sharey=True)
    low_axis, high_axis = RATIO_AXIS
    for ax, region in zip(axes[0], regions):
        data = measured[measured["region"] == region]
        patients = sorted(data["patient"].unique())
        ax.axhspan(low_axis, response, color="tab:green", alpha=0.12, lw=0)
        ax.axhspan(progression, high_axis, color="tab:red", alpha=0.12, lw=0)
        for offset, model in zip(np.linspace(-0.2, 0.2, len(models)), models):
            rows = data[data["model"] == model]
            x = rows["patient"].map({p: i for i, p in enumerate(patients)}).to_numpy() + offset
            clip = lambda v: np.clip(np.nan_to_num(v.to_numpy(float), nan=np.nan,  # noqa: E731
                                                   posinf=high_axis), low_axis, high_axis)
            ax.vlines(x, clip(rows["ratio_low"]), clip(rows["ratio_high"]), color=palette[model],
                      lw=2, label=model)
            ax.plot(x, clip(rows["ratio"]), "_", color=palette[model], ms=9)
            if "true_ratio" in rows:
                ax.plot(x, clip(rows["true_ratio"]), "x", color="black", ms=5)
        ax.set_yscale("log")
        ax.set(ylim=RATIO_AXIS, title=region, xlabel="patient")
        ax.set_xticks(range(len(patients)))
        ax.set_xticklabels(patients, rotation=45, ha="right", fontsize="small")
    axes[0][0].set_ylabel("volume ratio, follow-up / baseline")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def scan_overlays(change: pd.DataFrame, scans, *, label_convention: str = "brats2020",
                  flair_channel: int | None = None) -> dict[str, Figure]:
    """``<patient>_<baseline|follow_up>`` -> three-plane overlay of that scan: its FLAIR with
    its labels (where it has them) and each model's segmentation. ``scans``: subject ->
    ``(flair path, label path or None, {model: segmentation path})``."""
    figures = {}
    for pair in change.drop_duplicates("patient").itertuples():
        for role in ("baseline", "follow_up"):
            subject = getattr(pair, role)
            if subject not in scans:
                continue
            flair_path, label_path, predictions = scans[subject]
            image, truth, preds = load_overlay_inputs(
                subject, flair_path, label_path, predictions, label_convention=label_convention,
                flair_channel=flair_channel)
            figures[f"{pair.patient}_{role}"] = overlay_figure(
                image, truth, preds, f"{pair.patient}, {role.replace('_', '-')}: {subject}",
                affine=nib.load(str(flair_path)).affine)
    return figures


def longitudinal_section(change: pd.DataFrame, figures_dir: Path,
                         overlays: dict[str, Figure] | None = None) -> list[str]:
    """HTML parts of the section from ``results/longitudinal.csv``, with :func:`scan_overlays`'
    figures."""
    parts = ["<h2>Longitudinal change</h2>"]
    if change.empty:
        return parts + ["<p>No pairs of scans to compare.</p>"]
    measured = change[change["status"].str.startswith("measured")]
    not_measured = change[~change["status"].str.startswith("measured")]
    if len(not_measured):
        parts.append("<p>Not measured: " + "; ".join(
            escape(f"{r.model} {r.patient}: {r.status}") for r in not_measured.itertuples())
            + ".</p>")
    if measured.empty:
        return parts
    first = measured.iloc[0]
    progression, response = float(first["progression_ratio"]), float(first["response_ratio"])
    coverage = first.get("coverage", np.nan)
    parts.append(
        "<p>Each followed patient's two scans, segmented by each model's headline predictor, "
        "their volumes counted with each scan's own voxel size (no registration). Each scan's "
        f"volume interval is the split-conformal one at {number(first.get('per_scan_coverage'), 3)}"
        " coverage, calibrated on the cases of the volume intervals; by the union bound both "
        f"true volumes are inside at once with probability at least {number(coverage, 2)}, and "
        "then the change lies in [after low - before high, after high - before low] and the "
        "ratio in [after low / before high, after high / before low]. Calls: "
        f"<b>progression</b> when the ratio's whole interval is above {progression:g} "
        f"(+{(progression - 1):.0%} in volume), <b>response</b> when it is below {response:g} "
        f"({(response - 1):.0%}), <b>stable</b> inside both, else <b>indeterminate</b>. The "
        "defaults are the volumetric equivalents of RANO's +25 % / -50 % in the product of two "
        "diameters (for a sphere). A measurement aid, not a clinical response assessment; "
        "complete response is never called from volume alone.</p>")
    parts.append(table(["model", "patient", "region", "baseline ml [interval]",
                        "follow-up ml [interval]", "change ml [interval]", "ratio [interval]",
                        "true ratio (change interval)", "call"], _rows(measured)))
    if "change_covered" in measured and measured["change_covered"].notna().any():
        known = measured.dropna(subset=["change_covered"])
        inside = int(known["change_covered"].astype(bool).sum())
        low, high = wilson_interval(inside, len(known))
        parts.append(f"<p>Where both scans have labels: the change interval holds the true "
                     f"change in {inside} of {len(known)} ({inside / len(known):.0%}; 95% CI "
                     f"{low:.0%}-{high:.0%}) against a nominal {number(coverage, 2)}.</p>")
    parts.append(figure("longitudinal_change", change_figure(measured, progression, response),
                        "Volume ratio (follow-up / baseline) with its interval per patient and "
                        "region; shaded: the response (green) and progression (red) bands; x: "
                        "the true ratio where the scans have labels.", figures_dir))
    for name, fig in (overlays or {}).items():
        parts.append(figure(f"longitudinal_{name}", fig,
                            "Axial, coronal and sagittal slices through the tumour of one scan: "
                            "its labels (where it has them) and each model's segmentation.",
                            figures_dir))
    return parts
