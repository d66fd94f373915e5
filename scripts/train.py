"""Snakemake job: train one model on the training subjects, choosing its checkpoint on validation."""
import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.runtime import resolve_backend

backend = resolve_backend(snakemake.params.backend)  # sets KERAS_BACKEND: before Keras is imported

from pathlib import Path  # noqa: E402

from brats_unet.io import read_json  # noqa: E402
from brats_unet.logs import job_log  # noqa: E402
from brats_unet.runtime import limit_threads  # noqa: E402
from brats_unet.training.settings import settings_for  # noqa: E402
from brats_unet.training.train import train_model  # noqa: E402

with job_log(snakemake.log[0]) as log:
    limit_threads(snakemake.threads)  # the job's share of the CPUs, not the machine's
    log.info("back end %s (%s)", backend.backend, backend.reason)
    model = snakemake.wildcards.model
    split = read_json(snakemake.input.split)
    cases = {Path(folder).name: Path(folder) for folder in snakemake.input.cases}
    summary = train_model(
        model,
        settings_for(model, snakemake.params.training, snakemake.params.model),
        train_dirs=[cases[s] for s in split["train"]],
        validation_dirs=[cases[s] for s in split["validation"]],
        weights_path=Path(snakemake.output.weights),
        history_path=Path(snakemake.output.history),
        summary_path=Path(snakemake.output.summary),
        state_dir=Path(snakemake.params.state_dir),
        backend_reason=backend.reason,
    )
    log.info("%s: best epoch %d, validation Dice %s, %.0f s", model, summary.best_epoch,
             summary.best_val_dice, summary.training_seconds_total)
