"""The ``brats-unet qc`` command (the pipeline's checks on a data folder, without running it) and
``publish-weights`` (which trained models it takes from a config)."""

import json
from pathlib import Path

from brats_unet.cli import main
from brats_unet.data.qc import read_qc_table

from builders import tiny_volumes, write_subject, write_trained_files


def test_qc_command_lists_valid_noted_and_excluded_subjects(data_dir: Path, tmp_path: Path,
                                                              capsys):
    write_subject(data_dir, "S1")
    images, label, brain = tiny_volumes()
    label[0, 0, 0] = 4  # enhancing tumour outside the brain
    write_subject(data_dir, "S2", images=images, label=label)
    (write_subject(data_dir, "S3") / "S3_t1ce.nii.gz").write_bytes(b"not a NIfTI")

    out = tmp_path / "qc.tsv"
    assert main(["qc", str(data_dir), "--out", str(out)]) == 1  # an excluded subject: exit 1
    table = read_qc_table(out).set_index("subject")
    assert list(table["status"]) == ["included", "included", "excluded"]
    assert table.loc["S1", "note"] == "" and table.loc["S3", "file"] == "S3_t1ce.nii.gz"
    assert table.loc["S2", "note"].startswith("S2_seg.nii.gz: 1 tumour voxel where every")
    assert "2 subjects valid (1 with a warning), 1 excluded" in capsys.readouterr().err

    (data_dir / "S3" / "S3_t1ce.nii.gz").unlink()
    write_subject(data_dir, "S3")
    assert main(["qc", str(data_dir), "--out", str(out)]) == 0


def test_qc_command_on_a_missing_folder_says_so(tmp_path: Path, capsys):
    assert main(["qc", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_publish_weights_takes_every_fold_model_of_a_kfold_config(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    for member in ("unet2d", "unet2d.fold0", "unet2d.fold1", "unet2d.fold2", "unet3d.fold0"):
        write_trained_files(models, member)
    config = tmp_path / "config.yaml"
    config.write_text("model_names: [unet2d]\nsplit: {n_folds: 0}\n")
    kfold = tmp_path / "kfold.yaml"
    kfold.write_text("split: {n_folds: 3}\n")

    out = tmp_path / "weights"
    assert main(["publish-weights", "--models-dir", str(models), "--out", str(out),
                 "--config", str(config), str(kfold)]) == 0
    published = json.loads((out / "manifest.json").read_text())["models"]
    assert sorted(published) == ["unet2d.fold0", "unet2d.fold1", "unet2d.fold2"]
    assert (out / "unet2d.fold2.keras").read_bytes() == b"weights of unet2d.fold2"

    assert main(["publish-weights", "--models-dir", str(models), "--out", str(tmp_path / "one"),
                 "--config", str(config)]) == 0  # without k-fold: the model itself
    assert sorted(json.loads((tmp_path / "one/manifest.json").read_text())["models"]) == ["unet2d"]
