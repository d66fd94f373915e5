# Synthetic BraTS-format cases: the embedded default when config data_dir is empty.


rule synthesize_subject:
    output:
        **{
            role: str(path)
            for role, path in raw_subject_files(SYNTHETIC_DIR, "{subject}", dataset=DATASET)
            .distinct_files()
            .items()
        },
    log:
        "logs/synthesize/{subject}.log",
    benchmark:
        "benchmarks/synthesize/{subject}.tsv"
    conda:
        ENV
    params:
        seed=config["synthetic"]["seed"],
        shape=config["synthetic"]["shape"],
        spacing_mm=config["synthetic"]["spacing_mm"],
        no_et_probability=config["synthetic"]["no_et_probability"],
        anatomy=config["synthetic"]["anatomy"],
        dataset=DATASET.name,
        # a longitudinal pair's follow-up: how it differs from its baseline (else None)
        follow_up=lambda wildcards: FOLLOW_UP_PLANS.get(wildcards.subject),
    script:
        "../../scripts/synthesize.py"
