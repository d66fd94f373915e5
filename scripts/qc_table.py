"""Snakemake job: gather every subject's QC record into results/qc/subjects.tsv."""
import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.data.datasets import dataset, explain_dataset
from brats_unet.data.qc import case_notes, excluded_problems, qc_table, write_qc_table
from brats_unet.data.subjects import Problem
from brats_unet.logs import job_log
from brats_unet.preprocessing.cases import qc_record, read_qc

with job_log(snakemake.log[0]) as log:
    layout = dataset(snakemake.params.dataset)
    log.info("dataset %s (%s): %s", layout.name, layout.title,
             explain_dataset(layout.name, snakemake.params.data_dir))
    records = [read_qc(folder) for folder in snakemake.input]
    records += [qc_record(p["subject"], Problem(**p))
                for p in snakemake.params.discovery_exclusions]
    table = qc_table(records)
    write_qc_table(table, snakemake.output[0])
    for problem in excluded_problems(table):
        log.warning("excluded %s", problem)
    for subject, note in case_notes(table):
        log.warning("%s: %s", subject, note)
    log.info("%d subjects, %d excluded", len(table), int((table["status"] == "excluded").sum()))
