import json
from pathlib import Path

import pytest

from brats_unet.config import config_problems
from brats_unet.training.weights import (
    check_held_out,
    missing_files,
    pretrained_dir_problem,
    publish_weights,
    sha256,
)

from builders import training_summary, write_trained_files

REPO = Path(__file__).resolve().parents[2]


def test_publish_copies_each_model_and_records_its_checksums(tmp_path: Path):
    write_trained_files(tmp_path / "models", "unet2d")
    write_trained_files(tmp_path / "models", "unet3d")
    manifest = publish_weights(tmp_path / "models", tmp_path / "weights", ["unet2d"])
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == [
        "manifest.json", "unet2d.history.csv", "unet2d.json", "unet2d.keras"]
    assert (tmp_path / "weights/unet2d.keras").read_bytes() == b"weights of unet2d"
    entry = manifest["models"]["unet2d"]
    assert entry["unet2d.keras"] == sha256(tmp_path / "models/unet2d.keras")
    assert entry["train_subjects"] == ["A", "B"] and entry["validation_subjects"] == ["C"]
    assert json.loads((tmp_path / "weights/manifest.json").read_text()) == manifest


def test_publish_with_a_missing_file_changes_nothing(tmp_path: Path):
    write_trained_files(tmp_path / "models", "unet2d")
    (tmp_path / "models/unet2d.history.csv").unlink()
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights/unet2d.keras").write_bytes(b"older")
    with pytest.raises(FileNotFoundError, match="unet2d.history.csv"):
        publish_weights(tmp_path / "models", tmp_path / "weights", ["unet2d"])
    assert (tmp_path / "weights/unet2d.keras").read_bytes() == b"older"


def test_missing_files_lists_every_absent_file(tmp_path: Path):
    write_trained_files(tmp_path, "unet2d")
    (tmp_path / "unet2d.json").unlink()
    assert missing_files(tmp_path, ["unet2d", "resunet3d"]) == [
        str(tmp_path / "unet2d.json"), str(tmp_path / "resunet3d.keras"),
        str(tmp_path / "resunet3d.json"), str(tmp_path / "resunet3d.history.csv")]
    assert missing_files(tmp_path, []) == []


@pytest.mark.parametrize("folder, ok", [
    ("weights", True), ("shared/weights", True), ("/srv/brats/weights", True),
    ("../weights", True), ("results/models", False), ("results", False), ("./state/w", False),
    ("data/synthetic/w", False), ("logs", False), ("data", False), ("data/weights", True),
])
def test_pretrained_dir_must_not_be_a_folder_the_workflow_writes(folder, ok):
    problem = pretrained_dir_problem(folder)
    assert (problem is None) == ok
    if not ok:
        assert repr(folder) in problem


def test_config_check_reports_a_pretrained_dir_inside_results():
    import yaml

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["pretrained_dir"] = "results/models"
    problems = config_problems(config, REPO / "config/schema.yaml")
    assert len(problems) == 1 and problems[0].startswith("pretrained_dir: 'results/models'")


def test_weights_that_saw_a_test_subject_are_refused():
    summary = training_summary(train_subjects=["A", "B"], validation_subjects=["C"])
    check_held_out("unet2d", summary, ["D", "E"])  # held out: no error
    with pytest.raises(ValueError, match=r"unet2d: 2 test subject\(s\).*\(B, C\)"):
        check_held_out("unet2d", summary, ["B", "C", "D"])
