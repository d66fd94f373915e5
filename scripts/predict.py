"""Snakemake job: segment one subject with one model, in the input's geometry."""
import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.logs import job_log

# The back end's start-up messages land in the job's log: import it inside.
with job_log(snakemake.log[0]) as log:
    from brats_unet.runtime import limit_threads, resolve_backend

    backend = resolve_backend(snakemake.params.backend)  # sets KERAS_BACKEND, before Keras
    from brats_unet.segment import predict_to_file

    limit_threads(snakemake.threads)  # the job's share of the CPUs, not the machine's
    timing = predict_to_file(
        snakemake.input.model,
        snakemake.input.case,
        snakemake.output.segmentation,
        snakemake.output.timing,
        patch_size=snakemake.params.patch_size,
        label_convention=snakemake.params.label_convention,
        backend_reason=backend.reason,
        **snakemake.params.inference,
    )
    log.info("%s / %s: %.2f s (back end %s)", snakemake.wildcards.model,
             snakemake.wildcards.subject, timing["predict_seconds"], timing["backend"])
