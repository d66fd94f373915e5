import gzip
from pathlib import Path

import numpy as np
import pytest

from brats_unet.data.subjects import discover_subjects
from brats_unet.data.validation import InvalidSubject, load_subject
from brats_unet.io import save_nifti

from builders import AFFINE, tiny_volumes, write_subject

NAME = "BraTS20_Training_001"


def _files(data_dir: Path):
    (files,) = discover_subjects(data_dir).subjects
    return files


def _problem(data_dir: Path, **kwargs):
    with pytest.raises(InvalidSubject) as err:
        load_subject(_files(data_dir), **kwargs)
    return err.value.problem


def test_valid_subject_loads_with_geometry_and_canonical_labels(data_dir: Path):
    images, label, _ = tiny_volumes()
    write_subject(data_dir, NAME, images, label)
    loaded = load_subject(_files(data_dir))
    assert loaded.geometry.shape == images["flair"].shape
    np.testing.assert_allclose(loaded.geometry.affine, AFFINE)
    assert loaded.geometry.pixdim == pytest.approx((1.2, 0.9, 3.0))
    np.testing.assert_array_equal(loaded.images["t2"], images["t2"].astype(np.float32))
    np.testing.assert_array_equal(loaded.label, label)


def test_truncated_gzip_names_file_and_problem(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    path = folder / f"{NAME}_t1.nii.gz"
    path.write_bytes(path.read_bytes()[:400])
    problem = _problem(data_dir)
    assert (problem.subject, problem.file) == (NAME, f"{NAME}_t1.nii.gz")
    assert problem.problem.startswith("truncated or corrupt gzip data (400 bytes; EOFError: ")


def test_truncated_uncompressed_file(data_dir: Path):
    folder = write_subject(data_dir, NAME, extension=".nii")
    path = folder / f"{NAME}_t1.nii"
    path.write_bytes(path.read_bytes()[:600])
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_t1.nii"
    assert problem.problem.startswith("truncated file (600 bytes; OSError: Expected ")
    assert str(folder) not in problem.problem and "\n" not in problem.problem  # one line


def test_not_a_nifti(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    (folder / f"{NAME}_flair.nii.gz").write_bytes(gzip.compress(b"hello, not an image" * 40))
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_flair.nii.gz"
    assert problem.problem == ("not a NIfTI file: no NIfTI-1 or NIfTI-2 header "
                               "(it starts with b'hello, not an im')")


def test_text_file_named_nii_gz(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    (folder / f"{NAME}_t1ce.nii.gz").write_text("ID,Grade\n")
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_t1ce.nii.gz"
    assert problem.problem == ("not a NIfTI file: named .gz but not gzip-compressed "
                               "(it starts with b'ID,Grade\\n')")


def test_empty_file(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    (folder / f"{NAME}_seg.nii.gz").write_bytes(b"")
    problem = _problem(data_dir)
    assert (problem.file, problem.problem) == (f"{NAME}_seg.nii.gz", "empty file (0 bytes)")


def test_plain_garbage_file(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    (folder / f"{NAME}_t2.nii").write_bytes(b"\x00garbage" * 100)
    (folder / f"{NAME}_t2.nii.gz").unlink()
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_t2.nii"
    assert problem.problem.startswith("not a NIfTI file: no NIfTI-1 or NIfTI-2 header")


def test_complex_voxels(data_dir: Path):
    images, label, _ = tiny_volumes()
    images["t1"] = images["t1"].astype(np.complex64)
    write_subject(data_dir, NAME, images, label)
    problem = _problem(data_dir)
    assert problem.problem == "voxel type complex64 is not a real number type"


def test_4d_image(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    save_nifti(np.ones((4, 4, 4, 2), np.int16), AFFINE, folder / f"{NAME}_t1ce.nii.gz")
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_t1ce.nii.gz"
    assert problem.problem == "expected a 3D volume, got 4D of shape (4, 4, 4, 2)"


def test_trailing_singleton_dimension_is_one_volume(data_dir: Path):
    images, label, _ = tiny_volumes()
    images["t1"] = images["t1"][..., None]
    write_subject(data_dir, NAME, images, label)
    assert load_subject(_files(data_dir)).images["t1"].ndim == 3


def test_shape_mismatch(data_dir: Path):
    images, label, _ = tiny_volumes()
    images["t2"] = images["t2"][:-1]
    write_subject(data_dir, NAME, images, label)
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_t2.nii.gz" and "shape (10, 13, 7) differs" in problem.problem


def test_affine_mismatch_beyond_tolerance(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.5
    images, label, _ = tiny_volumes()
    save_nifti(label, shifted, folder / f"{NAME}_seg.nii.gz")
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_seg.nii.gz"
    assert problem.problem == (f"affine differs from {NAME}_flair.nii.gz's by up to 0.5 mm "
                               "(tolerance 0.001 mm)")
    # within a looser tolerance it is accepted
    assert load_subject(_files(data_dir), affine_atol_mm=1.0).label is not None


def test_nan_voxels(data_dir: Path):
    images, label, _ = tiny_volumes()
    flair = images["flair"].astype(np.float32)
    flair[3, 4, 2] = np.nan
    flair[3, 4, 3] = np.inf
    images["flair"] = flair
    write_subject(data_dir, NAME, images, label)
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_flair.nii.gz"
    assert problem.problem == f"1 NaN and 1 infinite voxels (of {flair.size})"


def test_all_zero_contrast(data_dir: Path):
    images, label, _ = tiny_volumes()
    images["t1"] = np.zeros_like(images["t1"])
    write_subject(data_dir, NAME, images, label)
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_t1.nii.gz" and "every voxel is 0" in problem.problem


def test_label_3_is_outside_the_2020_set(data_dir: Path):
    images, label, _ = tiny_volumes()
    label[label == 4] = 3
    write_subject(data_dir, NAME, images, label)
    problem = _problem(data_dir)
    assert problem.file == f"{NAME}_seg.nii.gz"
    assert problem.problem == ("labels [3] are outside the brats2020 set [0, 1, 2, 4] (are these "
                               "brats2023 labels? then set dataset: brats2023)")


def test_brats2021_reads_enhancing_tumour_4_and_points_label_3_to_brats2023(data_dir: Path):
    images, label, _ = tiny_volumes()
    write_subject(data_dir, NAME, images, label)
    np.testing.assert_array_equal(load_subject(_files(data_dir), label_convention="brats2021")
                                  .label, label)
    label[label == 4] = 3
    write_subject(data_dir, NAME, images, label)
    assert _problem(data_dir, label_convention="brats2021").problem == (
        "labels [3] are outside the brats2021 set [0, 1, 2, 4] (are these brats2023 labels? "
        "then set dataset: brats2023)")


def test_label_outside_every_set_has_no_hint(data_dir: Path):
    images, label, _ = tiny_volumes()
    label[0, 0, 0] = 7
    write_subject(data_dir, NAME, images, label)
    assert _problem(data_dir).problem == "labels [7] are outside the brats2020 set [0, 1, 2, 4]"


def test_nan_in_label_map(data_dir: Path):
    images, label, _ = tiny_volumes()
    label = label.astype(np.float32)
    label[0, 0, 0] = np.nan
    write_subject(data_dir, NAME, images, label)
    assert _problem(data_dir).problem == f"label map: 1 NaN and 0 infinite voxels (of {label.size})"


def test_2023_convention_maps_3_to_4(data_dir: Path):
    images, label, _ = tiny_volumes()
    label_2023 = label.copy()
    label_2023[label == 4] = 3
    write_subject(data_dir, NAME, images, label_2023)
    loaded = load_subject(_files(data_dir), label_convention="brats2023")
    np.testing.assert_array_equal(loaded.label, label)


def test_non_integer_labels(data_dir: Path):
    images, label, _ = tiny_volumes()
    write_subject(data_dir, NAME, images, label.astype(np.float32) * 0.5)
    assert "non-integer" in _problem(data_dir).problem


def test_empty_label_map_is_valid(data_dir: Path):
    images, label, _ = tiny_volumes()
    write_subject(data_dir, NAME, images, np.zeros_like(label))
    assert not load_subject(_files(data_dir)).label.any()


def test_unlabelled_subject_loads_without_label(data_dir: Path):
    write_subject(data_dir, NAME, with_label=False)
    assert load_subject(_files(data_dir)).label is None


def test_file_deleted_after_discovery(data_dir: Path):
    folder = write_subject(data_dir, NAME)
    files = _files(data_dir)
    (folder / f"{NAME}_t2.nii.gz").unlink()
    with pytest.raises(InvalidSubject, match="file not found"):
        load_subject(files)
