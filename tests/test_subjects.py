from pathlib import Path

import pytest

from brats_unet.subjects import check_subject_name, discover_subjects
from builders import write_subject


def test_finds_subjects_and_ignores_csv_and_empty_folders(data_dir: Path):
    write_subject(data_dir, "BraTS20_Training_002")
    write_subject(data_dir, "BraTS20_Training_001", suffix=".nii")
    (data_dir / "name_mapping.csv").write_text("a,b\n")
    (data_dir / "survival_info.csv").write_text("a,b\n")
    (data_dir / "notes").mkdir()
    found = discover_subjects(data_dir)
    assert [s.subject for s in found.subjects] == ["BraTS20_Training_001", "BraTS20_Training_002"]
    assert found.excluded == []
    assert any("notes" in note for note in found.ignored)
    first = found.subjects[0]
    assert first.images["t1ce"].name == "BraTS20_Training_001_t1ce.nii"
    assert first.images["t1"].name == "BraTS20_Training_001_t1.nii"
    assert first.label.name == "BraTS20_Training_001_seg.nii"


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
    assert problem.subject == "BraTS20_Training_007"
    assert "missing contrast t1ce" in problem.problem
    assert "BraTS20_Training_007_t1.nii.gz" in problem.problem  # says what it did find


def test_other_naming_is_excluded_not_dropped(data_dir: Path):
    folder = data_dir / "case_a"
    folder.mkdir()
    for name in ("image_0000.nii.gz", "image_0001.nii.gz"):
        (folder / name).write_bytes(b"x")
    (problem,) = discover_subjects(data_dir).excluded
    assert problem.subject == "case_a" and "missing contrast flair, t1, t1ce, t2" in problem.problem


def test_two_files_for_one_contrast_is_ambiguous(data_dir: Path):
    folder = write_subject(data_dir, "S1")
    (folder / "S1_t2.nii").write_bytes(b"x")
    (problem,) = discover_subjects(data_dir).excluded
    assert "more than one file for t2" in problem.problem


@pytest.mark.parametrize("name", ["..", ".hidden", "a b", "a;rm -rf", "-x", "ü", "a" * 200, ""])
def test_unsafe_subject_names_are_refused(name):
    assert check_subject_name(name) is not None


@pytest.mark.parametrize("name", ["BraTS20_Training_001", "BraTS2021_00000", "case-1.v2"])
def test_safe_subject_names_pass(name):
    assert check_subject_name(name) is None


def test_folder_with_unsafe_name_is_excluded(data_dir: Path):
    write_subject(data_dir, "bad name")
    (problem,) = discover_subjects(data_dir).excluded
    assert problem.subject == "bad name" and "not allowed" in problem.problem


def test_missing_data_dir_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_subjects(tmp_path / "nowhere")
