"""Snakemake job: score one model's predictions of the test subjects on their original grid."""
import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.evaluation.dialect_scores import EvaluationSettings
from brats_unet.evaluation.scoring import evaluate_model
from brats_unet.io import atomic_path
from brats_unet.logs import job_log
from brats_unet.training.summary import read_training_summary
from brats_unet.training.weights import check_held_out

with job_log(snakemake.log[0]) as log:
    check_held_out(snakemake.wildcards.model, read_training_summary(snakemake.input.summary),
                   snakemake.params.subjects)
    settings = EvaluationSettings(tuple(snakemake.params.dialects), snakemake.params.challenge)
    table, lesions = evaluate_model(
        snakemake.wildcards.model,
        snakemake.params.subjects,
        snakemake.input.segmentations,
        snakemake.input.labels,
        snakemake.input.timings,
        label_convention=snakemake.params.label_convention,
        settings=settings,
    )
    for frame, path in ((table, snakemake.output.per_case), (lesions, snakemake.output.lesions)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    log.info("%s: %d rows, mean Dice by region %s", snakemake.wildcards.model, len(table),
             table.groupby("region")["dice"].mean().round(3).to_dict())
