"""Does training converge at the default budget? Validation curves and test Dice of every model.

Runs the whole DAG (``snakemake --cores 2``, the default config) in a fresh working directory
on the demo's synthetic cases, with ``synthetic.anatomy`` set by ``--anatomy`` (``mni152``: the
tumours grown in the MNI152 template's white matter, the harder set) and any further
``--configfile``. Then prints, per model, the validation WT Dice of every epoch (from
``results/models/<model>.history.csv``), how much it still moves in the run's second half (the
largest fall from one epoch to the next, and the spread of the last four epochs), the epoch kept
and the test set's mean Dice per region (``results/benchmark.csv``).

    .venv/bin/python bench/convergence.py --anatomy mni152   # 18-21 min, 2 cores of the AVX2 EPYC
    .venv/bin/python bench/convergence.py --anatomy cartoon --keep /tmp/c
    .venv/bin/python bench/convergence.py --anatomy mni152 --configfile my.yaml --seed 7
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from brats_unet.training.summary import curve_settling

from timing import run_dag  # bench/ is sys.path[0] when this file runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--anatomy", choices=("cartoon", "mni152"), default="mni152")
    parser.add_argument("--seed", type=int, help="synthetic.seed (the cases) and training.seed")
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="further config overlays, after the anatomy")
    parser.add_argument("--keep", type=Path, help="working directory to use and keep")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="convergence-"))
    workdir.mkdir(parents=True, exist_ok=True)
    overlay = workdir / "convergence.yaml"
    seed = "" if args.seed is None else f", seed: {args.seed}"
    training = "" if args.seed is None else f"\ntraining: {{seed: {args.seed}}}"
    overlay.write_text(f"synthetic: {{anatomy: {args.anatomy}{seed}}}{training}\n")
    wall = run_dag(workdir, [overlay, *args.configfile])

    benchmark = pd.read_csv(workdir / "results/benchmark.csv")
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"whole DAG: {wall:.0f} s wall, --cores 2")
    print("| model | validation WT Dice by epoch | largest late fall | last-4 spread "
          "| best epoch | test WT / TC / ET |")
    print("|---|---|---|---|---|---|")
    for history in sorted((workdir / "results/models").glob("*.history.csv")):
        model = history.name.split(".")[0]
        table = pd.read_csv(history)
        curve = [float(v) for v in table["val_dice_wt"]]
        figures = curve_settling(curve)
        best = int(table["val_dice_mean"].idxmax()) + 1
        test = benchmark[benchmark["model"] == model].set_index("region")["dice_mean"]
        print(f"| {model} | {' '.join(f'{v:.2f}' for v in curve)} | "
              f"{figures['largest_late_fall']:.2f} | {figures['last_spread']:.2f} | {best} | "
              f"{test['WT']:.3f} / {test['TC']:.3f} / {test['ET']:.3f} |")
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
