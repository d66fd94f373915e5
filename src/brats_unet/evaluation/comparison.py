"""Paired comparison of models on the same test cases.

Every model is scored on the same test subjects, so differences are compared
per subject (paired), per region: the Wilcoxon signed-rank test for "is one
model better", and a percentile bootstrap over subjects for "by how much"
(95 % interval of the mean Dice difference). The decisions drawn from those figures
(significant or not, underpowered or not, the paradox claim supported or not) are made
here too, so that the report only phrases them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats


def bootstrap_mean_interval(differences: np.ndarray, *, n_boot: int = 10_000, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``differences`` (resampling subjects)."""
    differences = np.asarray(differences, dtype=float)
    if differences.size == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, differences.size, size=(n_boot, differences.size))
    means = differences[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; NaN when it is undefined (all differences 0, or none)."""
    differences = np.asarray(differences, dtype=float)
    if differences.size == 0 or np.all(differences == 0):
        return np.nan
    return float(stats.wilcoxon(differences, zero_method="wilcox",
                                alternative="two-sided").pvalue)


def paired_comparison(per_case: pd.DataFrame, *, metric: str = "dice", n_boot: int = 10_000,
                      seed: int = 0) -> pd.DataFrame:
    """For every pair of models and every region: mean difference, bootstrap 95 % CI, Wilcoxon p.

    ``per_case`` is tidy (``model, subject, region, <metric>``). Only subjects
    scored by both models enter a pair. ``difference`` is ``model_a - model_b``.
    """
    rows = []
    models = sorted(per_case["model"].unique())
    for region, frame in per_case.groupby("region", sort=False):
        wide = frame.pivot_table(index="subject", columns="model", values=metric)
        for a, b in combinations(models, 2):
            if a not in wide or b not in wide:
                continue
            pair = wide[[a, b]].dropna()
            diff = (pair[a] - pair[b]).to_numpy()
            low, high = bootstrap_mean_interval(diff, n_boot=n_boot, seed=seed)
            rows.append({
                "region": region, "metric": metric, "model_a": a, "model_b": b,
                "n_subjects": int(diff.size),
                "mean_a": float(pair[a].mean()) if diff.size else np.nan,
                "mean_b": float(pair[b].mean()) if diff.size else np.nan,
                "mean_difference": float(diff.mean()) if diff.size else np.nan,
                "ci95_low": low, "ci95_high": high,
                "wilcoxon_p": wilcoxon_p(diff),
            })
    return pd.DataFrame(rows, columns=[
        "region", "metric", "model_a", "model_b", "n_subjects", "mean_a", "mean_b",
        "mean_difference", "ci95_low", "ci95_high", "wilcoxon_p"])


# --------------------------------------------------------------------------- decisions
# The report phrases these; every threshold and verdict is decided here, once.

#: Significance level of the paired tests.
ALPHA = 0.05
#: Below this many paired subjects the Wilcoxon test is called underpowered.
MIN_SUBJECTS_FOR_POWER = 6
#: Differences of means smaller than this count as equal in the paradox test.
_EPS = 1e-12
#: A mean Dice difference smaller than this is called "about equal" (slice-wise against
#: per-case Dice): below the third decimal the tables print.
ABOUT_EQUAL_DICE = 5e-4


def about_equal(dice_difference: float) -> bool:
    return abs(dice_difference) < ABOUT_EQUAL_DICE


def smallest_wilcoxon_p(n_subjects: int) -> float:
    """The smallest two-sided p the exact Wilcoxon signed-rank test can reach on ``n`` pairs
    (every difference of one sign): 2 / 2^n."""
    return 2.0 ** (1 - n_subjects)


def underpowered(n_subjects: int) -> bool:
    """Too few paired subjects for a non-significant Wilcoxon result to say much."""
    return n_subjects < MIN_SUBJECTS_FOR_POWER


@dataclass(frozen=True)
class PairVerdict:
    """One region's paired comparison of ``better`` with ``other``, signed as better - other."""

    better: str
    other: str
    difference: float
    low: float
    high: float
    p: float
    n_subjects: int | None
    alpha: float = ALPHA

    @property
    def wilcoxon_significant(self) -> bool:
        """p below alpha (an undefined p, NaN, is not significant)."""
        return bool(self.p < self.alpha)

    @property
    def interval_excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def pair_verdict(comparison: pd.DataFrame, region: str, better: str, other: str,
                 *, metric: str = "dice", alpha: float = ALPHA) -> PairVerdict | None:
    """The ``comparison`` row of (better, other) in ``region``, turned to read better - other;
    None when the table has no such pair."""
    rows = comparison[comparison["region"] == region]
    if "metric" in rows:
        rows = rows[rows["metric"] == metric]
    for a, b, sign in ((better, other, 1.0), (other, better, -1.0)):
        hit = rows[(rows["model_a"] == a) & (rows["model_b"] == b)]
        if not hit.empty:
            row = hit.iloc[0]
            low, high = sign * float(row["ci95_low"]), sign * float(row["ci95_high"])
            return PairVerdict(
                better=better, other=other, difference=sign * float(row["mean_difference"]),
                low=min(low, high), high=max(low, high), p=float(row["wilcoxon_p"]),
                n_subjects=int(row["n_subjects"]) if "n_subjects" in row else None, alpha=alpha)
    return None


def mean_dice_ranking(per_case: pd.DataFrame, region: str) -> pd.Series:
    """Mean per-case Dice per model in ``region``, best first (ties by model name)."""
    means = per_case[per_case["region"] == region].groupby("model")["dice"].mean()
    order = sorted(means.index, key=lambda m: (-means[m], m))
    return means[order]


@dataclass(frozen=True)
class ParadoxTest:
    """The 'Volume-Dice paradox' claim (3D predictions more connected and larger than 2D ones)
    tested on one region's means: ``means_2d`` and ``means_3d`` per column."""

    region: str
    models_2d: tuple[str, ...]
    models_3d: tuple[str, ...]
    means_2d: dict[str, float]
    means_3d: dict[str, float]
    n_subjects: int

    @property
    def more_connected(self) -> bool:
        """Fewer components or a higher largest-component share, and neither the opposite."""
        c2, c3 = self.means_2d["components_pred"], self.means_3d["components_pred"]
        s2 = self.means_2d["largest_component_share_pred"]
        s3 = self.means_3d["largest_component_share_pred"]
        better = c3 < c2 - _EPS or s3 > s2 + _EPS
        worse = c3 > c2 + _EPS or s3 < s2 - _EPS
        return better and not worse

    @property
    def larger(self) -> bool:
        return self.means_3d["volume_error_ml"] > self.means_2d["volume_error_ml"] + _EPS

    @property
    def supported(self) -> bool:
        return self.more_connected and self.larger


#: The per-case columns the paradox test reads.
PARADOX_COLUMNS = ("components_pred", "largest_component_share_pred", "volume_error_ml")


def paradox_test(per_case: pd.DataFrame, models_2d, models_3d,
                 region: str = "WT") -> ParadoxTest | None:
    """:class:`ParadoxTest` of the 3D against the 2D models present; None when the run lacks a
    2D or a 3D model, or a needed column."""
    data = per_case[per_case["region"] == region]
    two = data[data["model"].isin(models_2d)]
    three = data[data["model"].isin(models_3d)]
    if two.empty or three.empty or any(c not in data for c in PARADOX_COLUMNS):
        return None
    return ParadoxTest(
        region=region,
        models_2d=tuple(m for m in models_2d if m in set(two["model"])),
        models_3d=tuple(m for m in models_3d if m in set(three["model"])),
        means_2d={c: float(two[c].mean()) for c in PARADOX_COLUMNS},
        means_3d={c: float(three[c].mean()) for c in PARADOX_COLUMNS},
        n_subjects=int(three["subject"].nunique()))
