"""Snakemake job: write one synthetic BraTS-format subject."""
from pathlib import Path

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.data.datasets import dataset
from brats_unet.data.synthetic import generate_case, subject_index, write_raw_case
from brats_unet.logs import job_log

with job_log(snakemake.log[0]) as log:
    subject = snakemake.wildcards.subject
    layout = dataset(snakemake.params.dataset)
    index = subject_index(subject, layout)
    case = generate_case(
        seed=snakemake.params.seed,
        index=index,
        shape=tuple(snakemake.params.shape),
        spacing_mm=tuple(snakemake.params.spacing_mm),
        no_et_probability=snakemake.params.no_et_probability,
        anatomy=snakemake.params.anatomy,
    )
    written = write_raw_case(case, Path(snakemake.output.flair).parent.parent, subject, layout)
    log.info("wrote %s (enhancing tumour: %s): %s", subject, case.has_enhancing,
             ", ".join(str(p) for p in written.values()))
