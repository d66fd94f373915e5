"""Trained weights shared through DVC: publishing them, finding pulled ones, and guarding the test set.

A model is three files: ``<model>.keras`` (the weights), ``<model>.json`` (the training
summary: subjects, settings, best validation Dice) and ``<model>.history.csv``. Training
writes them under ``results/models/``; ``publish_weights`` copies them into a folder that
no Snakemake rule writes (``weights/`` by default), which DVC tracks, pushes and pulls.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path, PurePosixPath

from brats_unet.io import atomic_path, write_json
from brats_unet.training.summary import TrainingSummary, read_training_summary

MODEL_SUFFIXES = (".keras", ".json", ".history.csv")
MANIFEST = "manifest.json"
# Folders that Snakemake rules write: pulled weights must not sit there.
RULE_OUTPUT_ROOTS = ("results", "reports", "state", "logs", "benchmarks", "data/synthetic")


def model_files(folder: str | os.PathLike, model: str) -> dict[str, Path]:
    """The three files of ``model`` in ``folder``, by suffix."""
    return {suffix: Path(folder) / f"{model}{suffix}" for suffix in MODEL_SUFFIXES}


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish_weights(models_dir: str | os.PathLike, out_dir: str | os.PathLike,
                    models: list[str]) -> dict:
    """Copy each model's files from ``models_dir`` to ``out_dir``; write a manifest of sha256s.

    Every file is checked before anything is copied, so a missing model leaves
    ``out_dir`` as it was. Files of models not named are left alone.
    """
    if missing := missing_files(models_dir, models):
        raise FileNotFoundError("cannot publish weights, missing: " + ", ".join(missing)
                                + " (train the models first: snakemake --cores N)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"models": {}}
    for model in models:
        entry = {}
        for suffix, source in model_files(models_dir, model).items():
            target = out / source.name
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
            entry[source.name] = sha256(target)
        summary = read_training_summary(model_files(models_dir, model)[".json"])
        entry["best_val_dice"] = summary.best_val_dice
        entry["train_subjects"] = summary.train_subjects
        entry["validation_subjects"] = summary.validation_subjects
        manifest["models"][model] = entry
    write_json(manifest, out / MANIFEST)
    return manifest


def pretrained_dir_problem(pretrained_dir: str) -> str | None:
    """Why ``pretrained_dir`` cannot hold pulled weights, or None.

    A folder some rule writes would give pulled files a producing job, and Snakemake
    would retrain because the pull gave them new modification times.
    """
    path = PurePosixPath(os.path.normpath(pretrained_dir))
    if path.is_absolute():
        return None
    if path.parts and path.parts[0] == "..":
        return None
    for root in RULE_OUTPUT_ROOTS:
        root_path = PurePosixPath(root)
        if path == root_path or root_path in path.parents or path in root_path.parents:
            return (f"pretrained_dir: {pretrained_dir!r} overlaps {root}/, which the workflow "
                    "writes; pulled weights must sit in a folder no rule writes (e.g. weights)")
    return None


def missing_files(folder: str | os.PathLike, models: list[str]) -> list[str]:
    """The models' files that are not in ``folder``, as paths."""
    return [str(path) for model in models
            for path in model_files(folder, model).values() if not path.is_file()]


def leaked_test_subjects(summary: TrainingSummary, test_subjects: list[str]) -> list[str]:
    """Test subjects the model saw in training or used to choose its checkpoint."""
    seen = set(summary.train_subjects) | set(summary.validation_subjects)
    return sorted(seen.intersection(test_subjects))


def check_held_out(model: str, summary: TrainingSummary, test_subjects: list[str]) -> None:
    """Raise if any test subject was used to train or select ``model`` (e.g. pulled weights
    trained on another split)."""
    leaked = leaked_test_subjects(summary, test_subjects)
    if leaked:
        raise ValueError(
            f"{model}: {len(leaked)} test subject(s) were used in its training or checkpoint "
            f"choice ({', '.join(leaked[:5])}{', ...' if len(leaked) > 5 else ''}); the weights "
            "come from another split, so scoring them here would not be held out")


def check_out_of_fold(member: str, summary: TrainingSummary, subjects: list[str]) -> None:
    """Raise if ``member`` trained on any of ``subjects``, its out-of-fold cases (it chose its
    checkpoint on them: they are its validation subjects, as in nnU-Net's cross-validation)."""
    if trained := sorted(set(summary.train_subjects).intersection(subjects)):
        raise ValueError(f"{member}: trained on {len(trained)} of the subjects it is to predict "
                         f"out of fold ({', '.join(trained[:5])}); its weights come from another "
                         "split")
