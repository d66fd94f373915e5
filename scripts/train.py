"""Snakemake job: train one model (or one fold of it) on its training subjects, choosing its
checkpoint on its validation subjects."""
from pathlib import Path

import _bootstrap  # noqa: F401  (the package, also in a conda job environment)
from brats_unet.logs import job_log

# The back end's start-up messages land in the job's log: import it inside.
with job_log(snakemake.log[0]) as log:
    from brats_unet.runtime import limit_threads, resolve_backend

    backend = resolve_backend(snakemake.params.backend)  # sets KERAS_BACKEND, before Keras
    from brats_unet.data.split import fold_subjects
    from brats_unet.io import read_json
    from brats_unet.training.settings import settings_for
    from brats_unet.training.train import train_model

    limit_threads(snakemake.threads)  # the job's share of the CPUs, not the machine's
    log.info("back end %s (%s)", backend.backend, backend.reason)
    model = snakemake.params.architecture
    train, validation = fold_subjects(read_json(snakemake.input.split), snakemake.params.fold)
    cases = {Path(folder).name: Path(folder) for folder in snakemake.input.cases}
    summary = train_model(
        model,
        settings_for(model, snakemake.params.training, snakemake.params.model),
        train_dirs=[cases[s] for s in train],
        validation_dirs=[cases[s] for s in validation],
        weights_path=Path(snakemake.output.weights),
        history_path=Path(snakemake.output.history),
        summary_path=Path(snakemake.output.summary),
        state_dir=Path(snakemake.params.state_dir),
        backend_reason=backend.reason,
    )
    log.info("%s: best epoch %d, validation Dice %s, %.0f s", snakemake.wildcards.member,
             summary.best_epoch, summary.best_val_dice, summary.training_seconds_total)
