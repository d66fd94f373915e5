"""The longitudinal pairs table: which two scans (subjects) of one patient to compare.

A TSV with a header and the columns ``patient``, ``baseline``, ``follow_up`` (more columns are
kept: a synthetic pair's known ``factor``). A patient with three scans has two rows. Every
subject named must be one of the data's subjects; each row's two scans must differ.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import pandas as pd

PAIR_COLUMNS = ("patient", "baseline", "follow_up")


def check_pairs(rows: list[dict], known: Collection[str], where: str) -> list[dict]:
    """``rows`` as they are, or a ``ValueError`` naming ``where``, the row and the problem."""
    seen = set()
    for number, row in enumerate(rows, start=1):
        at = f"{where}, row {number} ({row.get('patient', '?')})"
        for column in PAIR_COLUMNS:
            value = row.get(column)
            if value is None or pd.isna(value) or not str(value).strip():
                raise ValueError(f"{at}: no {column}")
        for column in ("baseline", "follow_up"):
            if row[column] not in known:
                raise ValueError(f"{at}: {column} {row[column]!r} is not a subject of the data "
                                 f"(or was excluded: results/qc/subjects.tsv says why)")
        if row["baseline"] == row["follow_up"]:
            raise ValueError(f"{at}: baseline and follow_up are the same scan "
                             f"({row['baseline']})")
        key = (row["baseline"], row["follow_up"])
        if key in seen:
            raise ValueError(f"{at}: the pair {key[0]} -> {key[1]} is listed twice")
        seen.add(key)
    return rows


def read_pairs(path: str | os.PathLike, known: Collection[str]) -> list[dict]:
    """The pairs of the TSV at ``path``, checked against the subjects ``known``."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in PAIR_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)} (a tab-separated table with "
                         f"the columns {', '.join(PAIR_COLUMNS)}; found {', '.join(table.columns)})")
    rows = [{k: (v.strip() if isinstance(v, str) else v) for k, v in r.items()}
            for r in table.to_dict("records")]
    return check_pairs(rows, known, str(path))


def pair_subjects(rows: list[dict]) -> list[str]:
    """Every scan the pairs name, sorted."""
    return sorted({row[c] for row in rows for c in ("baseline", "follow_up")})
