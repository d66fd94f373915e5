"""Snakemake job: validate and preprocess one subject (an invalid one is recorded, not fatal)."""
from pathlib import Path

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.data.subjects import CONTRASTS, Problem, SubjectFiles
from brats_unet.logs import job_log
from brats_unet.preprocessing.cases import preprocess_to_folder

with job_log(snakemake.log[0]) as log:
    inputs = snakemake.input
    files = SubjectFiles(
        subject=snakemake.wildcards.subject,
        images={c: Path(inputs[c]) for c in CONTRASTS},
        label=Path(inputs["seg"]) if "seg" in inputs.keys() else None,
    )
    record = preprocess_to_folder(
        files,
        snakemake.output[0],
        label_convention=snakemake.params.label_convention,
        affine_atol_mm=snakemake.params.affine_atol_mm,
    )
    if record["status"] == "included":
        log.info("%s: preprocessed into %s", files.subject, snakemake.output[0])
        if record["note"]:
            log.warning("%s: %s", files.subject, record["note"])
    else:
        # the same line as in logs/qc_table.log and the QC table's row
        log.warning("excluded %s", Problem(files.subject, record["file"], record["problem"]))
