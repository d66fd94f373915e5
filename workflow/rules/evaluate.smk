# Prediction in batches of subjects per model, into the inputs' geometry; scoring per model; the
# tables.


rule predict_batch:
    input:
        models=lambda wildcards: every_model_file(".keras", [wildcards.model]),
        cases=lambda wildcards: expand(
            "results/preprocessed/{subject}", subject=batch_subjects(wildcards.batch)
        ),
    output:
        batch=directory("results/prediction_batches/{model}/{batch}"),
    log:
        "logs/predict/{model}/{batch}.log",
    benchmark:
        "benchmarks/predict/{model}/{batch}.tsv"
    conda:
        ENV
    threads: config["inference_resources"]["threads"]
    resources:
        gpu=config["inference_resources"]["gpu"],
        mem_mb=config["inference_resources"]["mem_mb"],
        runtime=config["inference_resources"]["runtime"],
    params:
        backend=config["backend"],
        inference=INFERENCE,
        patch_size=lambda wildcards: model_patch(wildcards.model),
        label_convention=DATASET.name,
        members=lambda wildcards: members(wildcards.model),
        # the batch's members and which folds predict each: another split changes them, and
        # Snakemake predicts it again
        plan=lambda wildcards: batch_plan(wildcards.model, wildcards.batch),
        ensemble=lambda wildcards: f"{wildcards.model}.{ENSEMBLE}" if N_FOLDS > 1 else None,
    script:
        "../../scripts/predict.py"


# Each subject's prediction in its own place, from its batch's folder: a local job that takes
# milliseconds, and fails with the reason where the batch job could not predict this subject.
rule predict:
    input:
        batch=lambda wildcards: "results/prediction_batches/"
        f"{architecture_of(wildcards.predictor)}/{batch_of(wildcards.subject)}",
    output:
        segmentation="results/predictions/{predictor}/{subject}.nii.gz",
        timing="results/predictions/{predictor}/{subject}.json",
    log:
        "logs/predict/{predictor}/{subject}.log",
    localrule: True
    run:
        take_from_batch(
            input.batch,
            wildcards.subject,
            wildcards.predictor,
            output.segmentation,
            output.timing,
        )
        Path(log[0]).write_text(f"{wildcards.subject}: taken from {input.batch}\n")


# Scores per model: the test subjects by each predictor (its folds and their ensemble), and the
# validation subjects (out of fold with k-fold) that calibrate the volume intervals.
rule evaluate:
    input:
        segmentations=test_predictions(".nii.gz"),
        timings=test_predictions(".json"),
        labels=lambda wildcards: [label_file(s) for s in split_subjects("test")],
        calibration_segmentations=calibration_predictions(".nii.gz"),
        calibration_timings=calibration_predictions(".json"),
        calibration_labels=lambda wildcards: [label_file(s) for s in calibration_subjects()],
        summaries=lambda wildcards: every_model_file(".json", [wildcards.model]),
    output:
        per_case="results/metrics/{model}.csv",
        lesions="results/lesions/{model}.csv",
        calibration="results/out_of_fold/{model}.csv",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    conda:
        ENV
    params:
        subjects=lambda wildcards: split_subjects("test"),
        calibration_subjects=lambda wildcards: calibration_subjects(),
        cases="out-of-fold" if N_FOLDS > 1 else "validation",
        label_convention=DATASET.name,
        dialects=config["evaluation"]["dialects"],
        challenge=config["evaluation"]["challenge"],
    script:
        "../../scripts/evaluate.py"


rule tables:
    input:
        metrics=expand("results/metrics/{model}.csv", model=config["model_names"]),
        lesions=expand("results/lesions/{model}.csv", model=config["model_names"]),
        calibration=expand("results/out_of_fold/{model}.csv", model=config["model_names"]),
        summaries=every_model_file(".json"),
    output:
        per_case="results/per_case.csv",
        fold_test="results/fold_test.csv",
        lesions="results/lesions.csv",
        benchmark="results/benchmark.csv",
        comparison="results/comparison.csv",
        out_of_fold="results/out_of_fold.csv",
        cross_validation="results/cross_validation.csv",
        cross_validation_comparison="results/cross_validation_comparison.csv",
        ensemble_gain="results/ensemble_gain.csv",
        volume_calibration="results/volume_calibration.csv",
        volume_coverage="results/volume_coverage.csv",
        metrics_json="results/metrics.json",
    log:
        "logs/tables.log",
    benchmark:
        "benchmarks/tables.tsv"
    conda:
        ENV
    params:
        bootstrap_samples=config["evaluation"]["bootstrap_samples"],
        seed=config["evaluation"]["seed"],
        volume_intervals=config["evaluation"]["volume_intervals"],
        # each scan's rule for a longitudinal change too, where there are pairs
        change_coverage=config["longitudinal"]["coverage"] if PAIRS else None,
    script:
        "../../scripts/tables.py"


# Each followed patient's change between two scans, per model's headline predictor, with the
# intervals of the volume calibration's change rules.
rule longitudinal:
    input:
        segmentations=lambda wildcards: list(longitudinal_scans().values()),
        labels=lambda wildcards: list(longitudinal_labels().values()),
        calibration="results/volume_calibration.csv",
    output:
        "results/longitudinal.csv",
    log:
        "logs/longitudinal.log",
    benchmark:
        "benchmarks/longitudinal.tsv"
    conda:
        ENV
    params:
        pairs=PAIRS,
        scans=lambda wildcards: [[*key, path] for key, path in longitudinal_scans().items()],
        labels=lambda wildcards: longitudinal_labels(),
        thresholds={k: config["longitudinal"][k] for k in ("progression_ratio", "response_ratio")},
        label_convention=DATASET.name,
        models=config["model_names"],
    script:
        "../../scripts/longitudinal.py"
