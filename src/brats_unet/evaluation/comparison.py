"""Paired comparison of models on the same test cases.

Every model is scored on the same test subjects, so differences are compared
per subject (paired), per region: the Wilcoxon signed-rank test for "is one
model better", and a percentile bootstrap over subjects for "by how much"
(95 % interval of the mean Dice difference).
"""

from __future__ import annotations

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
