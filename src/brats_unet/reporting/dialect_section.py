"""The report's section on the official BraTS evaluations: each dialect's headline figures side
by side, lesion detection by size, and the conventions each dialect stands for."""

from __future__ import annotations

import pandas as pd

from brats_unet.evaluation.dialect_scores import detection_by_size, dialect_summary
from brats_unet.evaluation.dialects import (
    LESIONWISE_2023_CHALLENGES,
    LESIONWISE_HD95_PENALTY_MM,
    PANOPTICA_HD95_PENALTY_MM,
)
from brats_unet.reporting.page import escape, number, table

#: What each dialect is, one line each, for the section's list.
DIALECT_NOTES: dict[str, str] = {
    "legacy": "legacy (BraTS 2018-2021, MedPy): per case and region; Dice (both empty 1, one "
              "empty 0); HD95 of voxel surfaces pooled over both directions (both empty 0, one "
              "empty 373.13 mm). The benchmark table and the model comparison use this dialect.",
    "lesionwise2023": "lesion-wise (BraTS 2023-2024 scripts): truth components within the "
                      "challenge's dilations merge into lesions; every predicted component "
                      "touching a lesion's dilation matches it; lesions at or below the volume "
                      "threshold are dropped; misses and false positives score Dice 0 and HD95 "
                      f"{LESIONWISE_HD95_PENALTY_MM:g} mm; HD95 is DeepMind's surfel-area "
                      "HD95 (larger directed percentile). Reproduced as the official scripts "
                      "compute it.",
    "panoptica": "panoptica (BraTS 2025+, BraTS-evaluation on panoptica, glioma configuration): "
                 "26-connected instances matched one to one by maximum bipartite matching on "
                 "Dice; DSC, HD95 and NSD are means over matched pairs only; misses and false "
                 "positives count in the instance F1 (RQ); a region empty in both masks is "
                 "undefined (NaN) and left out of the means. Corrected against the package: "
                 "distances in mm along the file's own axes (its file reader swaps them), "
                 f"HD95 {PANOPTICA_HD95_PENALTY_MM:g} mm without a matched pair (the package "
                 "leaves infinity).",
}


def _summary_rows(per_case: pd.DataFrame) -> list[list[str]]:
    rows = []
    for row in dialect_summary(per_case).itertuples():
        digits = 2 if "HD95" in row.figure else 3
        rows.append([escape(row.model), escape(row.region), escape(row.dialect),
                     escape(row.figure), number(row.mean, digits), escape(row.n_cases),
                     escape(row.n_undefined)])
    return rows


def _detection_rows(lesions: pd.DataFrame) -> list[list[str]]:
    return [[escape(r.dialect), escape(r.model), escape(r.region), escape(r.size_ml),
             escape(r.lesions), escape(r.detected), number(r.detection_rate, 2),
             escape(r.false_positives)] for r in detection_by_size(lesions).itertuples()]


def dialect_section(per_case: pd.DataFrame, lesions: pd.DataFrame | None,
                    challenge: str = "GLI") -> list[str]:
    """HTML parts of the dialects section; ``lesions`` is ``results/lesions.csv``."""
    dilation, threshold = LESIONWISE_2023_CHALLENGES[challenge]
    notes = dict(DIALECT_NOTES)
    notes["lesionwise2023"] += (f" Challenge {challenge}: {dilation} dilations, volume "
                                f"threshold {threshold:g} mm³.")
    parts = [
        "<h2>Official BraTS evaluations side by side</h2>",
        ("<p>A published BraTS figure means little without the evaluation it was computed "
         "with. Each row names its dialect; the means are over the test cases where the "
         "figure is defined.</p>"),
        "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in notes.values()) + "</ul>",
        table(["model", "region", "dialect", "figure", "mean", "cases", "undefined"],
              _summary_rows(per_case)),
    ]
    if lesions is not None and len(lesions):
        parts += [
            "<h3>Lesion detection by truth-lesion size</h3>",
            ("<p>Per dialect, truth lesions (the 2023 dialect's merged lesions, panoptica's "
             "components) by volume in ml, how many a prediction matched, and the predicted "
             "components matched to no lesion (false positives). Per-lesion rows are in "
             "results/lesions.csv.</p>"),
            table(["dialect", "model", "region", "size (ml)", "lesions", "detected", "rate",
                   "false positives"], _detection_rows(lesions)),
        ]
    return parts
