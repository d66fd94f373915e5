"""Patient-level train / validation / test split.

Every subject is one patient (BraTS has one scan per patient), so splitting
subjects splits patients: no slice or patch of a test patient is ever seen in
training or used to choose a checkpoint. Subjects without a label map cannot
be trained or scored; they are listed as ``unlabelled`` (prediction only).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def _count(fraction: float, n: int) -> int:
    return max(1, int(round(fraction * n)))


def make_split(subjects: Iterable[str], *, seed: int, test_fraction: float = 0.2,
               validation_fraction: float = 0.2, n_folds: int = 0, fold: int = 0,
               unlabelled: Iterable[str] = ()) -> dict[str, Any]:
    """Split labelled subjects into train, validation and test, deterministically.

    The test set is drawn first and is the same for every fold. With
    ``n_folds >= 2`` the remaining subjects are cut into ``n_folds`` folds and
    fold ``fold`` is the validation set; otherwise ``validation_fraction`` of
    all subjects form it. The result depends only on the sorted subject names
    and ``seed``, not on the order they are given in.

    Returns a JSON-ready dict with ``train``, ``validation``, ``test``,
    ``unlabelled`` (sorted lists), ``folds`` (each fold's validation subjects)
    and the settings.
    """
    given = list(subjects)
    names = sorted(set(given))
    if len(names) != len(given):
        raise ValueError("subject names are not unique")
    n = len(names)
    if n < 3:
        raise ValueError(f"need at least 3 labelled subjects to split into train, validation "
                         f"and test; have {n}")
    if not 0 < test_fraction < 1 or not 0 <= validation_fraction < 1:
        raise ValueError("test_fraction must be in (0, 1) and validation_fraction in [0, 1)")

    order = np.random.default_rng(seed).permutation(n)
    shuffled = [names[i] for i in order]
    n_test = _count(test_fraction, n)
    test, rest = shuffled[:n_test], shuffled[n_test:]

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
        "folds": [sorted(f) for f in folds],
    }
