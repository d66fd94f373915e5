# Prediction per (model, subject) into the input's geometry, scoring per model, the tables.


rule predict:
    input:
        model=lambda wildcards: model_file(wildcards.model),
        case="results/preprocessed/{subject}",
    output:
        segmentation="results/predictions/{model}/{subject}.nii.gz",
        timing="results/predictions/{model}/{subject}.json",
    log:
        "logs/predict/{model}/{subject}.log",
    benchmark:
        "benchmarks/predict/{model}/{subject}.tsv"
    conda:
        ENV
    threads: config["inference_resources"]["threads"]
    resources:
        gpu=config["inference_resources"]["gpu"],
        mem_mb=config["inference_resources"]["mem_mb"],
        runtime=config["inference_resources"]["runtime"],
    params:
        backend=config["backend"],
        inference=config["inference"],
        patch_size=lambda wildcards: model_patch(wildcards.model),
        label_convention=DATASET.name,
    script:
        "../../scripts/predict.py"


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
        "results/metrics/{model}.csv",
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    conda:
        ENV
    params:
        subjects=lambda wildcards: split_subjects("test"),
        label_convention=DATASET.name,
    script:
        "../../scripts/evaluate.py"


rule tables:
    input:
        metrics=expand("results/metrics/{model}.csv", model=config["model_names"]),
        summaries=every_model_file(".json"),
    output:
        per_case="results/per_case.csv",
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
