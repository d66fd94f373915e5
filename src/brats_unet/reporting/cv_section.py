"""The report's section on cross-validation and volume intervals: the out-of-fold statistics, the
paired comparison on all cross-validated cases, the fold ensemble's gain, and each test case's
volume with its calibrated interval against the true volume, with the empirical coverage."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from brats_unet.evaluation.comparison import underpowered
from brats_unet.evaluation.intervals import rules_for
from brats_unet.labels import ordered_regions
from brats_unet.reporting.page import escape, figure, number, table


def _mean_sd(mean, sd, digits: int = 3) -> str:
    return f"{number(mean, digits)} ± {number(sd, digits)}"


def _fold_rows(cross_validation: pd.DataFrame) -> list[list[str]]:
    return [[escape(r.model), escape(r.region), escape(r.fold), escape(r.n_cases),
             _mean_sd(r.dice_mean, r.dice_sd), _mean_sd(r.hd95_mm_mean, r.hd95_mm_sd, 2),
             number(r.volume_abs_error_ml_mean, 2)] for r in cross_validation.itertuples()]


def _comparison_rows(comparison: pd.DataFrame) -> list[list[str]]:
    return [[escape(r.region), escape(f"{r.model_a} - {r.model_b}"), escape(r.n_subjects),
             number(r.mean_difference), f"[{number(r.ci95_low)}, {number(r.ci95_high)}]",
             number(r.wilcoxon_p) + (" (underpowered)" if underpowered(r.n_subjects) else "")]
            for r in comparison.itertuples()]


def _gain_rows(gain: pd.DataFrame) -> list[list[str]]:
    return [[escape(r.model), escape(r.region), escape(r.n_folds), number(r.dice_ensemble),
             f"{number(r.dice_folds_mean)} [{number(r.dice_folds_min)}, "
             f"{number(r.dice_folds_max)}]", number(r.dice_gain),
             number(r.hd95_mm_ensemble, 2), number(r.hd95_mm_folds_mean, 2),
             number(r.hd95_mm_gain, 2)] for r in gain.itertuples()]


def _calibration_rows(calibration: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in calibration.itertuples():
        if not math.isfinite(r.quantile):
            rule = (f"unbounded: {r.n_cases} cases cannot give {r.coverage:.0%} (needs "
                    f"{needed_cases(r.coverage)})")
        elif r.nonconformity == "absolute":
            rule = f"predicted ± {r.quantile:.2f} ml"
        else:
            rule = f"predicted ± {r.quantile:.3f} × (predicted + {r.floor_ml:g} ml)"
        rows.append([escape(r.model), escape(r.region), escape(f"{r.n_cases} {r.cases}"),
                     escape(r.nonconformity), escape(rule)])
    return rows


def needed_cases(coverage: float) -> int:
    """The fewest calibration cases for which a split-conformal interval of ``coverage`` is
    finite: ``ceil((n + 1) coverage) <= n``."""
    n = 1
    while math.ceil((n + 1) * coverage - 1e-12) > n:
        n += 1
    return n


def _coverage_rows(coverage: pd.DataFrame, nominal: float) -> list[list[str]]:
    return [[escape(r.predictor), escape(r.region), escape(r.n_cases), f"{nominal:.0%}",
             f"{r.coverage_empirical:.0%} ({r.covered}/{r.n_cases}; 95% CI "
             f"{r.coverage_low:.0%}-{r.coverage_high:.0%})",
             number(r.width_ml_mean, 2), number(r.width_ml_median, 2)]
            for r in coverage.itertuples()]


def interval_figure(per_case: pd.DataFrame) -> Figure:
    """Per region: every test case's predicted volume with its interval (bars) against its true
    volume (black dot), cases ordered by true volume, one colour per model."""
    regions = ordered_regions(per_case["region"])
    models = sorted(per_case["model"].astype(str).unique())
    fig, axes = plt.subplots(1, len(regions), figsize=(4.6 * len(regions), 3.8), squeeze=False)
    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    for ax, region in zip(axes[0], regions):
        data = per_case[per_case["region"] == region]
        order = (data.groupby("subject")["volume_true_ml"].first().sort_values().index.tolist())
        position = {s: i for i, s in enumerate(order)}
        finite = data[["volume_true_ml", "volume_pred_ml", "volume_pred_high_ml"]].to_numpy(float)
        finite = finite[np.isfinite(finite)]
        cap = 1.15 * float(finite.max()) if finite.size else 1.0  # where unbounded bars end
        for offset, model in zip(np.linspace(-0.25, 0.25, len(models)), models):
            rows = data[data["model"] == model]
            x = rows["subject"].map(position).to_numpy() + offset
            high = rows["volume_pred_high_ml"].to_numpy(float)
            top = np.where(np.isfinite(high), high, cap)
            ax.vlines(x, rows["volume_pred_low_ml"], top, color=palette[model], lw=2,
                      label=model)
            ax.plot(x, rows["volume_pred_ml"], "_", color=palette[model], ms=8)
        truth = data.groupby("subject")["volume_true_ml"].first()
        ax.plot([position[s] for s in truth.index], truth.to_numpy(), "o", color="black",
                ms=4, label="true")
        ax.set(xlabel="test case (by true volume)", ylabel="volume (ml)", title=region)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([])
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def cv_section(*, per_case: pd.DataFrame, cross_validation: pd.DataFrame,
               cv_comparison: pd.DataFrame, gain: pd.DataFrame, calibration: pd.DataFrame,
               coverage: pd.DataFrame, n_folds: int, figures_dir: Path) -> list[str]:
    """HTML parts of the section; the tables are the run's CSVs of the same names."""
    k_fold = n_folds >= 2
    calibration = rules_for(calibration, "volume")  # the change's per-scan rules: its section
    nominal = float(calibration["coverage"].iloc[0]) if len(calibration) else math.nan
    cases = "out-of-fold" if k_fold else "validation"
    parts = ["<h2>Cross-validation, fold ensembles and volume intervals</h2>"]
    if k_fold:
        parts.append(
            f"<p>{n_folds}-fold cross-validation on the non-test subjects: each fold's model "
            "trained on the other folds and chose its checkpoint on its own fold, which it then "
            "predicted (out of fold: every non-test labelled subject exactly once). The "
            "checkpoint was chosen on those same cases, as in nnU-Net's cross-validation, so the "
            "out-of-fold figures lean optimistic; the test set, which no fold saw, keeps its "
            "own table. The test subjects are predicted by every fold and by the fold ensemble "
            "(the mean of the folds' region probabilities, then the same thresholds), which "
            "heads the benchmark table and the comparisons above.</p>")
    else:
        parts.append(
            "<p>One split (no k-fold): the figures below come from the validation subjects, "
            "on which the checkpoint was chosen; they are few, and the volume intervals rest "
            "on them. <code>split.n_folds: 5</code> (config/presets/kfold.yaml) gives "
            "out-of-fold figures on every non-test case.</p>")
    parts.append(table(["model", "region", "fold", "n", "Dice mean ± sd", "HD95 mean ± sd (mm)",
                        "|volume error| mean (ml)"], _fold_rows(cross_validation)))
    if len(cv_comparison):
        parts += [f"<h3>Paired model comparison on the {escape(cases)} cases (legacy Dice)</h3>",
                  table(["region", "difference", "n", "mean", "bootstrap 95% CI",
                         "Wilcoxon p"], _comparison_rows(cv_comparison))]
    if len(gain):
        parts += ["<h3>The fold ensemble against its folds (test set)</h3>",
                  table(["model", "region", "folds", "ensemble Dice",
                         "folds' Dice mean [min, max]", "Dice gain", "ensemble HD95 (mm)",
                         "folds' HD95 mean (mm)", "HD95 gain (mm)"], _gain_rows(gain))]
    parts += [
        "<h3>Volume intervals</h3>",
        f"<p>Every predicted volume has a split-conformal prediction interval for the true "
        f"volume at {nominal:.0%} nominal coverage, calibrated on the {escape(cases)} cases "
        "of its model: the nonconformity score is the absolute volume error (ml) or the error "
        "relative to the predicted volume plus a floor, whichever gives the narrower intervals "
        "on the calibration cases; the guarantee holds for a new case exchangeable with them. "
        "The intervals of the fold models and of the fold ensemble use the same "
        "calibration (the folds' own out-of-fold errors). Below: the rules, then the test "
        "set's empirical coverage (with its Wilson 95% interval: a handful of cases says "
        "little) and the mean width.</p>",
        table(["model", "region", "calibration cases", "score", "interval"],
              _calibration_rows(calibration)),
        table(["predictor", "region", "test cases", "nominal", "empirical coverage",
               "mean width (ml)", "median width (ml)"], _coverage_rows(coverage, nominal)),
        figure("volume_intervals", interval_figure(per_case),
               "Each test case's predicted volume (tick) and interval (bar) against its true "
               "volume (black dot), per region; bars reaching the top are unbounded.",
               figures_dir),
    ]
    return parts
