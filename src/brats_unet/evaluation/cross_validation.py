"""The tables of a run's predictors: which rows head the benchmark, the out-of-fold statistics, the
fold ensemble's gain.

Every test subject is predicted by each of a model's predictors: the model itself (one split),
or each fold's model and the fold ensemble (k-fold, :mod:`brats_unet.data.split`). One
predictor per model heads the report, the paired tests and ``per_case.csv``, under the
model's own name: the model of a single split, the fold ensemble of a k-fold run (what one
would deploy); the folds' own test rows go to ``fold_test.csv``. The out-of-fold cases, every
non-test labelled subject predicted once by the fold that never trained on it, give the
statistics on all cross-validated cases (their checkpoint was chosen on them, as in nnU-Net's
cross-validation: slightly optimistic, which the test set's own table keeps in check).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from brats_unet.data.split import ENSEMBLE, architecture_of
from brats_unet.labels import region_rank


def headline_predictor(model: str, predictors: list[str]) -> str:
    """The predictor that stands for ``model``: its fold ensemble where there is one."""
    ensemble = f"{model}.{ENSEMBLE}"
    return ensemble if ensemble in predictors else model


def predictor_rank(predictor: str) -> int:
    """The headline predictor (the model, or its fold ensemble) first, then the folds in order."""
    if ".fold" in predictor:
        return 1 + int(predictor.rsplit(".fold", 1)[1])
    return 0


def split_test_rows(per_case: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(headline, folds)`` of the test rows of every predictor (``model`` holds the
    predictor's name): the headline rows under the model's name, with a ``predictor`` column;
    the k-fold members' rows, with ``predictor`` and ``fold``."""
    rows = per_case.rename(columns={"model": "predictor"})
    rows.insert(0, "model", rows["predictor"].map(architecture_of))
    present = list(rows["predictor"].unique())
    headline = {headline_predictor(m, present) for m in rows["model"].unique()}
    is_headline = rows["predictor"].isin(headline)
    folds = rows[~is_headline].copy()
    folds.insert(2, "fold", folds["predictor"].str.rsplit(".fold", n=1).str[1].astype(int))
    return rows[is_headline].reset_index(drop=True), folds.reset_index(drop=True)


def _figures(group: pd.DataFrame) -> dict[str, float]:
    return {"n_cases": int(group["subject"].nunique()),
            "dice_mean": float(group["dice"].mean()), "dice_sd": float(group["dice"].std()),
            "hd95_mm_mean": float(group["hd95_mm"].mean()),
            "hd95_mm_sd": float(group["hd95_mm"].std()),
            "volume_abs_error_ml_mean": float(group["volume_abs_error_ml"].mean())}


def out_of_fold_table(calibration_cases: pd.DataFrame) -> pd.DataFrame:
    """Per model and region: Dice and HD95 over all out-of-fold (or validation) cases
    (``fold`` = ``all``), and each fold's own mean (``fold`` = its number)."""
    rows = []
    for (model, region), group in calibration_cases.groupby(["model", "region"], sort=False):
        cases = group["cases"].iloc[0]
        rows.append({"model": model, "region": region, "fold": "all", "cases": cases,
                     **_figures(group)})
        for fold, part in group.groupby("fold"):
            rows.append({"model": model, "region": region, "fold": str(fold), "cases": cases,
                         **_figures(part)})
    table = pd.DataFrame(rows, columns=["model", "region", "fold", "cases", "n_cases",
                                        "dice_mean", "dice_sd", "hd95_mm_mean", "hd95_mm_sd",
                                        "volume_abs_error_ml_mean"])
    return table.sort_values(["model", "region"], kind="stable",
                             key=lambda s: s.map(region_rank) if s.name == "region" else s
                             ).reset_index(drop=True)


def ensemble_gain(benchmark: pd.DataFrame) -> pd.DataFrame:
    """Per model and region of a k-fold run: the fold ensemble's mean test Dice and HD95 against
    the mean over its folds' models (``gain``: ensemble minus folds; Dice up and HD95 down are
    gains). Empty without k-fold."""
    rows = []
    for (model, region), group in benchmark.groupby(["model", "region"], sort=False):
        ensemble = group[group["predictor"] == f"{model}.{ENSEMBLE}"]
        folds = group[group["predictor"].str.contains(".fold", regex=False)]
        if ensemble.empty or folds.empty:
            continue
        rows.append({"model": model, "region": region, "n_folds": len(folds),
                     "dice_ensemble": float(ensemble["dice_mean"].iloc[0]),
                     "dice_folds_mean": float(folds["dice_mean"].mean()),
                     "dice_folds_min": float(folds["dice_mean"].min()),
                     "dice_folds_max": float(folds["dice_mean"].max()),
                     "hd95_mm_ensemble": float(ensemble["hd95_mm_mean"].iloc[0]),
                     "hd95_mm_folds_mean": float(folds["hd95_mm_mean"].mean())})
    table = pd.DataFrame(rows, columns=["model", "region", "n_folds", "dice_ensemble",
                                        "dice_folds_mean", "dice_folds_min", "dice_folds_max",
                                        "hd95_mm_ensemble", "hd95_mm_folds_mean"])
    table["dice_gain"] = table["dice_ensemble"] - table["dice_folds_mean"]
    table["hd95_mm_gain"] = table["hd95_mm_folds_mean"] - table["hd95_mm_ensemble"]
    return table


def summary_value(summaries: dict, predictor: str, key: str):
    """A training-summary figure of a predictor: a member's own; a fold ensemble's from its
    members (parameters and training seconds summed, validation Dice averaged, the best epoch
    undefined, back end and precision those of its first fold)."""
    if predictor in summaries:
        return getattr(summaries[predictor], key)
    model = architecture_of(predictor)
    members = [s for name, s in summaries.items() if architecture_of(name) == model]
    if not members:
        raise KeyError(f"no training summary of {predictor}")
    values = [getattr(s, key) for s in members]
    if key in ("trainable_parameters", "training_seconds_total"):
        return sum(values)
    if key == "best_val_dice_mean":
        return float(np.mean(values))
    if key == "best_epoch":
        return np.nan
    return values[0]
