"""Prediction intervals for tumour volumes in ml, by split-conformal prediction.

A model's interval for a new case's true volume is calibrated on cases it never trained on
(the out-of-fold cases of a k-fold run, else the validation subjects): their nonconformity
scores, how far the predicted volume was from the true one, give the quantile that sets the
interval's half-width. With ``n`` calibration cases and coverage ``1 - alpha`` the quantile is
the ``ceil((n + 1)(1 - alpha))``-th smallest score, so that a new exchangeable case's true
volume falls inside with probability at least ``1 - alpha`` (Vovk et al. 2005; Angelopoulos
and Bates 2021); with too few cases (``n < 1 / alpha - 1``) no finite interval has that
guarantee, and the interval is unbounded.

Two scores, and the narrower intervals of the two at the stated coverage are used (the
choice is reported; choosing between two on the calibration cases can cost a little
coverage, which the test set's empirical coverage shows):

- ``absolute``: ``|true - predicted|`` in ml, an interval ``predicted +- q``;
- ``relative``: ``|true - predicted| / (predicted + floor)``, an interval
  ``predicted +- q (predicted + floor)``: wider for larger tumours; ``floor`` (ml) keeps a
  case predicted empty from an infinite score.

Lower bounds are clipped at 0 ml. Written here rather than taken from a library (MAPIE,
crepes): the split-conformal quantile is a few lines, and those libraries fit the regressor
themselves, while ours is the segmentation network and its volumes come from files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brats_unet.evaluation.volumetry import NECROTIC_CORE

NONCONFORMITY = ("absolute", "relative")
#: calibration and test rows are matched on these
KEYS = ["model", "region"]
#: What a rule is for: a scan's volume interval at the stated coverage, or each scan's interval
#: inside a longitudinal change's (at :func:`per_scan_coverage`; :mod:`.longitudinal`).
PURPOSES = ("volume", "change")
#: The necrotic core's volumes, one pair per case on every row of it (no region row of its own)
NECROTIC_COLUMNS = ("necrotic_core_pred_ml", "necrotic_core_true_ml")
CALIBRATION_COLUMNS = ["model", "region", "nonconformity", "quantile", "n_cases", "coverage",
                       "floor_ml", "cases", "purpose"]


def per_scan_coverage(coverage: float) -> float:
    """Each scan's coverage so that both true volumes lie inside their intervals at once with
    probability at least ``coverage`` (the union bound: ``1 - (1 - coverage) / 2``)."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    return 1 - (1 - coverage) / 2


def conformal_quantile(scores: Sequence[float], coverage: float) -> float:
    """The split-conformal quantile: the ``ceil((n + 1) coverage)``-th smallest of ``scores``,
    or infinity when that rank exceeds ``n`` (too few scores for the coverage)."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    values = np.sort(np.asarray(scores, dtype=np.float64))
    if np.isnan(values).any():
        raise ValueError("nonconformity scores contain NaN")
    rank = math.ceil((len(values) + 1) * coverage)
    return float(values[rank - 1]) if rank <= len(values) else math.inf


def nonconformity(kind: str, predicted, true, floor_ml: float) -> np.ndarray:
    """Each case's score of ``kind`` (``absolute`` or ``relative``) from its volumes in ml."""
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    if kind == "absolute":
        return np.abs(true - predicted)
    if kind == "relative":
        return np.abs(true - predicted) / (predicted + floor_ml)
    raise ValueError(f"nonconformity must be one of {NONCONFORMITY}, got {kind!r}")


@dataclass(frozen=True)
class VolumeCalibration:
    """One model's and region's calibrated interval rule."""

    kind: str  # absolute or relative
    quantile: float  # ml (absolute) or a share of predicted + floor (relative); inf: too few cases
    n_cases: int
    coverage: float  # nominal
    floor_ml: float

    def interval(self, predicted) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` in ml around each predicted volume; low clipped at 0."""
        predicted = np.asarray(predicted, np.float64)
        if self.kind == "absolute":
            half = np.full_like(predicted, self.quantile)
        else:
            half = self.quantile * (predicted + self.floor_ml)
        return np.maximum(predicted - half, 0.0), predicted + half


def calibrate(predicted, true, *, coverage: float = 0.9, floor_ml: float = 1.0,
              kinds: Sequence[str] = NONCONFORMITY) -> VolumeCalibration:
    """The interval rule of the ``kinds`` with the smallest mean width over the calibration
    cases' own predicted volumes (absolute first on a tie, unbounded ones last)."""
    predicted = np.asarray(predicted, np.float64)
    if predicted.size == 0:
        raise ValueError("no calibration cases")
    best, best_width = None, math.inf
    for kind in kinds:
        rule = VolumeCalibration(kind, conformal_quantile(
            nonconformity(kind, predicted, true, floor_ml), coverage), len(predicted), coverage,
            floor_ml)
        low, high = rule.interval(predicted)
        width = float(np.mean(high - low))
        if best is None or width < best_width:
            best, best_width = rule, width
    return best


def _calibration_groups(cases: pd.DataFrame):
    """``(model, region, predicted, true, cases)`` per model and region, then per model the
    necrotic core (from the :data:`NECROTIC_COLUMNS` of its TC rows, one per case) if given."""
    for (model, region), group in cases.groupby(KEYS, sort=False):
        yield (model, region, group["volume_pred_ml"], group["volume_true_ml"],
               group["cases"].iloc[0])
    if not set(NECROTIC_COLUMNS) <= set(cases.columns):
        return
    for model, group in cases[cases["region"] == "TC"].groupby("model", sort=False):
        group = group.dropna(subset=list(NECROTIC_COLUMNS))
        if len(group):
            yield (model, NECROTIC_CORE, group[NECROTIC_COLUMNS[0]], group[NECROTIC_COLUMNS[1]],
                   group["cases"].iloc[0])


def calibration_table(calibration_cases: pd.DataFrame, *, coverage: float = 0.9,
                      floor_ml: float = 1.0, purpose: str = "volume") -> pd.DataFrame:
    """One rule per model and region (WT, TC, ET and, where the rows carry its volumes, the
    necrotic core NCR) from its calibration rows (``volume_pred_ml``, ``volume_true_ml``;
    ``cases`` says out-of-fold or validation), for ``purpose`` (:data:`PURPOSES`)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    rows = []
    for model, region, predicted, true, cases in _calibration_groups(calibration_cases):
        rule = calibrate(predicted, true, coverage=coverage, floor_ml=floor_ml)
        rows.append({"model": model, "region": region, "nonconformity": rule.kind,
                     "quantile": rule.quantile, "n_cases": rule.n_cases, "coverage": coverage,
                     "floor_ml": floor_ml, "cases": cases, "purpose": purpose})
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def rules_for(calibration: pd.DataFrame, purpose: str = "volume") -> pd.DataFrame:
    """The rows of a calibration table for ``purpose`` (a table without the column: all)."""
    if "purpose" not in calibration:
        return calibration
    return calibration[calibration["purpose"] == purpose]


def rule_of(row) -> VolumeCalibration:
    """A :class:`VolumeCalibration` from a row of :func:`calibration_table`."""
    return VolumeCalibration(row["nonconformity"], float(row["quantile"]), int(row["n_cases"]),
                             float(row["coverage"]), float(row["floor_ml"]))


def with_intervals(per_case: pd.DataFrame, calibration: pd.DataFrame) -> pd.DataFrame:
    """``per_case`` with ``volume_pred_low_ml`` and ``volume_pred_high_ml``: each row's interval
    from the rule of its ``model`` and region (NaN where there is none)."""
    out = per_case.copy()
    out["volume_pred_low_ml"] = np.nan
    out["volume_pred_high_ml"] = np.nan
    for _, rule_row in rules_for(calibration, "volume").iterrows():
        rows = (out["model"] == rule_row["model"]) & (out["region"] == rule_row["region"])
        low, high = rule_of(rule_row).interval(out.loc[rows, "volume_pred_ml"])
        out.loc[rows, "volume_pred_low_ml"] = low
        out.loc[rows, "volume_pred_high_ml"] = high
    return out


def coverage_table(per_case: pd.DataFrame, by: str = "model") -> pd.DataFrame:
    """Per ``by`` (model, or predictor) and region: cases, empirical coverage of the true
    volume by the intervals (with its Wilson 95% interval), and mean and median width in ml."""
    rows = []
    scored = per_case.dropna(subset=["volume_pred_low_ml"])
    for (name, region), group in scored.groupby([by, "region"], sort=False):
        inside = ((group["volume_true_ml"] >= group["volume_pred_low_ml"])
                  & (group["volume_true_ml"] <= group["volume_pred_high_ml"]))
        width = group["volume_pred_high_ml"] - group["volume_pred_low_ml"]
        low, high = wilson_interval(int(inside.sum()), len(group))
        rows.append({by: name, "region": region, "n_cases": len(group),
                     "covered": int(inside.sum()), "coverage_empirical": float(inside.mean()),
                     "coverage_low": low, "coverage_high": high,
                     "width_ml_mean": float(width.mean()),
                     "width_ml_median": float(width.median())})
    return pd.DataFrame(rows, columns=[by, "region", "n_cases", "covered",
                                       "coverage_empirical", "coverage_low", "coverage_high",
                                       "width_ml_mean", "width_ml_median"])


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); (nan, nan) for ``n = 0``."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
