"""The three official BraTS evaluations ("dialects") and every constant they use, in one place.

A published BraTS number means little without its dialect:

* ``legacy`` - the 2018-2021 evaluation (and MedPy): per case and region, Dice (both masks
  empty 1, exactly one empty 0) and HD95 of voxel surfaces (both empty 0, exactly one empty
  373.128664 mm). These are the per-case columns ``dice``, ``hd95_mm``, ``sensitivity`` and
  ``specificity``, always computed.
* ``lesionwise2023`` - the 2023-2024 challenges (``rachitsaluja/BraTS-2023-Metrics``,
  ``brats_metrics.py``): 26-connected truth components closer than ``dilation`` dilations
  (18-neighbourhood) merge into one lesion; every predicted component touching a lesion's
  dilation is its match; Dice against the undilated lesion and HD95 by DeepMind's surfel
  definition (:mod:`brats_unet.evaluation.surfaces`); lesions of at most
  ``volume_threshold_mm3`` are left out; misses and false-positive components score Dice 0 and
  HD95 374; the score is the sum over kept lesions divided by (kept lesions + false
  positives); none of either gives Dice 1, HD95 0. Reproduced as the official scripts compute
  it, the threshold included in mm³ (the scripts multiply the voxel count by the header's
  voxel size: "50 voxels" on BraTS's 1 mm grid). The 2024 GLI scripts merge lesions across
  labels and use other thresholds: not reproduced.
* ``panoptica`` - 2025 and later (PyPI ``BraTS-evaluation`` on ``panoptica``, the glioma
  configuration ``config_gli.yaml``): 26-connected components, one-to-one maximum bipartite
  matching on Dice among pairs that overlap, no dilation; lesion-wise Dice and HD95 are means
  over matched pairs, misses and false positives enter through the instance F1 ``rq``. See
  :mod:`brats_unet.evaluation.instances` for what is reproduced and what is corrected.
"""

from __future__ import annotations

DIALECTS: tuple[str, ...] = ("legacy", "lesionwise2023", "panoptica")

#: (dilation iterations, lesion volume threshold in mm³) of each 2023 challenge, as
#: ``get_challenge_parameters`` of the 2023 scripts gives them.
LESIONWISE_2023_CHALLENGES: dict[str, tuple[int, float]] = {
    "GLI": (3, 50.0), "SSA": (3, 50.0), "MEN": (1, 50.0), "PED": (3, 50.0), "MET": (1, 2.0),
}

#: HD95 of a missed lesion or a false-positive component in the 2023 scripts, in mm.
LESIONWISE_HD95_PENALTY_MM = 374.0

#: The 2025 parser's HD95 for an infinite distance (no matched pair, one mask empty), in mm:
#: "diameter of the cube in SRI space".
PANOPTICA_HD95_PENALTY_MM = 373.0

#: panoptica's matching threshold: a pair is a candidate when its Dice is at least this.
PANOPTICA_MATCHING_THRESHOLD = 1e-6


def check_dialects(dialects) -> tuple[str, ...]:
    """The dialects asked for, in the canonical order; ``legacy`` must be among them."""
    unknown = sorted(set(dialects) - set(DIALECTS))
    if unknown:
        raise ValueError(f"unknown evaluation dialects {unknown}; expected some of {DIALECTS}")
    if "legacy" not in dialects:
        raise ValueError("the legacy dialect is the project's headline (per-case Dice and "
                         "HD95): keep it in evaluation.dialects")
    return tuple(d for d in DIALECTS if d in dialects)


def lesionwise_2023_parameters(challenge: str) -> tuple[int, float]:
    """``(dilation, volume_threshold_mm3)`` of a 2023 challenge (GLI, SSA, MEN, PED, MET)."""
    name = challenge.removeprefix("BraTS-")
    if name not in LESIONWISE_2023_CHALLENGES:
        raise ValueError(f"unknown BraTS challenge {challenge!r}; expected one of "
                         f"{sorted(LESIONWISE_2023_CHALLENGES)}")
    return LESIONWISE_2023_CHALLENGES[name]
