# One training job per model, or per model and fold (k-fold): only that fold's training and
# validation subjects are read.


rule train:
    input:
        split="results/split.json",
        cases=expand("results/preprocessed/{subject}", subject=sorted(SUBJECT_FILES)),
    output:
        weights=TRAINED_FILES[".keras"],
        history=TRAINED_FILES[".history.csv"],
        summary=TRAINED_FILES[".json"],
    log:
        "logs/train/{member}.log",
    benchmark:
        "benchmarks/train/{member}.tsv"
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
        architecture=lambda wildcards: architecture_of(wildcards.member),
        model=lambda wildcards: config["models"][architecture_of(wildcards.member)],
        fold=lambda wildcards: fold_of(wildcards.member),
        # Outside the declared outputs: Snakemake deletes those when a job fails.
        state_dir=lambda wildcards: f"state/train/{wildcards.member}",
    script:
        "../../scripts/train.py"
