"""Snakemake job: every table of the run (per case, per fold, benchmark, paired comparisons, out of
fold, volume intervals and their coverage) and metrics.json."""
from pathlib import Path

import pandas as pd

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.evaluation.scoring import IntervalSettings, build_tables
from brats_unet.io import atomic_path, write_json
from brats_unet.logs import job_log
from brats_unet.training.summary import read_training_summary

with job_log(snakemake.log[0]) as log:
    summaries = {Path(p).name.removesuffix(".json"): read_training_summary(p)
                 for p in snakemake.input.summaries}
    tables = build_tables(
        [pd.read_csv(path) for path in snakemake.input.metrics], summaries,
        [pd.read_csv(path) for path in snakemake.input.calibration],
        intervals=IntervalSettings(**snakemake.params.volume_intervals,
                                   change_coverage=snakemake.params.change_coverage),
        bootstrap_samples=snakemake.params.bootstrap_samples, seed=snakemake.params.seed,
    )
    tables["lesions"] = pd.concat([pd.read_csv(path) for path in snakemake.input.lesions],
                                  ignore_index=True)
    for name, path in snakemake.output.items():
        if name == "metrics_json":
            write_json(tables["metrics"], path)
            continue
        with atomic_path(path) as tmp:
            tables[name].to_csv(tmp, index=False)
    log.info("benchmark:\n%s", tables["benchmark"][["predictor", "region", "dice_mean",
                                                    "hd95_mm_mean"]])
    log.info("volume intervals, test coverage:\n%s", tables["volume_coverage"])
