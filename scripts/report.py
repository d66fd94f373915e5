"""Snakemake job: the HTML benchmark report and its figures."""
from pathlib import Path

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.io import atomic_path
from brats_unet.logs import job_log
from brats_unet.reporting.report import write_report

with job_log(snakemake.log[0]) as log:
    inputs, params = snakemake.input, snakemake.params
    html = write_report(
        per_case=inputs.per_case, benchmark=inputs.benchmark, comparison=inputs.comparison,
        qc=inputs.qc, histories=inputs.histories, summaries=inputs.summaries,
        lesions=inputs.lesions,
        cross_validation={name: inputs[name] for name in ("cross_validation", "cv_comparison",
                                                          "gain", "calibration", "coverage")},
        subjects=params.subjects, flair=inputs.flair, labels=inputs.labels,
        predictions=inputs.predictions, config=params.config, repo_dir=Path(params.repo_dir),
        figures_dir=Path(snakemake.output.figures), label_convention=params.label_convention,
        flair_channel=params.flair_channel,
        longitudinal=inputs.longitudinal[0] if inputs.longitudinal else None,
        longitudinal_scans=params.longitudinal_scans,
    )
    with atomic_path(snakemake.output.html) as tmp:
        tmp.write_text(html)
    log.info("report: %s (%d kB)", snakemake.output.html, len(html) // 1024)
