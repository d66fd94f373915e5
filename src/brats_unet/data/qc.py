"""The quality-control table: every subject found, included or excluded, and why."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from brats_unet.data.subjects import Problem
from brats_unet.io import atomic_path

QC_COLUMNS = ["subject", "status", "has_label", "file", "problem", "note"]


def qc_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per subject, sorted by name; a subject listed twice is an error."""
    table = pd.DataFrame(list(records), columns=QC_COLUMNS)
    duplicated = table["subject"][table["subject"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"subjects listed more than once in the QC records: {duplicated}")
    for column in ("file", "problem", "note"):  # "note": absent from records of older runs
        table[column] = table[column].fillna("")
    return table.sort_values("subject", kind="stable").reset_index(drop=True)


def write_qc_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


def read_qc_table(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False,
                       dtype={"subject": str, "file": str, "problem": str, "note": str})


def included_subjects(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(labelled, unlabelled)`` names of the included subjects."""
    included = table[table["status"] == "included"]
    has_label = included["has_label"].astype(str).str.lower() == "true"
    return sorted(included.loc[has_label, "subject"]), sorted(included.loc[~has_label, "subject"])


def excluded_problems(table: pd.DataFrame) -> list[Problem]:
    """The excluded subjects' problems, in table order (``str()`` of one is its log line)."""
    excluded = table[table["status"] == "excluded"]
    return [Problem(str(r.subject), str(r.file), str(r.problem)) for r in excluded.itertuples()]


def case_notes(table: pd.DataFrame) -> list[tuple[str, str]]:
    """``(subject, note)`` of the included subjects with a warning, in table order (none in a
    table from before notes existed)."""
    if "note" not in table or "status" not in table:
        return []
    noted = table[(table["status"] == "included") & (table["note"].fillna("") != "")]
    return [(str(r.subject), str(r.note)) for r in noted.itertuples()]
