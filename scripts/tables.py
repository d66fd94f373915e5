"""Snakemake job: the per-case table, the benchmark table, the paired comparison, metrics.json."""
import pandas as pd

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.evaluation.scoring import build_tables
from brats_unet.io import atomic_path, write_json
from brats_unet.logs import job_log
from brats_unet.training.summary import read_training_summary

with job_log(snakemake.log[0]) as log:
    summaries = {s.model: s for s in map(read_training_summary, snakemake.input.summaries)}
    per_case, benchmark, comparison, metrics = build_tables(
        [pd.read_csv(path) for path in snakemake.input.metrics], summaries,
        bootstrap_samples=snakemake.params.bootstrap_samples, seed=snakemake.params.seed,
    )
    lesions = pd.concat([pd.read_csv(path) for path in snakemake.input.lesions],
                        ignore_index=True)
    for table, path in ((per_case, snakemake.output.per_case), (lesions, snakemake.output.lesions),
                        (benchmark, snakemake.output.benchmark),
                        (comparison, snakemake.output.comparison)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    write_json(metrics, snakemake.output.metrics_json)
    log.info("benchmark:\n%s", benchmark[["model", "region", "dice_mean", "hd95_mm_mean"]])
