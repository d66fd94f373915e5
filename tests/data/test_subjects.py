import os
from pathlib import Path

import pytest

from brats_unet.data.subjects import (
    check_subject_name,
    discover_subjects,
    raw_file_name,
    raw_subject_files,
)

from builders import write_subject


def test_finds_subjects_and_ignores_csv_and_empty_folders(data_dir: Path):
    write_subject(data_dir, "BraTS20_Training_002")
    write_subject(data_dir, "BraTS20_Training_001", extension=".nii")
    (data_dir / "name_mapping.csv").write_text("a,b\n")
    (data_dir / "survival_info.csv").write_text("a,b\n")
    (data_dir / "notes").mkdir()
    found = discover_subjects(data_dir)
    assert [s.subject for s in found.subjects] == ["BraTS20_Training_001", "BraTS20_Training_002"]
    assert found.excluded == []
    assert found.ignored == ["'name_mapping.csv': a file outside any subject folder",
                             "'notes': folder without NIfTI files",
                             "'survival_info.csv': a file outside any subject folder"]
    first = found.subjects[0]
    assert first.images["t1ce"].name == "BraTS20_Training_001_t1ce.nii"
    assert first.images["t1"].name == "BraTS20_Training_001_t1.nii"
    assert first.label.name == "BraTS20_Training_001_seg.nii"


def test_raw_naming_is_what_discovery_finds(data_dir: Path):
    assert raw_file_name("S1", "t1ce") == "S1_t1ce.nii.gz"
    assert raw_file_name("S1", "seg", ".nii") == "S1_seg.nii"
    files = raw_subject_files(data_dir, "S1")
    folder = data_dir / "S1"
    assert files.by_role() == {role: folder / f"S1_{role}.nii.gz"
                               for role in ("flair", "t1", "t1ce", "t2", "seg")}
    write_subject(data_dir, "S1")
    assert discover_subjects(data_dir).subjects == [files]
    unlabelled = raw_subject_files(data_dir, "S2", extension=".nii", with_label=False)
    assert unlabelled.label is None
    assert list(unlabelled.by_role().values()) == [
        data_dir / "S2" / f"S2_{c}.nii" for c in ("flair", "t1", "t1ce", "t2")]


def test_label_map_is_optional(data_dir: Path):
    write_subject(data_dir, "BraTS20_Validation_001", with_label=False)
    (subject,) = discover_subjects(data_dir).subjects
    assert subject.label is None and not subject.has_label


def test_misnamed_label_of_training_355_is_found(data_dir: Path):
    folder = write_subject(data_dir, "BraTS20_Training_355")
    (folder / "BraTS20_Training_355_seg.nii.gz").rename(folder / "W39_1998.09.19_Segm.nii.gz")
    (subject,) = discover_subjects(data_dir).subjects
    assert subject.label.name == "W39_1998.09.19_Segm.nii.gz"


def test_missing_contrast_is_excluded_with_reason(data_dir: Path):
    folder = write_subject(data_dir, "BraTS20_Training_007")
    (folder / "BraTS20_Training_007_t1ce.nii.gz").unlink()
    found = discover_subjects(data_dir)
    assert found.subjects == []
    (problem,) = found.excluded
    assert (problem.subject, problem.file) == ("BraTS20_Training_007", "BraTS20_Training_007/")
    assert problem.problem.startswith("missing contrast t1ce (expected *_t1ce.nii[.gz]; found: ")
    assert "BraTS20_Training_007_t1.nii.gz" in problem.problem  # says what it did find


@pytest.mark.parametrize("names", [
    ("image_0000.nii.gz", "image_0001.nii.gz"),  # nnU-Net
    ("flair.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz", "seg.nii.gz"),  # no prefix
    ("BraTS-GLI-00001-000-t2f.nii.gz", "BraTS-GLI-00001-000-t1n.nii.gz"),  # BraTS 2023
])
def test_other_naming_is_excluded_not_dropped(data_dir: Path, names):
    folder = data_dir / "case_a"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"x")
    (problem,) = discover_subjects(data_dir).excluded
    assert (problem.subject, problem.file) == ("case_a", "case_a/")
    assert problem.problem.startswith("file names do not follow the BraTS 2018-2021 naming "
                                      "(expected <subject>_flair, <subject>_t1, <subject>_t1ce")
    assert f"found: {', '.join(sorted(names))})" in problem.problem


def test_suffix_case_is_ignored(data_dir: Path):
    folder = data_dir / "Sub"
    folder.mkdir()
    for contrast in ("FLAIR", "T1", "T1ce", "t2", "Seg"):
        (folder / f"Sub_{contrast}.nii").write_bytes(b"x")
    (subject,) = discover_subjects(data_dir).subjects
    assert subject.images["t1ce"].name == "Sub_T1ce.nii" and subject.label.name == "Sub_Seg.nii"


def test_files_of_two_subjects_in_one_folder_are_refused(data_dir: Path):
    folder = write_subject(data_dir, "BraTS20_Training_005")
    (folder / "BraTS20_Training_005_t1.nii.gz").rename(folder / "BraTS20_Training_006_t1.nii.gz")
    (problem,) = discover_subjects(data_dir).excluded
    assert problem.subject == "BraTS20_Training_005"
    assert problem.file == "BraTS20_Training_006_t1.nii.gz"
    assert problem.problem.startswith(
        "the file names name different subjects (BraTS20_Training_005, BraTS20_Training_006)")


def test_many_found_files_are_listed_briefly(data_dir: Path):
    folder = data_dir / "case_b"
    folder.mkdir()
    for n in range(12):
        (folder / f"image_{n:04d}.nii.gz").write_bytes(b"x")
    (problem,) = discover_subjects(data_dir).excluded
    assert problem.problem.endswith("image_0007.nii.gz and 4 more)")


def test_two_files_for_one_contrast_is_ambiguous(data_dir: Path):
    folder = write_subject(data_dir, "S1")
    (folder / "S1_t2.nii").write_bytes(b"x")
    (problem,) = discover_subjects(data_dir).excluded
    assert "more than one file for t2" in problem.problem


@pytest.mark.parametrize("name", ["..", ".hidden", "a b", "a;rm -rf", "-x", "ü", "a" * 200, "",
                                  "a/b", "../x", "a\\b", "a\n", "x\0"])
def test_unsafe_subject_names_are_refused(name):
    assert check_subject_name(name) is not None


@pytest.mark.parametrize("name", ["BraTS20_Training_001", "BraTS2021_00000", "case-1.v2"])
def test_safe_subject_names_pass(name):
    assert check_subject_name(name) is None


def test_folder_with_unsafe_name_is_excluded(data_dir: Path):
    write_subject(data_dir, "bad name")
    (problem,) = discover_subjects(data_dir).excluded
    assert (problem.subject, problem.file) == ("bad name", "bad name/")
    assert problem.problem.startswith("subject name 'bad name' is not allowed")


def test_stray_nifti_and_hidden_folder_are_noted(data_dir: Path):
    write_subject(data_dir, "S1")
    (data_dir / "S1_flair.nii.gz").write_bytes(b"x")
    write_subject(data_dir, ".trash")
    found = discover_subjects(data_dir)
    assert [s.subject for s in found.subjects] == ["S1"] and found.excluded == []
    assert found.ignored == ["'.trash': hidden folder",
                             "'S1_flair.nii.gz': a NIfTI file outside any subject folder"]


def test_unreadable_folder_is_excluded(data_dir: Path):
    folder = write_subject(data_dir, "S1")
    folder.chmod(0)
    try:
        if os.access(folder, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        (problem,) = discover_subjects(data_dir).excluded
    finally:
        folder.chmod(0o755)
    assert (problem.subject, problem.file) == ("S1", "S1/")
    assert problem.problem == "cannot list the folder (Permission denied)"


def test_missing_data_dir_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_subjects(tmp_path / "nowhere")
