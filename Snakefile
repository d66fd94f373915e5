# brats-unet: a reproducible benchmark of 2D and 3D U-Nets on BraTS-format MRI.
# Run on the embedded synthetic default:   snakemake --cores 2
# Run on real data:                        snakemake --cores 8 --config data_dir=/path/to/BraTS2020
import os

from snakemake.utils import min_version

from brats_unet.config import config_problems

min_version("9.0")


configfile: workflow.source_path("config/config.yaml")


if problems := config_problems(config, workflow.source_path("config/schema.yaml")):
    raise WorkflowError("invalid configuration:\n  " + "\n  ".join(problems))


# Jobs write nothing outside the working directory: Keras' settings file and matplotlib's
# font cache go under .snakemake/ instead of the home folder (unless the user chose a place).
os.environ.setdefault("KERAS_HOME", os.path.abspath(".snakemake/keras"))
os.environ.setdefault("MPLCONFIGDIR", os.path.abspath(".snakemake/matplotlib"))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/qc/subjects.tsv",
        "results/split.json",
        every_model_file(".keras"),
        rules.tables.output,
        "reports/report.html",
        # each followed patient's change between two scans, where there are pairs
        ["results/longitudinal.csv"] if PAIRS else [],
        # subjects without a label map are predicted, not scored
        lambda wildcards: expand(
            "results/predictions/{predictor}/{subject}.nii.gz",
            predictor=[p for m in config["model_names"] for p in model_predictors(m)],
            subject=split_subjects("unlabelled"),
        ),
