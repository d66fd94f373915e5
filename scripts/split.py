"""Snakemake job: the patient-level train / validation / test split."""
import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.data.qc import included_subjects, read_qc_table
from brats_unet.data.split import make_split
from brats_unet.io import write_json
from brats_unet.logs import job_log

with job_log(snakemake.log[0]) as log:
    labelled, unlabelled = included_subjects(read_qc_table(snakemake.input[0]))
    p = snakemake.params
    split = make_split(
        labelled, seed=p.seed, test_fraction=p.test_fraction,
        validation_fraction=p.validation_fraction, n_folds=p.n_folds,
        unlabelled=unlabelled, longitudinal=p.longitudinal,
    )
    write_json(split, snakemake.output[0])
    log.info("train %d, validation %d, test %d, unlabelled %d, longitudinal %d",
             len(split["train"]), len(split["validation"]), len(split["test"]),
             len(split["unlabelled"]), len(split["longitudinal"]))
