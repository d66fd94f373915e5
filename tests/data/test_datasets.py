"""Dataset conventions: each BraTS release's and the Decathlon's layout, names and labels."""

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_unet.config import config_problems
from brats_unet.data.datasets import (
    DATASETS,
    dataset,
    detect_dataset,
    explain_dataset,
    resolve_dataset,
)
from brats_unet.data.subjects import discover_subjects, raw_subject_files
from brats_unet.data.synthetic import (
    generate_case,
    generate_dataset,
    subject_index,
    subject_name,
    write_raw_case,
)
from brats_unet.data.validation import InvalidSubject, load_subject
from brats_unet.io import save_nifti
from brats_unet.labels import (
    ENHANCING,
    LABEL_SETS,
    NECROSIS,
    OEDEMA,
    RESECTION_CAVITY,
    from_canonical,
    region_masks,
    to_canonical,
)

SCHEMA = Path(__file__).resolve().parents[2] / "config/schema.yaml"
SHAPE = (24, 24, 16)


def _case(index: int = 1):
    return generate_case(seed=5, index=index, shape=SHAPE, no_et_probability=0.0)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_convention_round_trips_the_canonical_labels(name):
    canonical = np.array([0, NECROSIS, OEDEMA, ENHANCING], dtype=np.uint8)
    written = from_canonical(canonical, name)
    assert set(written.tolist()) <= LABEL_SETS[name]
    np.testing.assert_array_equal(to_canonical(written, name), canonical)


def test_file_values_of_each_release():
    canonical = np.array([0, NECROSIS, OEDEMA, ENHANCING], dtype=np.uint8)
    assert from_canonical(canonical, "brats2021").tolist() == [0, 1, 2, 4]
    assert from_canonical(canonical, "brats2023").tolist() == [0, 1, 2, 3]
    # the Decathlon: 1 oedema, 2 non-enhancing tumour, 3 enhancing tumour
    assert from_canonical(canonical, "msd-task01").tolist() == [0, 2, 1, 3]
    assert to_canonical(np.array([1, 2, 3]), "msd-task01").tolist() == [OEDEMA, NECROSIS,
                                                                        ENHANCING]


def test_the_resection_cavity_is_kept_out_of_every_region():
    labels = to_canonical(np.array([0, 1, 2, 3, 4]), "brats2024-post")
    assert labels.tolist() == [0, NECROSIS, OEDEMA, ENHANCING, RESECTION_CAVITY]
    assert not region_masks(labels)[-1].any()  # cavity: in none of WT, TC, ET
    assert from_canonical(labels, "brats2024-post").tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_subject_names_round_trip(name):
    layout = DATASETS[name]
    for index in (1, 42, 1251):
        assert subject_index(subject_name(index, layout), layout) == index
    with pytest.raises(ValueError, match="not a synthetic"):
        subject_index("someone_else", layout)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_case_written_in_each_layout_is_found_and_read_back_exactly(tmp_path, name):
    layout = DATASETS[name]
    names = generate_dataset(tmp_path, n=2, seed=5, shape=SHAPE, dataset=layout)
    found = discover_subjects(tmp_path, layout)
    assert [s.subject for s in found.subjects] == names and not found.excluded
    loaded = load_subject(found.subjects[0], label_convention=name)
    case = generate_case(seed=5, index=1, shape=SHAPE)
    for contrast, volume in case.images.items():
        np.testing.assert_array_equal(loaded.images[contrast], volume)
    np.testing.assert_array_equal(loaded.label, case.label)
    assert loaded.geometry.pixdim == pytest.approx(case.pixdim)


def test_the_file_names_of_each_layout(tmp_path):
    written = {name: sorted(str(p.relative_to(tmp_path / name))
                            for p in write_raw_case(_case(), tmp_path / name,
                                                    subject_name(1, DATASETS[name]),
                                                    DATASETS[name]).values())
               for name in ("brats2021", "brats2023", "msd-task01")}
    assert written["brats2021"] == [f"BraTS2021_00001/BraTS2021_00001_{r}.nii.gz"
                                    for r in ("flair", "seg", "t1", "t1ce", "t2")]
    assert written["brats2023"] == [f"BraTS-GLI-00001-000/BraTS-GLI-00001-000-{r}.nii.gz"
                                    for r in ("seg", "t1c", "t1n", "t2f", "t2w")]
    assert written["msd-task01"] == ["imagesTr/BRATS_001.nii.gz", "labelsTr/BRATS_001.nii.gz"]
    image = nib.load(tmp_path / "msd-task01/imagesTr/BRATS_001.nii.gz")
    assert image.shape == (*SHAPE, 4)  # FLAIR, T1w, T1gd, T2w
    np.testing.assert_array_equal(np.asarray(image.dataobj)[..., 2], _case().images["t1ce"])


@pytest.mark.parametrize("name, expected", [("brats2020", "brats2020"),
                                            ("brats2021", "brats2021"),
                                            ("brats2023", "brats2023"),
                                            ("brats2024-post", "brats2023"),
                                            ("msd-task01", "msd-task01")])
def test_auto_recognises_the_layout_from_the_file_names(tmp_path, name, expected):
    generate_dataset(tmp_path, n=2, seed=5, shape=SHAPE, dataset=DATASETS[name])
    chosen = resolve_dataset("auto", tmp_path)
    assert chosen.name == expected and explain_dataset(chosen.name, tmp_path)


def test_auto_says_what_it_found_when_nothing_fits(tmp_path):
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "image_0000.nii.gz").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"cannot tell the convention .* found image_0000"):
        detect_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_dataset(tmp_path / "missing")


def test_a_configured_dataset_wins_and_synthetic_data_defaults_to_brats2020(tmp_path):
    generate_dataset(tmp_path, n=1, seed=5, shape=SHAPE, dataset=DATASETS["brats2023"])
    assert resolve_dataset("brats2024-post", tmp_path).name == "brats2024-post"
    assert resolve_dataset("auto", "").name == "brats2020"
    with pytest.raises(ValueError, match="unknown dataset 'brats2019'"):
        dataset("brats2019")


def test_2023_names_read_as_2020_are_excluded_with_the_dataset_to_set(tmp_path):
    generate_dataset(tmp_path, n=1, seed=5, shape=SHAPE, dataset=DATASETS["brats2023"])
    (problem,) = discover_subjects(tmp_path, DATASETS["brats2020"]).excluded
    assert problem.problem.endswith("(these are brats2023 names: set dataset: brats2023 or auto)")
    assert discover_subjects(tmp_path, DATASETS["msd-task01"]).subjects == []  # no imagesTr/


def test_a_2023_label_4_points_to_the_post_treatment_release(tmp_path):
    layout = DATASETS["brats2023"]
    (name,) = generate_dataset(tmp_path, n=1, seed=5, shape=SHAPE, dataset=layout)
    files = raw_subject_files(tmp_path, name, dataset=layout)
    label = np.asarray(nib.load(files.label).dataobj).copy()
    label[0, 0, 0] = 4
    save_nifti(label, nib.load(files.label).affine, files.label)
    with pytest.raises(InvalidSubject) as caught:
        load_subject(files, label_convention="brats2023")
    assert caught.value.problem.file == f"{name}-seg.nii.gz"
    assert caught.value.problem.problem == (
        "labels [4] are outside the brats2023 set [0, 1, 2, 3] (are these brats2024-post "
        "labels? then set dataset: brats2024-post)")
    loaded = load_subject(files, label_convention="brats2024-post")
    assert loaded.label[0, 0, 0] == RESECTION_CAVITY


def test_the_decathlon_layout_unlabelled_images_and_strays(tmp_path):
    layout = DATASETS["msd-task01"]
    generate_dataset(tmp_path, n=2, seed=5, shape=SHAPE, dataset=layout)
    write_raw_case(_case(3), tmp_path, "BRATS_900", layout)
    (tmp_path / "labelsTr/BRATS_900.nii.gz").rename(tmp_path / "labelsTr/BRATS_999.nii.gz")
    test_image = raw_subject_files(tmp_path, "BRATS_500", dataset=layout, with_label=False)
    (tmp_path / "imagesTs").mkdir()
    (tmp_path / "imagesTr/BRATS_001.nii.gz").rename(test_image.images["flair"])
    (tmp_path / "imagesTr/._BRATS_002.nii.gz").write_bytes(b"macOS")
    found = discover_subjects(tmp_path, layout)
    by_name = {s.subject: s for s in found.subjects}
    assert sorted(by_name) == ["BRATS_002", "BRATS_500", "BRATS_900"]
    assert not by_name["BRATS_500"].has_label and not by_name["BRATS_900"].has_label
    assert by_name["BRATS_002"].has_label
    assert any("._BRATS_002" in note and "hidden" in note for note in found.ignored)
    assert any("BRATS_999" in note and "without an image" in note for note in found.ignored)


def test_a_decathlon_image_that_is_not_4d_names_the_file_and_the_shape(tmp_path):
    layout = DATASETS["msd-task01"]
    (name,) = generate_dataset(tmp_path, n=1, seed=5, shape=SHAPE, dataset=layout)
    files = raw_subject_files(tmp_path, name, dataset=layout)
    image = nib.load(files.images["flair"])
    save_nifti(np.asarray(image.dataobj)[..., :3], image.affine, files.images["flair"])
    with pytest.raises(InvalidSubject) as caught:
        load_subject(files, label_convention="msd-task01")
    assert caught.value.problem.file == f"imagesTr/{name}.nii.gz"
    assert caught.value.problem.problem == (
        f"expected a 4D image of 4 contrasts (X, Y, Z, 4), got shape {(*SHAPE, 3)}")


def test_a_config_still_setting_label_convention_is_told_what_replaced_it():
    problems = config_problems({"label_convention": "brats2021"}, SCHEMA)
    (explained,) = [p for p in problems if p.startswith("label_convention: replaced by dataset")]
    assert "BraTS 2021 labels ET 4" in explained and "brats2023 for ET = 3" in explained


def test_a_post_treatment_map_without_enhancing_tumour_is_pointed_to_its_own_release(tmp_path):
    """Labels {0, 1, 2, 4} in 2023-named files fit BraTS 2020's set too; the hint names the
    convention that is named like the folder."""
    layout = DATASETS["brats2023"]
    (name,) = generate_dataset(tmp_path, n=1, seed=5, shape=SHAPE, dataset=layout)
    files = raw_subject_files(tmp_path, name, dataset=layout)
    label = np.asarray(nib.load(files.label).dataobj).copy()
    label[label == 3] = 1
    label[0, 0, 0] = 4
    save_nifti(label, nib.load(files.label).affine, files.label)
    with pytest.raises(InvalidSubject) as caught:
        load_subject(files, label_convention="brats2023")
    assert caught.value.problem.problem.endswith(
        "(are these brats2024-post labels? then set dataset: brats2024-post)")


def test_auto_recognises_a_decathlon_folder_of_unlabelled_images_only(tmp_path):
    layout = DATASETS["msd-task01"]
    write_raw_case(_case(), tmp_path, "BRATS_500", layout)
    (tmp_path / "labelsTr/BRATS_500.nii.gz").unlink()
    (tmp_path / "imagesTs").mkdir()
    (tmp_path / "imagesTr/BRATS_500.nii.gz").rename(tmp_path / "imagesTs/BRATS_500.nii.gz")
    (tmp_path / "imagesTr").rmdir()
    (tmp_path / "labelsTr").rmdir()
    assert detect_dataset(tmp_path)[0].name == "msd-task01"
    (subject,) = discover_subjects(tmp_path, layout).subjects
    assert not subject.has_label


def test_hidden_copies_in_a_subject_folder_are_noted_not_taken_for_a_second_contrast(tmp_path):
    (name,) = generate_dataset(tmp_path, n=1, seed=5, shape=SHAPE)
    (tmp_path / name / f"._{name}_flair.nii.gz").write_bytes(b"macOS resource fork")
    found = discover_subjects(tmp_path)
    assert [s.subject for s in found.subjects] == [name] and not found.excluded
    assert any(f"._{name}_flair" in note and "hidden" in note for note in found.ignored)


def test_one_decathlon_subject_twice_is_excluded_naming_both_files(tmp_path):
    layout = DATASETS["msd-task01"]
    generate_dataset(tmp_path, n=2, seed=5, shape=SHAPE, dataset=layout)
    (tmp_path / "imagesTs").mkdir()
    shutil.copy(tmp_path / "imagesTr/BRATS_001.nii.gz", tmp_path / "imagesTs/BRATS_001.nii.gz")
    (tmp_path / "BraTS20_Training_009").mkdir()
    found = discover_subjects(tmp_path, layout)
    assert [s.subject for s in found.subjects] == ["BRATS_002"]
    (problem,) = found.excluded
    assert (problem.subject, problem.file, problem.problem) == (
        "BRATS_001", "imagesTr/BRATS_001.nii.gz, imagesTs/BRATS_001.nii.gz",
        "two images of one subject")
    assert any("BraTS20_Training_009" in note and "not part of the Decathlon's layout" in note
               for note in found.ignored)


def test_the_reason_for_a_dataset_comes_from_the_data_not_from_how_the_config_spells_it(tmp_path):
    generate_dataset(tmp_path, n=1, seed=5, shape=SHAPE, dataset=DATASETS["brats2021"])
    assert resolve_dataset("auto", tmp_path).name == "brats2021"
    # auto and explicit: one sentence, the detection's
    assert explain_dataset("brats2021", tmp_path) == detect_dataset(tmp_path)[1]
    assert explain_dataset("brats2020", tmp_path).startswith("as configured, with BraTS 2018-2021")
    assert explain_dataset("brats2023", tmp_path).startswith(
        "as configured, although auto would take brats2021")
    assert explain_dataset("brats2020", "") == "synthetic data, written in the BraTS 2020 layout"
