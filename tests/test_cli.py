"""The ``brats-unet qc`` command: the pipeline's checks on a data folder, without running it."""

from pathlib import Path

from brats_unet.cli import main
from brats_unet.data.qc import read_qc_table

from builders import tiny_volumes, write_subject


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
