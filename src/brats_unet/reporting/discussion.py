"""The report's discussion: paragraphs written from this run's numbers only.

Every verdict (significant or not, underpowered, the paradox claim supported or not) is
decided in :mod:`brats_unet.evaluation.comparison`; this module only phrases it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from brats_unet.evaluation.comparison import (
    PARADOX_COLUMNS,
    PairVerdict,
    about_equal,
    mean_dice_ranking,
    pair_verdict,
    paradox_test,
    smallest_wilcoxon_p,
    underpowered,
)
from brats_unet.labels import ordered_regions


def format_p(p: float) -> str:
    """A p-value as the report writes it: three significant digits, ``< 0.001`` below that."""
    if not np.isfinite(p):
        return "not available"
    return f"{p:.3g}" if p >= 0.001 else "< 0.001"


def _verdict_words(pair: PairVerdict) -> str:
    if pair.wilcoxon_significant and pair.interval_excludes_zero:
        return "significant by both criteria"
    if pair.wilcoxon_significant:
        return "significant by the Wilcoxon test but not by the bootstrap CI, which includes 0"
    if pair.interval_excludes_zero:
        return "not significant by the Wilcoxon test, although the bootstrap CI excludes 0"
    return "not significant by either criterion"


def _pair_sentence(pair: PairVerdict) -> str:
    return (
        f"Against {pair.other} the mean paired difference was {pair.difference:+.3f} "
        f"(95% bootstrap CI {pair.low:+.3f} to {pair.high:+.3f}, "
        f"{'excluding' if pair.interval_excludes_zero else 'including'} 0; "
        f"Wilcoxon p = {format_p(pair.p)}, {'<' if pair.wilcoxon_significant else '≥'} "
        f"{pair.alpha}): {_verdict_words(pair)}."
    )


def best_model_paragraph(per_case: pd.DataFrame, comparison: pd.DataFrame, region: str) -> str:
    """The best model in ``region`` by mean per-case Dice and its paired differences."""
    means = mean_dice_ranking(per_case, region)
    best = str(means.index[0])
    data = per_case[per_case["region"] == region]
    n = data[data["model"] == best]["subject"].nunique()
    sentences = [
        f"{region}: {best} had the highest mean Dice ({means[best]:.3f} over {n} test subjects; "
        + ", ".join(f"{m} {means[m]:.3f}" for m in sorted(means.index) if m != best)
        + ")."
    ]
    smallest_n = n
    for other in sorted(m for m in means.index if m != best):
        pair = pair_verdict(comparison, region, best, other)
        if pair is None:
            sentences.append(f"No paired comparison of {best} with {other} is available.")
            continue
        sentences.append(_pair_sentence(pair))
        if pair.n_subjects is not None:
            smallest_n = min(smallest_n, pair.n_subjects)
    if underpowered(smallest_n):
        sentences.append(
            f"With only {smallest_n} paired test subjects the Wilcoxon signed-rank test has "
            f"little power: its smallest attainable two-sided p is "
            f"{smallest_wilcoxon_p(smallest_n):.3g}, so a non-significant result says little."
        )
    return " ".join(sentences)


def _describe_gap(gap: float) -> str:
    if about_equal(gap):
        return f"about equal to per-case Dice (mean difference {gap:+.4f})"
    return (f"{'higher' if gap > 0 else 'lower'} than per-case Dice by {abs(gap):.3f} on "
            f"average (slice-wise - per-case = {gap:+.3f})")


def slicewise_paragraph(per_case: pd.DataFrame, models_2d: Sequence[str]) -> str | None:
    """Slice-wise against per-case Dice: the 2D models first, then all; None without the column."""
    if "dice_slicewise" not in per_case:
        return None
    data = per_case.assign(gap=per_case["dice_slicewise"] - per_case["dice"]).dropna(subset=["gap"])
    if data.empty:
        return None
    sentences = []
    for model in [m for m in models_2d if m in set(data["model"])]:
        rows = data[data["model"] == model]
        per_region = rows.groupby("region")["gap"].mean()
        sentences.append(
            f"For the 2D model {model}, slice-wise Dice was "
            f"{_describe_gap(float(rows['gap'].mean()))}; per region: "
            + ", ".join(f"{r} {per_region[r]:+.3f}" for r in ordered_regions(rows["region"])) + "."
        )
    by_model = data.groupby("model")["gap"].mean()
    sentences.append(
        f"Over all models and regions slice-wise Dice was "
        f"{_describe_gap(float(data['gap'].mean()))}; per model: "
        + ", ".join(f"{m} {by_model[m]:+.3f}" for m in sorted(by_model.index)) + "."
    )
    lower = int((data["gap"] < 0).sum())
    sentences.append(
        f"It was below the per-case Dice in {lower} of {len(data)} model-case-region rows."
    )
    return " ".join(sentences)


def _names(models: Sequence[str]) -> str:
    return ", ".join(models) or "none in this run"


def paradox_paragraph(per_case: pd.DataFrame, models_2d: Sequence[str],
                      models_3d: Sequence[str], region: str = "WT") -> str:
    """The 'Volume-Dice paradox' claim, tested on this run or said to be untestable."""
    claim = ("The 'Volume-Dice paradox' claim of slice-level studies is that 3D models give "
             "more connected and larger volumes than 2D ones.")
    test = paradox_test(per_case, models_2d, models_3d, region)
    if test is None:
        return (f"{claim} It cannot be tested on this run: it needs {region} rows of both a 2D "
                f"model ({_names(models_2d)}) and a 3D model ({_names(models_3d)}) "
                f"with {', '.join(PARADOX_COLUMNS)}.")
    m2, m3 = test.means_2d, test.means_3d
    numbers = (
        f"In {region}, the 3D models ({'/'.join(test.models_3d)}) predicted on average "
        f"{m3['components_pred']:.2f} connected components against {m2['components_pred']:.2f} "
        f"for {'/'.join(test.models_2d)}, a largest-component share of "
        f"{m3['largest_component_share_pred']:.3f} against "
        f"{m2['largest_component_share_pred']:.3f}, and a mean signed volume error of "
        f"{m3['volume_error_ml']:+.2f} ml against {m2['volume_error_ml']:+.2f} ml "
        f"({test.n_subjects} test subjects)."
    )
    parts = (
        f"3D predictions were {'more' if test.more_connected else 'not more'} connected and "
        f"{'larger' if test.larger else 'not larger'} than 2D ones."
    )
    if test.supported:
        verdict = "The claim is supported by this run's data."
    else:
        failing = [p for p, ok in (("connectivity", test.more_connected),
                                   ("volume", test.larger)) if not ok]
        verdict = (f"The claim is not supported by this run's data (the {' and '.join(failing)} "
                   f"part{'s' if len(failing) > 1 else ''} did not hold).")
    return " ".join([claim, numbers, parts, verdict])


def discussion(per_case: pd.DataFrame, comparison: pd.DataFrame, *,
               models_2d: Sequence[str], models_3d: Sequence[str]) -> list[str]:
    """Discussion paragraphs written from this run's numbers only.

    (a) best model per region by mean per-case Dice and the significance of
    its differences (Wilcoxon p < 0.05 and bootstrap CI excluding 0, both
    stated); (b) slice-wise against per-case Dice; (c) the Volume-Dice paradox
    claim tested on WT components, largest-component share and signed volume
    error of the 3D models against the 2D ones. The means are computed from
    ``per_case`` so that they match the paired tests.
    """
    paragraphs = [best_model_paragraph(per_case, comparison, r)
                  for r in ordered_regions(per_case["region"])]
    slicewise = slicewise_paragraph(per_case, models_2d)
    if slicewise:
        paragraphs.append(slicewise)
    paragraphs.append(paradox_paragraph(per_case, models_2d, models_3d))
    return paragraphs
