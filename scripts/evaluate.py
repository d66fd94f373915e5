"""Snakemake job: score one model's predictions on their original grid: the test subjects by each
of its predictors (folds, ensemble), and the validation subjects that calibrate its volume
intervals (out of fold with k-fold)."""
from collections import defaultdict
from pathlib import Path

import pandas as pd

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.evaluation.dialect_scores import EvaluationSettings
from brats_unet.evaluation.scoring import evaluate_model
from brats_unet.io import atomic_path
from brats_unet.logs import job_log
from brats_unet.training.summary import read_training_summary
from brats_unet.training.weights import check_held_out, check_out_of_fold


def by_predictor(paths):
    """results/predictions/<predictor>/<subject>.<ext> -> {predictor: [paths]}, in input order."""
    grouped = defaultdict(list)
    for path in map(Path, paths):
        grouped[path.parent.name].append(str(path))
    return grouped


with job_log(snakemake.log[0]) as log:
    inputs, params = snakemake.input, snakemake.params
    summaries = {Path(p).name.removesuffix(".json"): read_training_summary(p)
                 for p in inputs.summaries}
    for member, summary in summaries.items():
        check_held_out(member, summary, params.subjects)
    calibration = params.calibration_subjects  # subject -> the fold that predicts it
    for fold, (member, summary) in enumerate(summaries.items()):  # in fold order
        check_out_of_fold(member, summary, [s for s, f in calibration.items() if f == fold])
    settings = EvaluationSettings(tuple(params.dialects), params.challenge)
    segmentations, timings = by_predictor(inputs.segmentations), by_predictor(inputs.timings)
    tables, lesion_tables = [], []
    for predictor in segmentations:
        table, lesions = evaluate_model(
            predictor, params.subjects, segmentations[predictor], inputs.labels,
            timings[predictor], label_convention=params.label_convention, settings=settings)
        tables.append(table)
        lesion_tables.append(lesions)
    # the calibration cases need volumes, Dice and HD95 only: the legacy dialect
    oof, _ = evaluate_model(
        snakemake.wildcards.model, list(calibration), inputs.calibration_segmentations,
        inputs.calibration_labels, inputs.calibration_timings,
        label_convention=params.label_convention, settings=EvaluationSettings(("legacy",)))
    oof.insert(1, "fold", oof["subject"].map(calibration))
    oof.insert(2, "cases", params.cases)
    table, lesions = pd.concat(tables, ignore_index=True), pd.concat(lesion_tables,
                                                                    ignore_index=True)
    for frame, path in ((table, snakemake.output.per_case), (lesions, snakemake.output.lesions),
                        (oof, snakemake.output.calibration)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    log.info("%s: %d test rows by %s, %d %s rows; mean test Dice by predictor and region:\n%s",
             snakemake.wildcards.model, len(table), ", ".join(segmentations), len(oof),
             params.cases, table.groupby(["model", "region"])["dice"].mean().round(3))
