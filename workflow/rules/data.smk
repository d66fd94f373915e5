# Synthetic BraTS-format cases: the embedded default when config data_dir is empty.


rule synthesize_subject:
    output:
        **{
            role: f"{SYNTHETIC_DIR}/{{subject}}/{{subject}}_{role}.nii.gz"
            for role in (*CONTRASTS, "seg")
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
    script:
        "../../scripts/synthesize.py"
