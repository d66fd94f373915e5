"""Snakemake job: validate and preprocess one subject (an invalid one is recorded, not fatal)."""
import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.data.datasets import dataset
from brats_unet.data.subjects import Problem, subject_files_from_roles
from brats_unet.logs import job_log
from brats_unet.preprocessing.cases import preprocess_to_folder

with job_log(snakemake.log[0]) as log:
    roles = {role: snakemake.input[role] for role in snakemake.input.keys()}
    files = subject_files_from_roles(snakemake.wildcards.subject, roles,
                                     dataset(snakemake.params.label_convention))
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
