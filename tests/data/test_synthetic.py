"""Synthetic BraTS-format cases: labels, skull stripping, contrasts, geometry, files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brats_unet.data import synthetic
from brats_unet.data.synthetic import (
    CONTRASTS,
    TISSUES,
    generate_case,
    generate_dataset,
    subject_name,
    write_raw_case,
)
from brats_unet.data.synthetic.generate import _generate

# 192 x 192 x 154 mm, like the pipeline's demo grid (96, 96, 64) at half the resolution.
SHAPE = (48, 48, 32)
SPACING = (4.0, 4.0, 4.8)
# Finer, for the intensity checks: less partial volume in thin structures.
FINE_SHAPE = (64, 64, 40)
FINE_SPACING = (3.0, 3.0, 3.84)
INDICES = range(1, 9)


def tissue(name: str) -> int:
    return TISSUES.index(name)


def case_and_tissue(index: int, *, seed: int = 7, shape=SHAPE, spacing=SPACING,
                    no_et_probability: float = 0.2):
    return _generate(seed=seed, index=index, shape=shape, spacing_mm=spacing,
                     no_et_probability=no_et_probability)


def test_subject_name():
    assert subject_name(1) == "BraTS20_Training_001"
    assert subject_name(42) == "BraTS20_Training_042"
    assert subject_name(1234) == "BraTS20_Training_1234"
    with pytest.raises(ValueError):
        subject_name(-1)


@pytest.mark.parametrize("index", INDICES)
def test_labels_and_skull_stripping(index):
    case, tissues = case_and_tissue(index)
    brain = tissues != tissue("background")
    assert case.label.dtype == np.uint8 and case.label.shape == SHAPE
    assert set(np.unique(case.label)) <= {0, 1, 2, 4}
    assert (case.label > 0).any()
    assert sorted(case.images) == sorted(CONTRASTS)
    for contrast, image in case.images.items():
        assert image.dtype == np.int16 and image.shape == SHAPE, contrast
        assert np.array_equal(image != 0, brain), contrast
        assert (image[brain] > 0).all(), contrast
    assert not (case.label[~brain]).any()
    # The brain fits in the field of view: nothing on the border.
    for axis in range(3):
        assert not np.take(brain, [0, -1], axis=axis).any()


@pytest.mark.parametrize("index", INDICES)
def test_enhancing_tumour_follows_probability(index):
    with_et = generate_case(seed=3, index=index, shape=SHAPE, spacing_mm=SPACING,
                            no_et_probability=0.0)
    assert with_et.has_enhancing and (with_et.label == 4).any()
    without = generate_case(seed=3, index=index, shape=SHAPE, spacing_mm=SPACING,
                            no_et_probability=1.0)
    assert not without.has_enhancing and not (without.label == 4).any()
    assert (without.label == 1).any()


def test_both_kinds_occur_at_the_default_probability():
    kinds = {generate_case(seed=11, index=i, shape=SHAPE, spacing_mm=SPACING).has_enhancing
             for i in range(1, 31)}
    assert kinds == {True, False}


def median(image: np.ndarray, mask: np.ndarray) -> float:
    assert mask.sum() >= 3, "too few voxels to compare"
    return float(np.median(image[mask]))


@pytest.mark.parametrize("index", INDICES)
def test_contrasts_relate_like_real_ones(index):
    case, tissues = case_and_tissue(index, shape=FINE_SHAPE, spacing=FINE_SPACING,
                                    no_et_probability=0.0)
    img = case.images
    label = case.label
    normal = (tissues != tissue("background")) & (label == 0)
    wm, gm, csf = (tissues == tissue(t) for t in ("white_matter", "grey_matter", "csf"))
    oedema, et = label == 2, label == 4

    assert median(img["t1"], wm) > median(img["t1"], gm)
    assert median(img["t2"], gm) > median(img["t2"], wm)
    assert median(img["flair"], gm) > median(img["flair"], wm)
    for contrast in ("flair", "t1"):
        assert median(img[contrast], csf) < median(img[contrast], wm), contrast
    assert median(img["t2"], csf) > median(img["t2"], gm)
    for contrast in ("flair", "t2"):
        assert median(img[contrast], oedema) > median(img[contrast], normal), contrast
        assert median(img[contrast], oedema) > median(img[contrast], wm), contrast
    assert median(img["t1ce"], et) > median(img["t1ce"], normal)
    assert median(img["t1ce"], et) > median(img["t1ce"], wm)


def test_necrosis_dark_on_t1_bright_on_t2():
    checked = 0
    for index in INDICES:
        case, tissues = case_and_tissue(index, shape=FINE_SHAPE, spacing=FINE_SPACING,
                                        no_et_probability=0.0)
        necrosis = case.label == 1
        if necrosis.sum() < 3:  # a small core may be all rim at 3 mm
            continue
        normal = (tissues != tissue("background")) & (case.label == 0)
        img = case.images
        assert median(img["t1"], necrosis) < median(img["t1"], normal)
        assert median(img["t1ce"], necrosis) < median(img["t1ce"], normal)
        assert median(img["t2"], necrosis) > median(img["t2"], normal)
        checked += 1
    assert checked >= len(INDICES) // 2


def test_same_seed_and_index_give_identical_cases_and_files(tmp_path: Path):
    a = generate_case(seed=5, index=2, shape=SHAPE, spacing_mm=SPACING)
    b = generate_case(seed=5, index=2, shape=SHAPE, spacing_mm=SPACING)
    assert np.array_equal(a.label, b.label) and np.array_equal(a.affine, b.affine)
    for contrast in CONTRASTS:
        assert np.array_equal(a.images[contrast], b.images[contrast])
    first = write_raw_case(a, tmp_path / "one", "BraTS20_Training_002")
    second = write_raw_case(b, tmp_path / "two", "BraTS20_Training_002")
    for role in first:
        assert first[role].read_bytes() == second[role].read_bytes(), role


def test_other_index_or_seed_gives_another_case():
    base = generate_case(seed=5, index=2, shape=SHAPE, spacing_mm=SPACING)
    for other in (generate_case(seed=5, index=3, shape=SHAPE, spacing_mm=SPACING),
                  generate_case(seed=6, index=2, shape=SHAPE, spacing_mm=SPACING)):
        assert not np.array_equal(base.label, other.label)
        assert not np.array_equal(base.images["t1"], other.images["t1"])


def world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.argwhere(mask).mean(axis=0)
    return affine[:3, :3] @ ijk + affine[:3, 3]


@pytest.mark.parametrize("index", [1, 4])
def test_geometry_is_in_millimetres(index):
    """A coarser grid over the same field of view samples the same brain and tumour."""
    fine = generate_case(seed=9, index=index, shape=(96, 96, 64), spacing_mm=(2.0, 2.0, 2.4))
    coarse = generate_case(seed=9, index=index, shape=SHAPE, spacing_mm=SPACING)
    fine_ml, coarse_ml = (np.prod(c.pixdim) / 1000 for c in (fine, coarse))
    for region in (lambda c: c.images["t1"] > 0, lambda c: c.label > 0):
        volumes = region(fine).sum() * fine_ml, region(coarse).sum() * coarse_ml
        assert volumes[1] == pytest.approx(volumes[0], rel=0.1)
        shift = (world_centroid(region(fine), fine.affine)
                 - world_centroid(region(coarse), coarse.affine))
        assert np.abs(shift).max() < 2.0
    assert fine.has_enhancing == coarse.has_enhancing


def test_small_field_of_view_shrinks_the_brain_to_fit():
    case, tissues = case_and_tissue(1, shape=(40, 40, 30), spacing=(2.0, 2.0, 2.0))
    brain = tissues != tissue("background")
    assert brain.mean() > 0.2
    for axis in range(3):
        assert not np.take(brain, [0, -1], axis=axis).any()
    assert (case.label > 0).any()


def test_affine_is_brats_like():
    case = generate_case(seed=1, index=1, shape=SHAPE, spacing_mm=SPACING)
    assert nib.aff2axcodes(case.affine) == ("L", "P", "S")
    assert np.allclose(np.abs(np.diag(case.affine)[:3]), SPACING)
    assert case.pixdim == SPACING
    centre = case.affine @ np.append((np.array(SHAPE) - 1) / 2, 1.0)
    assert np.allclose(centre[:3], synthetic.WORLD_CENTRE_MM)


def test_write_raw_case_files_load_back(tmp_path: Path):
    case = generate_case(seed=1, index=3, shape=SHAPE, spacing_mm=SPACING)
    name = "BraTS20_Training_003"
    written = write_raw_case(case, tmp_path, name)
    assert list(written) == [*CONTRASTS, "seg"]
    for role, path in written.items():
        assert path == tmp_path / name / f"{name}_{role}.nii.gz"
        image = nib.load(path)
        assert np.allclose(image.affine, case.affine)
        assert image.header.get_zooms() == pytest.approx(SPACING)
        data = np.asanyarray(image.dataobj)
        expected = case.label if role == "seg" else case.images[role]
        assert data.dtype == expected.dtype
        assert np.array_equal(data, expected)


def test_generate_dataset_writes_subject_folders(tmp_path: Path):
    names = generate_dataset(tmp_path, n=3, seed=4, shape=SHAPE, spacing_mm=SPACING)
    assert names == ["BraTS20_Training_001", "BraTS20_Training_002", "BraTS20_Training_003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    for name in names:
        files = sorted(p.name for p in (tmp_path / name).iterdir())
        assert files == sorted(f"{name}_{role}.nii.gz" for role in (*CONTRASTS, "seg"))
    # Case k of a dataset is the case generated alone with index k.
    alone = generate_case(seed=4, index=2, shape=SHAPE, spacing_mm=SPACING)
    seg = np.asanyarray(nib.load(tmp_path / names[1] / f"{names[1]}_seg.nii.gz").dataobj)
    assert np.array_equal(seg, alone.label)


def test_generate_dataset_start_index(tmp_path: Path):
    names = generate_dataset(tmp_path, n=2, seed=4, shape=SHAPE, spacing_mm=SPACING,
                             start_index=999)
    assert names == ["BraTS20_Training_999", "BraTS20_Training_1000"]


@pytest.mark.parametrize("kwargs", [
    {"seed": -1},
    {"no_et_probability": 1.5},
    {"spacing_mm": (1.0, 0.0, 1.0)},
])
def test_bad_arguments_are_refused(kwargs):
    args = {"seed": 1, "index": 1, "shape": SHAPE, "spacing_mm": SPACING, **kwargs}
    with pytest.raises(ValueError):
        generate_case(**args)
