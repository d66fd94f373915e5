from pathlib import Path

import numpy as np
import pytest

from brats_unet.data.subjects import CONTRASTS, discover_subjects
from brats_unet.data.validation import LoadedSubject, load_subject
from brats_unet.io import Geometry, geometry_of, read_json, read_nifti, save_nifti, write_json
from brats_unet.preprocessing.cases import (
    IMAGE_FILE,
    LABEL_FILE,
    brain_mask,
    crop,
    from_storage,
    open_case,
    preprocess_subject,
    preprocess_to_folder,
    read_qc,
    restore_to_input_space,
    to_storage,
    tumour_voxels_outside,
    uncrop,
    zscore,
)
from brats_unet.preprocessing.properties import KEYS, PROPERTIES_FILE, read_case_properties
from brats_unet.voxels import bounding_box

from builders import AFFINE, tiny_volumes, write_subject

NAME = "BraTS20_Training_001"


def test_crop_then_uncrop_gives_back_the_original_exactly():
    rng = np.random.default_rng(1)
    volume = np.zeros((9, 8, 7), np.float32)
    volume[2:6, 1:7, 3:5] = rng.normal(size=(4, 6, 2))
    start, stop = bounding_box(volume != 0)
    back = uncrop(crop(volume, start, stop), start, volume.shape)
    np.testing.assert_array_equal(back, volume)


def test_uncrop_keeps_trailing_channel_axes():
    cropped = np.ones((2, 2, 2, 3), np.float32)
    out = uncrop(cropped, (1, 0, 3), (4, 4, 6))
    assert out.shape == (4, 4, 6, 3) and out.sum() == 24 and out[1:3, 0:2, 3:5].all()


def test_zscore_uses_brain_statistics_only():
    voxels = np.array([[0, 0, 2, 4, 6, 8]], np.float32)
    mask = voxels > 0
    out, mean, std = zscore(voxels, mask)
    assert mean == 5.0 and std == pytest.approx(np.sqrt(5.0))
    np.testing.assert_allclose(out[mask], (voxels[mask] - 5) / np.sqrt(5), rtol=1e-6)
    assert (out[~mask] == 0).all()


def test_zscore_of_a_flat_contrast_is_centred_not_nan():
    out, mean, std = zscore(np.full((3, 3), 7.0, np.float32), np.ones((3, 3), bool))
    assert std == 0 and (out == 0).all()


def test_storage_axes_put_the_axial_axis_first():
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    stored = to_storage(volume)
    assert stored.shape == (4, 3, 2) and stored.flags["C_CONTIGUOUS"]
    assert stored[3, 1, 0] == volume[0, 1, 3]
    np.testing.assert_array_equal(from_storage(stored), volume)


def test_preprocessed_case_statistics(data_dir: Path):
    images, label, brain = tiny_volumes()
    write_subject(data_dir, NAME, images, label)
    (files,) = discover_subjects(data_dir).subjects
    case = preprocess_subject(load_subject(files))
    # the brain box is 7 x 8 x 5 voxels (i, j, k); stored (k, j, i, channel)
    assert case.image.shape == (5, 8, 7, 4) and case.image.dtype == np.float32
    assert case.label.shape == (5, 8, 7) and case.label.dtype == np.uint8
    for channel in range(4):
        inside = case.image[..., channel]
        assert inside.mean() == pytest.approx(0.0, abs=1e-5)
        assert inside.std() == pytest.approx(1.0, abs=1e-5)
    props = case.properties
    assert props.crop_start == (2, 3, 1) and props.crop_stop == (9, 11, 6)
    assert props.cropped_shape_ijk == (7, 8, 5)
    assert props.region_voxels == {"WT": 27, "TC": 8, "ET": 7, "outside_brain": 0}
    assert props.channels == CONTRASTS
    assert props.intensity["flair"]["brain_mean"] == pytest.approx(
        float(images["flair"][brain].mean()))


def test_prediction_goes_back_into_the_flipped_anisotropic_input_space(data_dir: Path, tmp_path):
    images, label, _ = tiny_volumes(shape=(11, 13, 7))
    write_subject(data_dir, NAME, images, label)
    (files,) = discover_subjects(data_dir).subjects
    case = preprocess_subject(load_subject(files))
    restored = restore_to_input_space(case.label, case.properties)
    np.testing.assert_array_equal(restored, label)
    out = tmp_path / "pred.nii.gz"
    geometry = load_subject(files).geometry
    save_nifti(restored, geometry.affine, out, pixdim=geometry.pixdim)
    image, voxels = read_nifti(out)
    written = geometry_of(image)
    assert written.shape == (11, 13, 7)
    np.testing.assert_array_equal(written.affine, geometry.affine)  # bit for bit
    np.testing.assert_allclose(written.affine, AFFINE, rtol=1e-6)  # float32 in the header
    assert written.pixdim == pytest.approx((1.2, 0.9, 3.0))
    np.testing.assert_array_equal(voxels, label)


def test_folder_round_trip_is_memory_mapped(data_dir: Path, tmp_path: Path):
    write_subject(data_dir, NAME)
    (files,) = discover_subjects(data_dir).subjects
    out = tmp_path / "pre" / NAME
    record = preprocess_to_folder(files, out)
    assert record["status"] == "included" and record["has_label"] is True
    assert read_qc(out) == record
    image, label, props = open_case(out)
    assert isinstance(image, np.memmap) and image.shape == (5, 8, 7, 4)
    assert label.shape == (5, 8, 7) and props.subject == NAME
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_properties_json_round_trips_and_a_bad_one_names_the_file(data_dir: Path, tmp_path: Path):
    write_subject(data_dir, NAME)
    (files,) = discover_subjects(data_dir).subjects
    out = tmp_path / "pre" / NAME
    preprocess_to_folder(files, out)
    written = read_json(out / PROPERTIES_FILE)
    props = read_case_properties(out)
    assert props.to_json() == written
    assert list(written) == ["subject", "geometry", "crop_start", "crop_stop", "storage_axes",
                             "channels", "cropped_shape_ijk", "brain_voxels", "intensity",
                             "has_label", "region_voxels"]
    assert set(written) == set(KEYS)
    np.testing.assert_array_equal(props.geometry.affine, load_subject(files).geometry.affine)
    del written["crop_stop"]
    written["extra"] = 1
    write_json(written, out / PROPERTIES_FILE)
    with pytest.raises(ValueError, match=r"properties.json.*missing keys \['crop_stop'\].*"
                       r"unknown keys \['extra'\]"):
        read_case_properties(out)


def test_tumour_voxels_outside_a_mask_are_counted():
    mask = np.zeros((3, 4), dtype=bool)
    mask[1:, 1:] = True
    label = np.array([[2, 0, 0, 1], [0, 4, 4, 0], [1, 0, 0, 2]], dtype=np.uint8)
    assert tumour_voxels_outside(label, mask) == 3  # (0, 0), (0, 3), (2, 0): row 0, column 0
    assert tumour_voxels_outside(label, np.ones_like(mask)) == 0


def test_tumour_labels_outside_the_brain_are_kept_and_noted(data_dir: Path, tmp_path: Path):
    images, label, brain = tiny_volumes()
    label[0, 0, 0] = 2  # oedema where every contrast is 0, outside the brain's box
    label[2, 3, 1] = 0  # a brain voxel (at the box's corner) ...
    for contrast in CONTRASTS:
        images[contrast][2, 3, 1] = 0  # ... emptied in every contrast, then labelled
    label[2, 3, 1] = 1
    write_subject(data_dir, NAME, images=images, label=label)
    (files,) = discover_subjects(data_dir).subjects
    out = tmp_path / "pre" / NAME
    record = preprocess_to_folder(files, out)
    assert record["status"] == "included" and read_qc(out) == record
    assert record["note"].startswith(f"{NAME}_seg.nii.gz: 2 tumour voxels where every "
                                     "contrast is 0")
    _, _, props = open_case(out)
    assert props.region_voxels["outside_brain"] == 2
    assert props.region_voxels["WT"] == int(np.count_nonzero(label[2:9, 3:11, 1:6]))

    write_subject(data_dir, NAME)  # the same subject without them: no note
    assert preprocess_to_folder(files, out)["note"] == ""


def test_invalid_subject_gets_a_qc_record_and_no_arrays(data_dir: Path, tmp_path: Path):
    folder = write_subject(data_dir, NAME)
    (folder / f"{NAME}_t2.nii.gz").write_bytes(b"broken")
    (files,) = discover_subjects(data_dir).subjects
    out = tmp_path / "pre" / NAME
    record = preprocess_to_folder(files, out)
    assert record["status"] == "excluded" and record["file"] == f"{NAME}_t2.nii.gz"
    assert read_qc(out) == record
    assert not (out / IMAGE_FILE).exists() and not (out / LABEL_FILE).exists()


def test_rewriting_replaces_the_folder_whole(data_dir: Path, tmp_path: Path):
    write_subject(data_dir, NAME)
    (files,) = discover_subjects(data_dir).subjects
    out = tmp_path / "pre" / NAME
    preprocess_to_folder(files, out)
    (out / "stale.txt").write_text("from an older run")
    preprocess_to_folder(files, out)
    assert not (out / "stale.txt").exists()


def test_brain_mask_is_the_union_of_non_zero_voxels():
    a = np.zeros((2, 2, 1))
    b = np.zeros((2, 2, 1))
    a[0, 0, 0] = 1
    b[1, 1, 0] = -3
    assert brain_mask({"a": a, "b": b}).sum() == 2


@pytest.mark.parametrize("dtypes", [("int16", "int16"), ("int16", "int32"), ("uint8", "float32")])
def test_brain_mask_of_integer_and_mixed_volumes(dtypes):
    a = np.zeros((3, 2, 2), dtype=dtypes[0])
    b = np.zeros((3, 2, 2), dtype=dtypes[1])
    a[0, 0, 0] = 1 if dtypes[0] == "uint8" else -1
    b[2, 1, 1] = 65536 if dtypes[1] == "int32" else 7  # 65536 would vanish cast to int16
    assert sorted(zip(*np.nonzero(brain_mask({"a": a, "b": b})))) == [(0, 0, 0), (2, 1, 1)]


def test_preprocessing_is_the_same_for_any_memory_order_and_integer_or_float_input():
    rng = np.random.default_rng(0)
    shape = (12, 10, 8)
    images = {}
    for c in CONTRASTS:
        v = rng.integers(-50, 300, size=shape).astype(np.int16)
        v[:2] = 0
        v[:, :1] = 0
        images[c] = v
    label = np.zeros(shape, dtype=np.uint8)
    label[4:7, 3:6, 2:5] = 2
    label[5, 4, 3] = 4
    label[0, 0, 0] = 1  # outside the brain: every contrast is 0 there
    geometry = Geometry(shape, np.eye(4), (1.0, 1.0, 1.0))
    cases = []
    for order, dtype in (("C", np.int16), ("F", np.int16), ("F", np.float32)):
        loaded = LoadedSubject("S", {c: np.asarray(v, dtype=dtype, order=order)
                                     for c, v in images.items()},
                               np.asarray(label, order=order), geometry)
        cases.append(preprocess_subject(loaded))
    for case in cases[1:]:
        np.testing.assert_allclose(case.image, cases[0].image, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(case.label, cases[0].label)
        assert case.properties.crop_start == cases[0].properties.crop_start
    case = cases[0]
    assert case.properties.crop_start == (2, 1, 0) and case.properties.crop_stop == (12, 10, 8)
    assert case.image.shape == (8, 9, 10, 4) and case.image.flags.c_contiguous
    # channel 0 is FLAIR z-scored within the brain: mean 0, std 1 there, exactly 0 outside
    flair = case.image[..., 0]
    brain = np.swapaxes(images["flair"][2:, 1:, :] != 0, 0, 2) | np.any(
        [np.swapaxes(images[c][2:, 1:, :] != 0, 0, 2) for c in CONTRASTS], axis=0)
    assert abs(flair[brain].mean()) < 1e-5 and abs(flair[brain].std() - 1) < 1e-4
    assert not flair[~brain].any()
    assert case.properties.region_voxels == {"WT": 27, "TC": 1, "ET": 1, "outside_brain": 1}


def test_atomic_writes_get_ordinary_permissions(tmp_path: Path):
    import os
    import stat

    from brats_unet.io import write_json

    write_json({"a": 1}, tmp_path / "x.json")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~mask


def test_properties_whose_crop_shape_disagrees_with_the_box_are_refused(data_dir: Path, tmp_path):
    write_subject(data_dir, NAME)
    (files,) = discover_subjects(data_dir).subjects
    out = tmp_path / "pre" / NAME
    preprocess_to_folder(files, out)
    written = read_json(out / PROPERTIES_FILE)
    written["cropped_shape_ijk"][0] += 1
    write_json(written, out / PROPERTIES_FILE)
    with pytest.raises(ValueError, match="cropped_shape_ijk .* is not crop_stop - crop_start"):
        read_case_properties(out)
