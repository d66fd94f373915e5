# Per-subject validation and preprocessing, the QC table and the patient-level split.


rule preprocess:
    input:
        unpack(subject_inputs),
    output:
        directory("results/preprocessed/{subject}"),
    log:
        "logs/preprocess/{subject}.log",
    benchmark:
        "benchmarks/preprocess/{subject}.tsv"
    conda:
        ENV
    resources:
        mem_mb=config["preprocess_resources"]["mem_mb"],
    params:
        label_convention=DATASET.name,
        affine_atol_mm=config["validation"]["affine_atol_mm"],
    script:
        "../../scripts/preprocess.py"


rule qc_table:
    input:
        expand("results/preprocessed/{subject}", subject=sorted(SUBJECT_FILES)),
    output:
        report(
            "results/qc/subjects.tsv",
            caption="../report/qc.rst",
            category="Quality control",
        ),
    log:
        "logs/qc_table.log",
    benchmark:
        "benchmarks/qc_table.tsv"
    conda:
        ENV
    params:
        discovery_exclusions=discovery_exclusions(),
        # the reason is worked out in the job from the data, so spelling out what auto chose
        # re-runs nothing
        dataset=DATASET.name,
        data_dir=config["data_dir"],
    script:
        "../../scripts/qc_table.py"


checkpoint split:
    input:
        "results/qc/subjects.tsv",
    output:
        "results/split.json",
    log:
        "logs/split.log",
    benchmark:
        "benchmarks/split.tsv"
    conda:
        ENV
    params:
        **config["split"],
        # scans of followed patients: predicted only, never trained, validated or tested on
        longitudinal=PAIR_SUBJECTS,
    script:
        "../../scripts/split.py"
