"""How much a patient's tumour changed between two scans, with intervals, and the call.

Each scan's volumes come from its own segmentation and header (pixdim): the two scans may
differ in voxel size, shape and head position, and no registration is needed for the numbers.
Regions: WT, TC, ET and the necrotic core (NCR, label 1).

**Intervals (the method).** Each scan's volume gets its split-conformal interval
(:mod:`.intervals`) at coverage ``1 - (1 - c) / 2``, calibrated on the same cases as the volume
intervals (the ``change`` rules of ``results/volume_calibration.csv``). By the union bound both
true volumes then lie inside their intervals at once with probability at least ``c``, and when
they do the true change lies in ``[low_after - high_before, high_after - low_before]`` and the
true ratio in ``[low_after / high_before, high_after / low_before]`` (unbounded above where
``low_before`` is 0). Nothing is assumed about how the two scans' errors relate; errors of
one model on one patient are likely alike, which makes the intervals conservative.

**Calls.** *progression* when the ratio's whole interval lies above ``progression_ratio``,
*response* when it lies below ``response_ratio``, *stable* when it lies inside both, else
*indeterminate* (it straddles a threshold, or is undefined: no tumour in either interval).
The default thresholds are the volumetric equivalents of RANO's bidimensional criteria for a
sphere (volume ratio = product ratio ^ 1.5): +25 % in the product of two diameters is
``1.25 ** 1.5 = 1.40`` (+40 % volume), -50 % is ``0.5 ** 1.5 = 0.35`` (-65 %). A measurement
aid, not a clinical response assessment: RANO also weighs new lesions, non-enhancing disease,
steroids and clinical status. Complete response is never called from volume alone: a
follow-up segmented empty is *response* at most.

Written here: the interval arithmetic and the calls are a few lines on top of the intervals.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brats_unet.data.validation import read_label_map
from brats_unet.evaluation.intervals import VolumeCalibration, per_scan_coverage, rule_of
from brats_unet.evaluation.volumetry import tissue_volumes_ml

CALLS = ("progression", "response", "stable", "indeterminate")
#: The first columns of every row of :func:`change_table`.
PAIR_KEYS = ["model", "patient", "baseline", "follow_up", "factor_nominal"]
#: The regions a change is reported for, in this order.
CHANGE_REGIONS = ("WT", "TC", "ET", "NCR")


@dataclass(frozen=True)
class ChangeThresholds:
    """Volume ratios (follow-up over baseline) beyond which a change is called; defaults: the
    volumetric equivalents of RANO's +25 % and -50 % in the product of two diameters."""

    progression_ratio: float = 1.40
    response_ratio: float = 0.35

    def __post_init__(self):
        if not 0 < self.response_ratio < 1 < self.progression_ratio:
            raise ValueError(f"need 0 < response_ratio < 1 < progression_ratio, got "
                             f"{self.response_ratio} and {self.progression_ratio}")


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; infinite for a positive over 0, NaN for 0 over 0."""
    if denominator > 0:
        return numerator / denominator
    return math.inf if numerator > 0 else math.nan


def call(ratio_low: float, ratio_high: float, thresholds: ChangeThresholds) -> str:
    """The call for a ratio interval (module docstring); NaN bounds are indeterminate."""
    if ratio_low > thresholds.progression_ratio:
        return "progression"
    if ratio_high < thresholds.response_ratio:
        return "response"
    if thresholds.response_ratio <= ratio_low and ratio_high <= thresholds.progression_ratio:
        return "stable"
    return "indeterminate"


def volume_change(before_ml: float, after_ml: float, rule: VolumeCalibration,
                  thresholds: ChangeThresholds = ChangeThresholds()) -> dict[str, float | str]:
    """One region's change between two scans: both volumes with their intervals from ``rule``
    (a per-scan rule: :func:`~.intervals.per_scan_coverage`), the change in ml and the ratio
    with their intervals, and the call."""
    (low_b,), (high_b,) = rule.interval([before_ml])
    (low_a,), (high_a,) = rule.interval([after_ml])
    ratio_low, ratio_high = _ratio(low_a, high_b), _ratio(high_a, low_b)
    return {
        "volume_before_ml": before_ml, "volume_before_low_ml": low_b,
        "volume_before_high_ml": high_b,
        "volume_after_ml": after_ml, "volume_after_low_ml": low_a, "volume_after_high_ml": high_a,
        "change_ml": after_ml - before_ml, "change_low_ml": low_a - high_b,
        "change_high_ml": high_a - low_b,
        "ratio": _ratio(after_ml, before_ml), "ratio_low": ratio_low, "ratio_high": ratio_high,
        "call": call(ratio_low, ratio_high, thresholds),
    }


def change_coverage(rule_coverage: float) -> float:
    """The change's coverage from its per-scan rules' (the inverse of ``per_scan_coverage``)."""
    return round(1 - 2 * (1 - rule_coverage), 9)


def file_volumes(subject: str, label_map: str | os.PathLike | None, *,
                 label_convention: str = "brats2020") -> dict[str, float]:
    """Each region's volume (ml) of a label map or segmentation file, from its own header; {}
    for no file."""
    if label_map is None:
        return {}
    labels, geometry = read_label_map(subject, label_map, label_convention=label_convention)
    return tissue_volumes_ml(labels, geometry.pixdim)


def volume_rows(model: str, subject: str, predicted: dict[str, float],
                truth: dict[str, float]) -> list[dict]:
    """The rows of :func:`change_table`'s ``volumes`` for one scan from its predicted and true
    volumes by region (``truth`` empty: an unlabelled scan)."""
    return [{"model": model, "subject": subject, "region": region, "volume_pred_ml": ml,
             "volume_true_ml": truth.get(region, np.nan)} for region, ml in predicted.items()]


def _truth(row: dict, before_true: float, after_true: float) -> dict:
    change = after_true - before_true
    ratio = _ratio(after_true, before_true)
    return {"true_before_ml": before_true, "true_after_ml": after_true, "true_change_ml": change,
            "true_ratio": ratio,
            "change_covered": bool(row["change_low_ml"] <= change <= row["change_high_ml"]),
            "ratio_covered": (bool(row["ratio_low"] <= ratio <= row["ratio_high"])
                              if not math.isnan(ratio) else None)}


def change_table(pairs: pd.DataFrame, volumes: pd.DataFrame, calibration: pd.DataFrame, *,
                 thresholds: ChangeThresholds = ChangeThresholds(),
                 models: list[str] | None = None) -> pd.DataFrame:
    """One row per model, patient and region (:data:`CHANGE_REGIONS`).

    ``pairs``: ``patient``, ``baseline``, ``follow_up`` (subjects), optionally ``factor`` (a
    synthetic pair's known volume factor). ``volumes``: ``model``, ``subject``, ``region``,
    ``volume_pred_ml`` and, where the scan has labels, ``volume_true_ml``. ``calibration``:
    the ``change`` rules of the models (``purpose == "change"``). A pair whose scans are not
    both in ``volumes`` gets a row per model with ``status`` saying which is missing; with
    labels on both scans, the true change and whether the intervals cover it. ``models``:
    the models to report (default: those in ``volumes``), so that a model with no scan
    segmented still gets its pairs' "not measured" rows.
    """
    rules = {(r["model"], r["region"]): r for _, r in calibration.iterrows()}
    by_scan = {(r.model, r.subject, r.region): r for r in volumes.itertuples()}
    rows = []
    for model in models if models is not None else sorted(volumes["model"].unique()):
        for pair in pairs.to_dict("records"):
            base = {"model": model, "patient": pair["patient"], "baseline": pair["baseline"],
                    "follow_up": pair["follow_up"], "factor_nominal": pair.get("factor", np.nan)}
            missing = [s for s in (pair["baseline"], pair["follow_up"])
                       if (model, s, "WT") not in by_scan]
            if missing:
                rows.append({**base, "status": f"not measured: no segmentation of "
                                               f"{' and '.join(missing)}"})
                continue
            for region in CHANGE_REGIONS:
                rows.append(_region_row(base, region, by_scan[(model, pair["baseline"], region)],
                                        by_scan[(model, pair["follow_up"], region)],
                                        rules.get((model, region)), thresholds))
    return pd.DataFrame(rows, columns=None if rows else [*PAIR_KEYS, "status"])


def _region_row(base: dict, region: str, before, after, rule_row,
                thresholds: ChangeThresholds) -> dict:
    row = {**base, "region": region, "status": "measured"}
    if rule_row is None:
        rule, row["status"] = VolumeCalibration("absolute", math.inf, 0, 0.5, 1.0), (
            "measured; no calibration of this model and region: unbounded intervals")
    else:
        rule = rule_of(rule_row)
    row.update(volume_change(float(before.volume_pred_ml), float(after.volume_pred_ml), rule,
                             thresholds))
    row.update({"coverage": change_coverage(rule.coverage) if rule_row is not None else np.nan,
                "per_scan_coverage": rule.coverage if rule_row is not None else np.nan,
                "nonconformity": rule.kind, "n_calibration_cases": rule.n_cases,
                "progression_ratio": thresholds.progression_ratio,
                "response_ratio": thresholds.response_ratio})
    truths = (getattr(before, "volume_true_ml", np.nan), getattr(after, "volume_true_ml", np.nan))
    if not any(pd.isna(t) for t in truths):
        row.update(_truth(row, float(truths[0]), float(truths[1])))
    return row


__all__ = ["CALLS", "CHANGE_REGIONS", "ChangeThresholds", "call", "change_coverage",
           "change_table", "file_volumes", "per_scan_coverage", "volume_change",
           "volume_rows"]
