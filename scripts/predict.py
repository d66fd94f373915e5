"""Snakemake job: segment a batch of subjects with one model (or its folds and their ensemble),
loaded once, in the inputs' geometry."""
import time

started = time.time()  # the job's start-up, imports included, is measured from here

import _bootstrap  # noqa: E402, F401  (the package, also in a conda job environment)
from brats_unet.logs import job_log  # noqa: E402

# The back end's start-up messages land in the job's log: import it inside.
with job_log(snakemake.log[0]) as log:
    from brats_unet.runtime import limit_threads, resolve_backend

    backend = resolve_backend(snakemake.params.backend)  # sets KERAS_BACKEND, before Keras
    from brats_unet.segment import predict_batch

    limit_threads(snakemake.threads)  # the job's share of the CPUs, not the machine's
    record = predict_batch(
        dict(zip(snakemake.params.members, snakemake.input.models, strict=True)),
        snakemake.params.plan,
        snakemake.input.cases,
        snakemake.output.batch,
        ensemble=snakemake.params.ensemble,
        patch_size=snakemake.params.patch_size,
        label_convention=snakemake.params.label_convention,
        backend_reason=backend.reason,
        started=started,
        **snakemake.params.inference,
    )
    for subject, seconds in record["case_seconds"].items():
        log.info("%s / %s: %.2f s%s", snakemake.wildcards.model, subject, seconds,
                 " FAILED" if subject in record["failed"] else "")
    log.info("%s, %s: %d subjects in %.1f s, %.1f s of it start-up (back end %s)",
             snakemake.wildcards.model, snakemake.wildcards.batch, len(record["subjects"]),
             record["job_seconds"], record["startup_seconds"], backend.backend)
