# The benchmark report: one self-contained HTML page, its figures as PNG too.


rule report:
    input:
        per_case="results/per_case.csv",
        lesions="results/lesions.csv",
        benchmark="results/benchmark.csv",
        comparison="results/comparison.csv",
        cross_validation="results/cross_validation.csv",
        cv_comparison="results/cross_validation_comparison.csv",
        gain="results/ensemble_gain.csv",
        calibration="results/volume_calibration.csv",
        coverage="results/volume_coverage.csv",
        qc="results/qc/subjects.tsv",
        split="results/split.json",
        longitudinal=["results/longitudinal.csv"] if PAIRS else [],
        longitudinal_segmentations=lambda wildcards: list(longitudinal_scans().values()),
        longitudinal_flair=lambda wildcards: [
            str(SUBJECT_FILES[s].images["flair"]) for s in split_subjects("longitudinal")
        ],
        histories=every_model_file(".history.csv"),
        summaries=every_model_file(".json"),
        flair=lambda wildcards: [
            str(SUBJECT_FILES[s].images["flair"]) for s in split_subjects("test")
        ],
        labels=lambda wildcards: [label_file(s) for s in split_subjects("test")],
        # each model's headline predictor: the model, or its fold ensemble
        predictions=lambda wildcards: expand(
            "results/predictions/{predictor}/{subject}.nii.gz",
            predictor=[headline_predictor(m) for m in config["model_names"]],
            subject=split_subjects("test"),
        ),
    output:
        html=report(
            "reports/report.html",
            caption="../report/report.rst",
            category="Benchmark report",
        ),
        figures=report(
            directory("reports/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        ENV
    params:
        config=config,
        subjects=lambda wildcards: split_subjects("test"),
        label_convention=DATASET.name,
        # the Decathlon's images hold every contrast: the FLAIR is one channel of them
        flair_channel=DATASET.channel_of().get("flair"),
        repo_dir=workflow.basedir,
        longitudinal_scans=lambda wildcards: longitudinal_report_scans(),
    script:
        "../../scripts/report.py"
