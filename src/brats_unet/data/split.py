"""Patient-level train / validation / test split.

Every subject is one patient (BraTS has one scan per patient), so splitting
subjects splits patients: no slice or patch of a test patient is ever seen in
training or used to choose a checkpoint. Subjects without a label map cannot
be trained or scored; they are listed as ``unlabelled`` (prediction only).
The scans of patients followed over time (``longitudinal``: several scans of one patient)
are kept out of training, validation and test alike, labelled or not, and only predicted:
the change between a patient's scans is measured by models that saw none of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def _count(fraction: float, n: int) -> int:
    return max(1, int(round(fraction * n)))


def _check_sizes(n: int, test_fraction: float, validation_fraction: float) -> None:
    if n < 3:
        raise ValueError(f"need at least 3 labelled subjects to split into train, validation "
                         f"and test; have {n}")
    if not 0 < test_fraction < 1 or not 0 <= validation_fraction < 1:
        raise ValueError("test_fraction must be in (0, 1) and validation_fraction in [0, 1)")


def _folds(rest: list[str], n_folds: int, fold: int, validation_fraction: float,
           n: int) -> tuple[list[list[str]], int]:
    """The non-test subjects cut into validation folds, and the fold chosen (0 without k-fold:
    one validation set of ``validation_fraction`` of all ``n`` subjects)."""
    if n_folds >= 2:
        if n_folds > len(rest):
            raise ValueError(f"{n_folds} folds need at least {n_folds} non-test subjects; "
                             f"have {len(rest)}")
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold must be in 0..{n_folds - 1}, got {fold}")
        folds = [list(map(str, f)) for f in np.array_split(np.array(rest, dtype=object), n_folds)]
    else:
        n_val = _count(validation_fraction, n) if validation_fraction > 0 else 0
        folds = [rest[:n_val]]
        fold = 0
    return folds, fold


def make_split(subjects: Iterable[str], *, seed: int, test_fraction: float = 0.2,
               validation_fraction: float = 0.2, n_folds: int = 0, fold: int = 0,
               unlabelled: Iterable[str] = (), longitudinal: Iterable[str] = ()
               ) -> dict[str, Any]:
    """Split labelled subjects into train, validation and test, deterministically.

    The test set is drawn first and is the same for every fold. With
    ``n_folds >= 2`` the remaining subjects are cut into ``n_folds`` folds and
    fold ``fold`` is the validation set; otherwise ``validation_fraction`` of
    all subjects form it. The result depends only on the sorted subject names
    and ``seed``, not on the order they are given in.

    ``longitudinal``: the scans of followed patients, taken out of ``subjects`` and
    ``unlabelled`` wherever they are (a scan in neither, excluded by QC, is left out).

    Returns a JSON-ready dict with ``train``, ``validation``, ``test``,
    ``unlabelled``, ``longitudinal`` (sorted lists), ``folds`` (each fold's validation
    subjects) and the settings.
    """
    subjects, unlabelled = list(subjects), list(unlabelled)
    followed = set(longitudinal) & (set(subjects) | set(unlabelled))
    given = [s for s in subjects if s not in followed]
    unlabelled = [s for s in unlabelled if s not in followed]
    names = sorted(set(given))
    if len(names) != len(given):
        raise ValueError("subject names are not unique")
    n = len(names)
    _check_sizes(n, test_fraction, validation_fraction)

    order = np.random.default_rng(seed).permutation(n)
    shuffled = [names[i] for i in order]
    n_test = _count(test_fraction, n)
    test, rest = shuffled[:n_test], shuffled[n_test:]

    folds, fold = _folds(rest, n_folds, fold, validation_fraction, n)
    validation = folds[fold]
    train = [s for s in rest if s not in set(validation)]
    if not train:
        raise ValueError(f"no subject left for training out of {n}")

    return {
        "seed": seed,
        "test_fraction": test_fraction,
        "validation_fraction": validation_fraction,
        "n_folds": n_folds,
        "fold": fold,
        "train": sorted(train),
        "validation": sorted(validation),
        "test": sorted(test),
        "unlabelled": sorted(set(unlabelled)),
        "longitudinal": sorted(followed),
        "folds": [sorted(f) for f in folds],
    }


def n_folds_of(split: dict[str, Any]) -> int:
    """How many models each architecture has: the folds of a k-fold split, else 1."""
    return len(split["folds"]) if split["n_folds"] >= 2 else 1


def fold_subjects(split: dict[str, Any], fold: int) -> tuple[list[str], list[str]]:
    """``(train, validation)`` of one fold: its validation subjects, and every other non-test
    labelled subject for training. Without k-fold, fold 0 is the split's own."""
    if not 0 <= fold < n_folds_of(split):
        raise ValueError(f"fold {fold} is not in the split (folds 0..{n_folds_of(split) - 1})")
    if split["n_folds"] < 2:
        return list(split["train"]), list(split["validation"])
    validation = split["folds"][fold]
    pool = split["train"] + split["validation"]
    return sorted(s for s in pool if s not in set(validation)), list(validation)


def out_of_fold(split: dict[str, Any]) -> dict[str, int]:
    """Every validation subject and the one fold whose model never trained on it: with k-fold,
    every non-test labelled subject exactly once."""
    assignment: dict[str, int] = {}
    for fold in range(n_folds_of(split)):
        for subject in fold_subjects(split, fold)[1]:
            if subject in assignment:
                raise ValueError(f"subject {subject} is in the validation set of folds "
                                 f"{assignment[subject]} and {fold}")
            assignment[subject] = fold
    return dict(sorted(assignment.items()))


# The models of one architecture, and what predicts each subject. An architecture ("unet3d")
# has one model per fold: "unet3d" itself without k-fold, else "unet3d.fold0", ... and the
# fold ensemble "unet3d.ensemble" (the mean of its folds' probabilities).
ENSEMBLE = "ensemble"


def fold_members(model: str, n_folds: int) -> list[str]:
    """The trained models of architecture ``model`` with ``n_folds`` models per architecture
    (:func:`n_folds_of`): itself, or one per fold."""
    if n_folds < 2:
        return [model]
    return [f"{model}.fold{fold}" for fold in range(n_folds)]


def predictors(model: str, n_folds: int) -> list[str]:
    """Whatever predicts the test subjects for ``model``: its fold members and, with k-fold,
    their ensemble."""
    members = fold_members(model, n_folds)
    return members + ([f"{model}.{ENSEMBLE}"] if len(members) > 1 else [])


def architecture_of(predictor: str) -> str:
    """``unet3d`` of ``unet3d``, ``unet3d.fold2`` and ``unet3d.ensemble``."""
    return predictor.split(".", 1)[0]


def prediction_plan(model: str, split: dict[str, Any]) -> dict[str, list[str]]:
    """Subject -> the members of ``model`` that predict it: every member for a test,
    unlabelled or longitudinal subject; for a validation subject only the fold that never
    trained on it."""
    members = fold_members(model, n_folds_of(split))
    predicted = split["test"] + split["unlabelled"] + split.get("longitudinal", [])
    plan = {subject: list(members) for subject in predicted}
    for subject, fold in out_of_fold(split).items():
        plan[subject] = [members[fold]]
    return dict(sorted(plan.items()))
