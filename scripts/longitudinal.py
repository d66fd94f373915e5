"""Snakemake job: each followed patient's change between two scans (results/longitudinal.csv)."""
import pandas as pd

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.evaluation.intervals import rules_for
from brats_unet.evaluation.longitudinal import (
    ChangeThresholds,
    change_table,
    file_volumes,
    volume_rows,
)
from brats_unet.io import atomic_path
from brats_unet.logs import job_log

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    # each scan's truth once, whatever the number of models
    truth = {subject: file_volumes(subject, path, label_convention=p.label_convention)
             for subject, path in p.labels.items()}
    rows = [row for model, subject, path in p.scans
            for row in volume_rows(model, subject, file_volumes(
                subject, path, label_convention=p.label_convention), truth.get(subject, {}))]
    volumes = pd.DataFrame(rows, columns=["model", "subject", "region", "volume_pred_ml",
                                          "volume_true_ml"])
    table = change_table(pd.DataFrame(p.pairs), volumes,
                         rules_for(pd.read_csv(snakemake.input.calibration), "change"),
                         thresholds=ChangeThresholds(**p.thresholds), models=p.models)
    with atomic_path(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False)
    log.info("longitudinal change of %d pairs:\n%s", len(p.pairs), table.get(
        ["model", "patient", "region", "ratio", "ratio_low", "ratio_high", "call"], table))
