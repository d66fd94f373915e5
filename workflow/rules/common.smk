# The subject table, computed once when the workflow is parsed, and input functions.
import json
import os
from pathlib import Path

from brats_unet.data.datasets import resolve_dataset
from brats_unet.data.subjects import (
    SUBJECT_PATTERN,
    discover_subjects,
    expected_layout,
    raw_subject_files,
)
from brats_unet.data.synthetic import subject_name
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


def synthetic_subjects():
    subjects = [
        raw_subject_files(SYNTHETIC_DIR, subject_name(index, DATASET), dataset=DATASET)
        for index in range(1, config["synthetic"]["n_subjects"] + 1)
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


wildcard_constraints:
    model="|".join(config["model_names"]),


_SPLITS = {}  # results/split.json parsed, by (path, modification time): input functions ask often


def _split():
    path = checkpoints.split.get().output[0]
    key = (path, os.stat(path).st_mtime_ns)
    if key not in _SPLITS:
        with open(path) as handle:
            split = json.load(handle)
        predicted = sorted(split["test"] + split["unlabelled"])
        _SPLITS[key] = split, predicted, {s: i for i, s in enumerate(predicted)}
    return _SPLITS[key]


def split_subjects(*groups):
    """Subjects of the given groups of results/split.json (known once the split has run)."""
    split = _split()[0]
    return sorted(s for group in groups for s in split[group])


# Prediction jobs: inference.subjects_per_job subjects of one model each, loading it once.
# Batch "part-<n>" is the n-th run of the predicted subjects (test and unlabelled, sorted); a
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
        return read_training_summary(model_file(model, ".json")).patch_size
    return config["models"][model]["patch_size"]


# Trained here (results/models/, written by rule train) or pulled (pretrained_dir, written by
# no rule: pulled files' new modification times then never trigger retraining).
PRETRAINED = config["weights"] == "pretrained"
TRAINED_DIR = "results/models"
# The train job's outputs for the {model} wildcard by suffix (weights, history, summary).
TRAINED_FILES = {suffix: str(path) for suffix, path in model_files(TRAINED_DIR, "{model}").items()}
MODELS_DIR = config["pretrained_dir"] if PRETRAINED else TRAINED_DIR

if PRETRAINED and (missing := missing_files(MODELS_DIR, config["model_names"])):
    raise WorkflowError(
        "config weights: pretrained, but these files are missing: "
        + ", ".join(missing)
        + f". Pull them (`dvc pull publish_weights`) or set pretrained_dir; {MODELS_DIR}/ must "
        "hold <model>.keras, <model>.json and <model>.history.csv for every model in model_names "
        "(a relative pretrained_dir is read from the working directory: with --directory, give "
        "an absolute path)."
    )


def model_file(model, suffix=".keras"):
    """A model's weights (.keras), training summary (.json) or history (.history.csv)."""
    return str(model_files(MODELS_DIR, model)[suffix])


def every_model_file(suffix):
    return [model_file(model, suffix) for model in config["model_names"]]
