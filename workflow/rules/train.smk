# One training job per model; only the training and validation subjects are read.


rule train:
    input:
        split="results/split.json",
        cases=expand("results/preprocessed/{subject}", subject=sorted(SUBJECT_FILES)),
    output:
        weights=TRAINED_FILES[".keras"],
        history=TRAINED_FILES[".history.csv"],
        summary=TRAINED_FILES[".json"],
    log:
        "logs/train/{model}.log",
    benchmark:
        "benchmarks/train/{model}.tsv"
    conda:
        ENV
    threads: config["train_resources"]["threads"]
    resources:
        gpu=config["train_resources"]["gpu"],
        mem_mb=config["train_resources"]["mem_mb"],
        runtime=config["train_resources"]["runtime"],
    params:
        backend=config["backend"],
        training=config["training"],
        model=lambda wildcards: config["models"][wildcards.model],
        # Outside the declared outputs: Snakemake deletes those when a job fails.
        state_dir=lambda wildcards: f"state/train/{wildcards.model}",
    script:
        "../../scripts/train.py"
