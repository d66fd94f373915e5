"""Snakemake job: write one synthetic BraTS-format subject (or a longitudinal pair's follow-up)."""
from pathlib import Path

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.data.datasets import dataset
from brats_unet.data.synthetic import generate_case, subject_index, write_raw_case
from brats_unet.data.synthetic.longitudinal import FollowUp, generate_follow_up
from brats_unet.logs import job_log

with job_log(snakemake.log[0]) as log:
    subject, p = snakemake.wildcards.subject, snakemake.params
    layout = dataset(p.dataset)
    grid = {"shape": tuple(p.shape), "spacing_mm": tuple(p.spacing_mm),
            "no_et_probability": p.no_et_probability, "anatomy": p.anatomy}
    if p.follow_up:
        plan = FollowUp(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in p.follow_up.items()})
        case = generate_follow_up(plan, seed=p.seed, **grid)
        log.info("%s: follow-up of subject %d, tumour volume x%g", subject, plan.baseline_index,
                 plan.factor)
    else:
        case = generate_case(seed=p.seed, index=subject_index(subject, layout), **grid)
    written = write_raw_case(case, Path(snakemake.output.flair).parent.parent, subject, layout)
    log.info("wrote %s (enhancing tumour: %s): %s", subject, case.has_enhancing,
             ", ".join(str(p) for p in written.values()))
