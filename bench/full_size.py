"""The DAG on four synthetic cases at BraTS's full size: every rule's peak memory and time.

Runs ``snakemake --cores 2 --configfile config/presets/cpu.yaml bench/full_size.yaml`` in a
fresh working directory: four 240 x 240 x 155, 1 mm synthetic cases; the CPU preset's
networks, patches and resources; training cut to 2 epochs of 2 steps. Then reads what
Snakemake's ``benchmark:`` files recorded for each job (``max_rss``, seconds) and prints,
per rule, the jobs, the largest ``max_rss``, the rule's ``mem_mb`` in that config and the
seconds; then prediction's seconds per case and start-up, and training's validation seconds.

    .venv/bin/python bench/full_size.py                 # about 10 minutes on 2 cores
    .venv/bin/python bench/full_size.py --keep /tmp/fs  # keep the working directory
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

from timing import run_dag  # bench/ is sys.path[0] when this file runs

REPO = Path(__file__).resolve().parent.parent
CONFIGS = (REPO / "config/presets/cpu.yaml", REPO / "bench/full_size.yaml")


def rule_figures(workdir: Path) -> pd.DataFrame:
    """One row per job: its rule (the benchmark file's first folder: ``predict/`` holds
    predict_batch's, ``synthesize/`` synthesize_subject's), max_rss (MB), seconds."""
    rows = []
    for tsv in sorted((workdir / "benchmarks").rglob("*.tsv")):
        table = pd.read_csv(tsv, sep="\t")
        rule = tsv.relative_to(workdir / "benchmarks").parts[0].removesuffix(".tsv")
        rows.append({"rule": rule, "job": str(tsv.relative_to(workdir / "benchmarks")),
                     "max_rss_mb": float(table["max_rss"].max()), "seconds": float(table["s"].max())})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, help="working directory to use and keep")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="full-size-"))
    workdir.mkdir(parents=True, exist_ok=True)
    wall = run_dag(workdir, CONFIGS)
    jobs = rule_figures(workdir)
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"whole DAG: {wall:.0f} s wall, --cores 2")
    print("| rule | jobs | max_rss, largest (MB) | seconds, median (max) |")
    print("|---|---|---|---|")
    for rule, group in jobs.groupby("rule", sort=False):
        print(f"| `{rule}` | {len(group)} | {group['max_rss_mb'].max():,.0f} | "
              f"{group['seconds'].median():.1f} ({group['seconds'].max():.1f}) |")
    print("per job:")
    for row in jobs.itertuples():
        print(f"  {row.job:60} {row.max_rss_mb:8,.0f} MB {row.seconds:8.1f} s")
    for batch in sorted((workdir / "results/prediction_batches").glob("*/*/job.json")):
        record = json.loads(batch.read_text())
        cases = ", ".join(f"{s} {t:.1f} s" for s, t in record["case_seconds"].items())
        print(f"prediction {batch.parent.parent.name}: start-up {record['startup_seconds']:.1f} s;"
              f" {cases}")
    for history in sorted((workdir / "results/models").glob("*.history.csv")):
        table = pd.read_csv(history)
        print(f"training {history.name.split('.')[0]}: epochs {list(table['epoch_seconds'].round(1))}"
              f" s, of them validating {list(table['validation_seconds'].round(1))} s")
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
