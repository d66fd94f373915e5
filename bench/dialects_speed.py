"""Seconds per full-size case for every evaluation dialect, one core.

One synthetic BraTS-size case (240 x 240 x 155, 1 mm) with oedema around a necrotic core and
--lesions enhancing lesions (radius 3-6 mm; one pair 3 voxels apart, which the 2023 dialect
merges; two of radius 1.5 and 1.8 mm, below its 50 mm³ threshold); the prediction moves every lesion by one voxel, misses two
lesions, adds two false-positive components and splits one lesion in two. Per round:
``scoring.evaluate_case`` with all three dialects (what the evaluate job runs per case, shape
figures and volumes included), with the legacy dialect only, and the two lesion dialects
alone (``dialect_scores`` over WT, TC, ET). Medians over rounds, after one warm-up call (the
surfel table's one-off 0.3 s set-up, paid once per evaluate job, is left out).

Run on one core (the target): ``taskset -c 0`` and OMP_NUM_THREADS=1.

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/dialects_speed.py
    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/dialects_speed.py --rounds 7
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

from brats_unet.evaluation.dialect_scores import EvaluationSettings, dialect_scores
from brats_unet.evaluation.dialects import check_dialects
from brats_unet.evaluation.scoring import evaluate_case
from brats_unet.io import Geometry
from brats_unet.labels import ENHANCING, NECROSIS, OEDEMA, REGION_LABELS, REGIONS

from timing import median_seconds

SHAPE = (240, 240, 155)


def _ball(labels: np.ndarray, centre, radius: float, value: int) -> None:
    box = tuple(slice(max(int(c - radius) - 1, 0), int(c + radius) + 2) for c in centre)
    grid = np.indices(tuple(s.stop - s.start for s in box)).astype(float)
    inside = sum((g + s.start - c) ** 2 for g, s, c in zip(grid, box, centre)) <= radius ** 2
    labels[box][inside] = value


def make_case(n_lesions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction) canonical label maps; see the module docstring."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(SHAPE, np.uint8)
    _ball(truth, (120, 120, 77), 38, OEDEMA)
    _ball(truth, (120, 120, 77), 14, NECROSIS)
    centres = [(120 + 28 * np.cos(a), 120 + 28 * np.sin(a), 77 + (18 if k % 2 else -18))
               for k, a in enumerate(np.linspace(0, 2 * np.pi, n_lesions, endpoint=False))]
    radii = [1.5, 1.8] + list(rng.uniform(3, 6, n_lesions - 2))      # two below 50 mm³
    centres[3] = (centres[2][0] + radii[2] + radii[3] + 3, centres[2][1], centres[2][2])
    pred = truth.copy()
    for k, (centre, radius) in enumerate(zip(centres, radii)):
        _ball(truth, centre, radius, ENHANCING)
        if k not in (4, 5):                                             # two misses
            _ball(pred, (centre[0] + 1, centre[1], centre[2]), radius, ENHANCING)
    for centre in ((60, 60, 40), (180, 60, 110)):                       # two false positives
        _ball(pred, centre, 3, ENHANCING)
    x = int(centres[6][0])
    pred[x, :, :][pred[x, :, :] == ENHANCING] = OEDEMA                   # one lesion split
    return truth, pred


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lesions", type=int, default=12)
    args = parser.parse_args()
    truth, pred = make_case(args.lesions)
    geometry = Geometry(SHAPE, np.diag([-1.0, -1.0, 1.0, 1.0]), (1.0, 1.0, 1.0))
    spacing = (1.0, 1.0, 1.0)
    masks = {r: (np.isin(truth, REGION_LABELS[r]), np.isin(pred, REGION_LABELS[r]))
             for r in REGIONS}

    def case(dialects):
        settings = EvaluationSettings(check_dialects(dialects))
        return lambda: evaluate_case(model="m", subject="s", prediction=pred, truth=truth,
                                     geometry=geometry, settings=settings)

    def lesion_dialect(dialect):
        settings = EvaluationSettings(("legacy", dialect))
        return lambda: [dialect_scores(t, p, spacing, settings) for t, p in masks.values()]

    funcs = {
        "evaluate_case, all three dialects": case(("legacy", "lesionwise2023", "panoptica")),
        "evaluate_case, legacy only": case(("legacy",)),
        "lesionwise2023 alone (WT, TC, ET)": lesion_dialect("lesionwise2023"),
        "panoptica alone (WT, TC, ET)": lesion_dialect("panoptica"),
    }
    rows, _ = case(("legacy", "lesionwise2023", "panoptica"))()
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"cpu: {platform.processor() or platform.machine()}, affinity "
          f"{sorted(os.sched_getaffinity(0))}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    et = next(r for r in rows if r["region"] == "ET")
    print(f"case {SHAPE} at 1 mm; ET: lesionwise2023 tp/fp/fn {et['lesionwise2023_tp']}/"
          f"{et['lesionwise2023_fp']}/{et['lesionwise2023_fn']} (below threshold "
          f"{et['lesionwise2023_below_threshold']}), panoptica tp/fp/fn {et['panoptica_tp']}/"
          f"{et['panoptica_fp']}/{et['panoptica_fn']}; median of {args.rounds} rounds")
    for name, fn in funcs.items():
        print(f"{name:40} {median_seconds(fn, args.rounds):7.3f} s per case")
    for row in rows:
        print(f"  {row['region']}: legacy Dice {row['dice']:.4f} HD95 {row['hd95_mm']:.3f}; "
              f"lesionwise2023 Dice {row['lesionwise2023_dice']:.4f} HD95 "
              f"{row['lesionwise2023_hd95_mm']:.3f}; panoptica DSC {row['panoptica_dsc']:.4f} "
              f"RQ {row['panoptica_rq']:.4f} HD95 {row['panoptica_hd95_mm']:.3f}")


if __name__ == "__main__":
    main()
