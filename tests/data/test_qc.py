from pathlib import Path

import pytest

from brats_unet.data.qc import (
    case_notes,
    excluded_problems,
    included_subjects,
    qc_table,
    read_qc_table,
    write_qc_table,
)
from brats_unet.data.subjects import Problem
from brats_unet.preprocessing.cases import qc_record


def test_table_round_trip_and_included_subjects(tmp_path: Path):
    records = [
        qc_record("B", has_label=True),
        qc_record("A", Problem("A", "A_t1.nii.gz", "corrupt"), has_label=True),
        qc_record("C", has_label=False),
        qc_record("D", has_label=True),
    ]
    path = tmp_path / "qc" / "subjects.tsv"
    write_qc_table(qc_table(records), path)
    table = read_qc_table(path)
    assert list(table["subject"]) == ["A", "B", "C", "D"]
    assert table.loc[0, "problem"] == "corrupt" and table.loc[1, "problem"] == ""
    assert included_subjects(table) == (["B", "D"], ["C"])


def test_a_subject_twice_is_an_error():
    with pytest.raises(ValueError, match="more than once"):
        qc_table([qc_record("A", has_label=True), qc_record("A", has_label=True)])


def test_excluded_problems_survive_odd_names_in_the_file(tmp_path: Path):
    odd = "a\tb\nc"  # a folder name may hold tabs and newlines
    records = [qc_record("B", has_label=True),
               qc_record(odd, Problem(odd, f"{odd}/", 'not "allowed"'), has_label=None)]
    write_qc_table(qc_table(records), tmp_path / "subjects.tsv")
    table = read_qc_table(tmp_path / "subjects.tsv")
    assert excluded_problems(table) == [Problem(odd, f"{odd}/", 'not "allowed"')]
    assert included_subjects(table) == (["B"], [])


def test_notes_of_included_subjects_round_trip_and_older_records_have_none(tmp_path: Path):
    records = [qc_record("B", has_label=True, note="B_seg.nii.gz: 3 tumour voxels ..."),
               qc_record("A", Problem("A", "A_t1.nii.gz", "corrupt"), has_label=True),
               {"subject": "C", "status": "included", "has_label": True, "file": "",
                "problem": ""}]  # a record written before notes existed
    write_qc_table(qc_table(records), tmp_path / "subjects.tsv")
    table = read_qc_table(tmp_path / "subjects.tsv")
    assert list(table["note"]) == ["", "B_seg.nii.gz: 3 tumour voxels ...", ""]
    assert case_notes(table) == [("B", "B_seg.nii.gz: 3 tumour voxels ...")]
    assert included_subjects(table) == (["B", "C"], [])
