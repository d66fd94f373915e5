# Prediction in batches of subjects per model, into the inputs' geometry; scoring per model; the
# tables.


rule predict_batch:
    input:
        model=lambda wildcards: model_file(wildcards.model),
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
        # the batch's members: another split changes them, and Snakemake predicts it again
        subjects=lambda wildcards: batch_subjects(wildcards.batch),
    script:
        "../../scripts/predict.py"


# Each subject's prediction in its own place, from its batch's folder: a local job that takes
# milliseconds, and fails with the reason where the batch job could not predict this subject.
rule predict:
    input:
        batch=lambda wildcards: f"results/prediction_batches/{wildcards.model}/"
        f"{batch_of(wildcards.subject)}",
    output:
        segmentation="results/predictions/{model}/{subject}.nii.gz",
        timing="results/predictions/{model}/{subject}.json",
    log:
        "logs/predict/{model}/{subject}.log",
    localrule: True
    run:
        take_from_batch(
            input.batch, wildcards.subject, wildcards.model, output.segmentation, output.timing
        )
        Path(log[0]).write_text(f"{wildcards.subject}: taken from {input.batch}\n")


rule evaluate:
    input:
        segmentations=lambda wildcards: expand(
            "results/predictions/{model}/{subject}.nii.gz",
            model=wildcards.model,
            subject=split_subjects("test"),
        ),
        timings=lambda wildcards: expand(
            "results/predictions/{model}/{subject}.json",
            model=wildcards.model,
            subject=split_subjects("test"),
        ),
        labels=lambda wildcards: [label_file(s) for s in split_subjects("test")],
        summary=lambda wildcards: model_file(wildcards.model, ".json"),
    output:
        per_case="results/metrics/{model}.csv",
        lesions="results/lesions/{model}.csv",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    conda:
        ENV
    params:
        subjects=lambda wildcards: split_subjects("test"),
        label_convention=DATASET.name,
        dialects=config["evaluation"]["dialects"],
        challenge=config["evaluation"]["challenge"],
    script:
        "../../scripts/evaluate.py"


rule tables:
    input:
        metrics=expand("results/metrics/{model}.csv", model=config["model_names"]),
        lesions=expand("results/lesions/{model}.csv", model=config["model_names"]),
        summaries=every_model_file(".json"),
    output:
        per_case="results/per_case.csv",
        lesions="results/lesions.csv",
        benchmark="results/benchmark.csv",
        comparison="results/comparison.csv",
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
    script:
        "../../scripts/tables.py"
