# The subject table, computed once when the workflow is parsed, and input functions.
import json
import os
from dataclasses import asdict
from pathlib import Path

from brats_unet.data.datasets import resolve_dataset
from brats_unet.data.pairs import pair_subjects, read_pairs
from brats_unet.data.split import (
    ENSEMBLE,
    architecture_of,
    fold_members,
    out_of_fold,
    prediction_plan,
    predictors,
)
from brats_unet.data.subjects import (
    SUBJECT_PATTERN,
    discover_subjects,
    expected_layout,
    raw_subject_files,
)
from brats_unet.data.synthetic import subject_name
from brats_unet.data.synthetic.longitudinal import pair_rows, plan_follow_ups
from brats_unet.inference.batches import take_from_batch
from brats_unet.training.summary import read_training_summary
from brats_unet.training.weights import missing_files, model_files

SYNTHETIC_DIR = Path("data/synthetic")
ENV = "../envs/brats-unet.yaml"


def chosen_dataset():
    """The dataset convention: config dataset, or auto: recognised (the QC job says why)."""
    try:
        return resolve_dataset(config["dataset"], config["data_dir"])
    except (FileNotFoundError, NotADirectoryError) as err:
        raise WorkflowError(f"config data_dir: {err}") from None
    except ValueError as err:
        raise WorkflowError(f"config {err}") from None


DATASET = chosen_dataset()


def synthetic_follow_ups():
    """The synthetic pairs' follow-ups (their baselines: the cases after n_subjects)."""
    synthetic = config["synthetic"]
    try:
        return plan_follow_ups(
            synthetic.get("longitudinal_pairs", 0),
            seed=synthetic["seed"],
            first_index=synthetic["n_subjects"] + 1,
            shape=synthetic["shape"],
            spacing_mm=synthetic["spacing_mm"],
        )
    except ValueError as err:
        raise WorkflowError(f"config synthetic.longitudinal_pairs: {err}") from None


FOLLOW_UPS = [] if config["data_dir"] else synthetic_follow_ups()


def synthetic_subjects():
    n_cases = config["synthetic"]["n_subjects"] + len(FOLLOW_UPS)
    indices = [*range(1, n_cases + 1), *(plan.index for plan in FOLLOW_UPS)]
    subjects = [
        raw_subject_files(SYNTHETIC_DIR, subject_name(index, DATASET), dataset=DATASET)
        for index in indices
    ]
    return subjects, []


def real_subjects():
    try:
        found = discover_subjects(config["data_dir"], DATASET)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise WorkflowError(f"config data_dir: {err}") from None
    for note in found.ignored:
        logger.info(f"data_dir: ignored {note}")
    for problem in found.excluded:
        logger.warning(f"data_dir: excluded {problem}")
    if not found.subjects and not found.excluded:
        raise WorkflowError(
            f"config data_dir: no subjects in {config['data_dir']!r} ({DATASET.name}: expected "
            f"{expected_layout(DATASET)})"
        )
    return found.subjects, found.excluded


SUBJECTS, DISCOVERY_EXCLUDED = real_subjects() if config["data_dir"] else synthetic_subjects()
SUBJECT_FILES = {s.subject: s for s in SUBJECTS}
# a synthetic follow-up's plan, by subject, for its synthesis job
FOLLOW_UP_PLANS = {subject_name(p.index, DATASET): asdict(p) for p in FOLLOW_UPS}


def longitudinal_pairs():
    """The pairs to compare: config longitudinal.pairs (a TSV), else the synthetic pairs."""
    if config["longitudinal"]["pairs"]:
        try:
            return read_pairs(config["longitudinal"]["pairs"], SUBJECT_FILES)
        except (FileNotFoundError, ValueError) as err:
            raise WorkflowError(f"config longitudinal.pairs: {err}") from None
    return pair_rows(FOLLOW_UPS, DATASET)


PAIRS = longitudinal_pairs()
PAIR_SUBJECTS = pair_subjects(PAIRS)


wildcard_constraints:
    subject=SUBJECT_PATTERN,


def subject_inputs(wildcards):
    """The subject's files by role: flair, t1, t1ce, t2 and, if present, seg."""
    files = SUBJECT_FILES[wildcards.subject]
    return {role: str(path) for role, path in files.by_role().items()}


def discovery_exclusions():
    return [
        {"subject": p.subject, "file": p.file, "problem": p.problem} for p in DISCOVERY_EXCLUDED
    ]


N_FOLDS = config["split"]["n_folds"] if config["split"]["n_folds"] >= 2 else 1
ARCHITECTURES = "|".join(config["model_names"])


wildcard_constraints:
    model=ARCHITECTURES,
    # a trained model: the architecture itself, or one of its folds (k-fold)
    member=f"(?:{ARCHITECTURES})" + (r"\.fold[0-9]+" if N_FOLDS > 1 else ""),
    # whatever predicts: a member, or (k-fold) the fold ensemble
    predictor=f"(?:{ARCHITECTURES})" + (rf"(?:\.fold[0-9]+|\.{ENSEMBLE})" if N_FOLDS > 1 else ""),


def members(model):
    """The trained models of an architecture: itself, or one per fold (known from the config,
    before the split has run)."""
    return fold_members(model, N_FOLDS)


def model_predictors(model):
    return predictors(model, N_FOLDS)


def fold_of(member):
    return int(member.rsplit(".fold", 1)[1]) if N_FOLDS > 1 else 0


_SPLITS = {}  # results/split.json parsed, by (path, modification time): input functions ask often


def _split():
    path = checkpoints.split.get().output[0]
    key = (path, os.stat(path).st_mtime_ns)
    if key not in _SPLITS:
        with open(path) as handle:
            split = json.load(handle)
        plan = {model: prediction_plan(model, split) for model in config["model_names"]}
        predicted = sorted(next(iter(plan.values())))
        _SPLITS[key] = split, predicted, {s: i for i, s in enumerate(predicted)}, plan
    return _SPLITS[key]


def split_subjects(*groups):
    """Subjects of the given groups of results/split.json (known once the split has run)."""
    split = _split()[0]
    return sorted(s for group in groups for s in split.get(group, []))


def calibration_subjects():
    """The validation subjects, each with the member that predicts it: out of fold (k-fold),
    or the single split's validation subjects."""
    split = _split()[0]
    return out_of_fold(split)


def batch_plan(model, batch):
    """Subject -> the members of ``model`` predicting it, for the subjects of ``batch``."""
    plan = _split()[3][model]
    return {subject: plan.get(subject, members(model)) for subject in batch_subjects(batch)}


# Prediction jobs: inference.subjects_per_job subjects of one architecture each, loading its
# models (its folds) once. Batch "part-<n>" is the n-th run of the predicted subjects (test,
# unlabelled and validation, sorted); a
# subject outside them (asked for by its file) gets a batch of its own, "subject-<name>".
INFERENCE = {k: v for k, v in config["inference"].items() if k != "subjects_per_job"}
SUBJECTS_PER_JOB = config["inference"]["subjects_per_job"]


wildcard_constraints:
    batch=f"(?:part-[0-9]{{3,6}}|subject-{SUBJECT_PATTERN})",  # ({m,} is not allowed)


def batch_of(subject):
    position = _split()[2].get(subject)
    if position is None:
        return f"subject-{subject}"
    return f"part-{position // SUBJECTS_PER_JOB + 1:03d}"


def batch_subjects(batch):
    if batch.startswith("subject-"):
        return [batch.removeprefix("subject-")]
    first = (int(batch.removeprefix("part-")) - 1) * SUBJECTS_PER_JOB
    return _split()[1][first : first + SUBJECTS_PER_JOB]


def label_file(subject):
    return str(SUBJECT_FILES[subject].label)


def model_patch(model):
    """The window of 3D inference: the patch the model was trained on (a pulled model's own,
    from its summary, whatever this config says)."""
    if PRETRAINED:
        return read_training_summary(model_file(members(model)[0], ".json")).patch_size
    return config["models"][model]["patch_size"]


# Trained here (results/models/, written by rule train) or pulled (pretrained_dir, written by
# no rule: pulled files' new modification times then never trigger retraining).
PRETRAINED = config["weights"] == "pretrained"
TRAINED_DIR = "results/models"
# The train job's outputs for the {member} wildcard by suffix (weights, history, summary).
TRAINED_FILES = {suffix: str(path) for suffix, path in model_files(TRAINED_DIR, "{member}").items()}
MODELS_DIR = config["pretrained_dir"] if PRETRAINED else TRAINED_DIR
EVERY_MEMBER = [member for model in config["model_names"] for member in members(model)]

if PRETRAINED and (missing := missing_files(MODELS_DIR, EVERY_MEMBER)):
    raise WorkflowError(
        "config weights: pretrained, but these files are missing: "
        + ", ".join(missing)
        + f". Pull them (`dvc pull publish_weights`) or set pretrained_dir; {MODELS_DIR}/ must "
        "hold <model>.keras, <model>.json and <model>.history.csv for every model in model_names "
        "(with split.n_folds >= 2, for every fold: <model>.fold<n>.keras, ...; a relative "
        "pretrained_dir is read from the working directory: with --directory, give an absolute "
        "path)."
    )


def model_file(member, suffix=".keras"):
    """A trained model's weights (.keras), training summary (.json) or history (.history.csv)."""
    return str(model_files(MODELS_DIR, member)[suffix])


def every_model_file(suffix, models=None):
    """The files of every member of ``models`` (default: every model in model_names)."""
    return [
        model_file(member, suffix)
        for model in (models or config["model_names"])
        for member in members(model)
    ]


def test_predictions(suffix):
    """Every test subject's prediction (or timing) by every predictor of the model."""
    return lambda wildcards: expand(
        f"results/predictions/{{predictor}}/{{subject}}{suffix}",
        predictor=model_predictors(wildcards.model),
        subject=split_subjects("test"),
    )


def calibration_predictions(suffix):
    """Every validation subject's prediction by the member that never trained on it."""
    return lambda wildcards: [
        f"results/predictions/{members(wildcards.model)[fold]}/{subject}{suffix}"
        for subject, fold in calibration_subjects().items()
    ]


def headline_predictor(model):
    """What a model's reported figures come from: the model, or its fold ensemble."""
    return model_predictors(model)[-1]


def longitudinal_scans():
    """(model, subject) -> the headline predictor's segmentation of each followed scan that
    passed QC (known once the split has run)."""
    return {
        (model, subject): f"results/predictions/{headline_predictor(model)}/{subject}.nii.gz"
        for model in config["model_names"]
        for subject in split_subjects("longitudinal")
    }


def longitudinal_labels():
    """Subject -> label map of each followed scan that has one and passed QC."""
    return {s: label_file(s) for s in split_subjects("longitudinal") if SUBJECT_FILES[s].label}


def longitudinal_report_scans():
    """Subject -> [FLAIR, label map or None, {model: segmentation}] of each followed scan, for
    the report's overlays."""
    scans = longitudinal_scans()
    return {
        s: [
            str(SUBJECT_FILES[s].images["flair"]),
            longitudinal_labels().get(s),
            {m: scans[(m, s)] for m in config["model_names"]},
        ]
        for s in split_subjects("longitudinal")
    }
