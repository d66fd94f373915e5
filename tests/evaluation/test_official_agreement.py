"""The dialects against the official packages (panoptica 2.1.7, BraTS-evaluation 0.0.10,
DeepMind's surface-distance 0.1), run in their own venv by tests/official/reference.py.

Equal to 1e-6 where the definitions coincide; every known deviation of the official code
has a test below that shows it. The 2023 lesion-wise scripts are not a package: their
lesion logic is implemented from their code and tested with known answers in
test_lesionwise.py; the HD95 they use is DeepMind's, compared here.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from brats_unet.evaluation.dialect_scores import dialect_scores
from brats_unet.evaluation.dialects import PANOPTICA_HD95_PENALTY_MM
from brats_unet.evaluation.metrics import hd95_mm
from brats_unet.evaluation.surfaces import surfel_distances_mm, surfel_hd95_mm

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_PYTHON = ROOT / ".venv-official" / "bin" / "python"
REGIONS = {"wt": (1, 2, 3), "tc": (1, 3), "et": (3,)}  # BraTS 2023 labels, as the packages read
SHAPE = (44, 40, 30)


def _ball(labels, centre, radius, value, spacing):
    grid = np.indices(labels.shape).astype(float)
    distance = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing))
    labels[distance <= radius ** 2] = value


def _tumour(spacing, shift=(0, 0, 0), et_lesions=((12, 12, 10, 4), (12, 23, 10, 3.5))):
    """Oedema around a necrotic core, ET lesions (centre and radius in mm) painted last."""
    labels = np.zeros(SHAPE, np.uint8)
    centre = [c + d for c, d in zip((15, 17, 12), shift)]
    _ball(labels, centre, 11, 2, spacing)
    _ball(labels, centre, 5, 1, spacing)
    for x, y, z, r in et_lesions:
        _ball(labels, (x / spacing[0] + shift[0], y / spacing[1] + shift[1], z / spacing[2]),
              r, 3, spacing)
    return labels


def _cases():
    iso, aniso = (1.0, 1.0, 1.0), (1.0, 0.9, 2.5)
    several = ((12, 12, 10, 4), (12, 21, 10, 3), (34, 30, 20, 1.6))   # two close, one small
    truth = _tumour(iso, et_lesions=several)
    pred = _tumour(iso, shift=(1, 0, 0), et_lesions=several[:2] + ((36, 8, 20, 2.5),))
    split = truth.copy()
    split[:, 12, :] = np.where(split[:, 12, :] == 3, 2, split[:, 12, :])   # halves an ET lesion
    no_et = np.where(truth == 3, 1, truth).astype(np.uint8)
    far = no_et.copy()
    far[38:42, 34:38, 24:28] = 3                                       # ET nowhere near truth's
    return {
        "lesions": (pred, truth, iso),
        "anisotropic": (_tumour(aniso, shift=(2, 1, 0)), _tumour(aniso), aniso),
        "split": (split, truth, iso),
        "et_empty_in_both": (no_et, no_et.copy(), iso),
        "et_missed": (no_et, truth, iso),
        "et_disjoint": (far, truth, iso),
    }


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    if not REFERENCE_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{REFERENCE_PYTHON} is missing: bin/setup with the test extra makes it")
        pytest.skip("no .venv-official: `BRATS_UNET_EXTRAS=test bash bin/setup` installs the "
                    "official packages")
    folder = tmp_path_factory.mktemp("official")
    arguments = []
    for name, (pred, truth, spacing) in _cases().items():
        np.savez(folder / f"{name}.npz", pred=pred, truth=truth, spacing=np.array(spacing))
        arguments += [str(folder / f"{name}.npz"), str(folder / f"{name}.json")]
    subprocess.run([str(REFERENCE_PYTHON), str(ROOT / "tests/official/reference.py"),
                    *arguments], check=True, capture_output=True, timeout=600)
    return {name: json.loads((folder / f"{name}.json").read_text())["regions"]
            for name in _cases()}


def _masks(case, region):
    pred, truth, spacing = _cases()[case]
    labels = REGIONS[region]
    return np.isin(truth, labels), np.isin(pred, labels), spacing


def _value(x):
    return {None: np.nan, "inf": np.inf}.get(x, x)


CASE_REGIONS = [(c, r) for c in _cases() for r in REGIONS]


@pytest.mark.parametrize("case,region", CASE_REGIONS)
def test_surfel_hd95_and_distances_are_deepminds(official, case, region):
    truth, pred, spacing = _masks(case, region)
    reference = official[case][region]
    assert surfel_hd95_mm(truth, pred, spacing) == pytest.approx(
        _value(reference["deepmind_hd95"]), abs=1e-9)
    if reference["deepmind_distances"] is not None:
        ours = surfel_distances_mm(truth, pred, spacing)
        theirs = reference["deepmind_distances"]
        for direction, other, areas, other_areas in (
                ("truth_to_pred", "distances_gt_to_pred", "truth_areas", "surfel_areas_gt"),
                ("pred_to_truth", "distances_pred_to_gt", "pred_areas", "surfel_areas_pred")):
            np.testing.assert_allclose(ours[direction], [_value(v) for v in theirs[other]],
                                       atol=1e-9)
            # the same (distance, area) surfels; ties in distance may come in another order
            mine = np.round(np.c_[ours[direction], ours[areas]], 9)
            them = np.round(np.c_[[_value(v) for v in theirs[other]], theirs[other_areas]], 9)
            np.testing.assert_allclose(mine[np.lexsort(mine.T[::-1])],
                                       them[np.lexsort(them.T[::-1])], atol=1e-9)


@pytest.mark.parametrize("case,region", CASE_REGIONS)
def test_instance_scores_are_panopticas_on_arrays(official, case, region):
    truth, pred, spacing = _masks(case, region)
    columns, lesions = dialect_scores(truth, pred, spacing)
    theirs = official[case][region]["panoptica"]
    assert (columns["panoptica_tp"], columns["panoptica_fp"], columns["panoptica_fn"]) == (
        theirs["tp"], theirs["fp"], theirs["fn"])
    for ours, key in (("rq", "rq"), ("dsc", "sq_dsc"), ("nsd", "sq_nsd"),
                      ("global_dsc", "global_bin_dsc"), ("official_global_nsd", "global_bin_nsd")):
        assert columns[f"panoptica_{ours}"] == pytest.approx(_value(theirs[key]), abs=1e-6,
                                                             nan_ok=True), ours
    official_hd95 = _value(theirs["sq_hd95"])
    if theirs["tp"]:
        assert columns["panoptica_hd95_mm"] == pytest.approx(official_hd95, abs=1e-6)
    elif theirs["fp"] or theirs["fn"]:   # deviation: no matched pair, the official infinity
        assert official_hd95 == np.inf and columns["panoptica_hd95_mm"] == 373.0
    global_hd95 = _value(theirs["global_bin_hd95"])   # the parser's 373 for infinity
    assert columns["panoptica_official_global_hd95"] == pytest.approx(
        PANOPTICA_HD95_PENALTY_MM if global_hd95 == np.inf else global_hd95, abs=1e-6,
        nan_ok=True)
    matched = sorted((r["sq_dsc"], r["sq_hd95"]) for r in theirs["reference_instances"]
                     if r["is_matched"])
    ours = sorted((row["dice"], row["hd95_mm"]) for row in lesions
                  if row["dialect"] == "panoptica" and row["status"] == "matched")
    np.testing.assert_allclose(np.reshape(ours, (-1, 2)), np.reshape(matched, (-1, 2)), atol=1e-6)


def test_a_prediction_split_in_two_is_one_match_and_one_false_positive(official):
    columns, _ = dialect_scores(*_masks("split", "et"))
    assert columns["panoptica_fp"] == official["split"]["et"]["panoptica"]["fp"] >= 1
    assert columns["lesionwise2023_fp"] == 0   # the 2023 dialect matches both halves


def test_deviation_files_pair_sitk_axes_with_nifti_spacing(official):
    """Given .nii.gz paths, BraTS-evaluation measures anisotropic cases along the wrong axes."""
    regions = official["anisotropic"]
    wrong = [r for r in REGIONS if _value(regions[r]["panoptica_from_nifti"]["sq_hd95"])
             != pytest.approx(_value(regions[r]["panoptica"]["sq_hd95"]), abs=1e-6)]
    assert wrong, "the file path and the array path agreed on an anisotropic case"
    for region in wrong:
        columns, _ = dialect_scores(*_masks("anisotropic", region))
        assert columns["panoptica_hd95_mm"] == pytest.approx(
            _value(regions[region]["panoptica"]["sq_hd95"]), abs=1e-6)


def test_deviation_global_hd95_in_voxels_and_without_distance(official):
    truth, pred, spacing = _masks("anisotropic", "wt")
    columns, _ = dialect_scores(truth, pred, spacing)
    theirs = official["anisotropic"]["wt"]["panoptica"]["global_bin_hd95"]
    assert theirs == pytest.approx(hd95_mm(pred, truth, (1, 1, 1)), abs=1e-6)   # voxels
    assert columns["panoptica_global_hd95_mm"] == pytest.approx(hd95_mm(pred, truth, spacing))
    assert columns["panoptica_global_hd95_mm"] != pytest.approx(theirs)
    columns, _ = dialect_scores(*_masks("et_disjoint", "et"))
    assert official["et_disjoint"]["et"]["panoptica"]["global_bin_hd95"] == "inf"
    assert 0 < columns["panoptica_global_hd95_mm"] < 100   # their real distance, in mm


def test_deviation_a_region_empty_in_both_is_nan_and_kept_nan(official):
    theirs = official["et_empty_in_both"]["et"]["panoptica"]
    columns, _ = dialect_scores(*_masks("et_empty_in_both", "et"))
    assert theirs["sq_dsc"] is None and theirs["global_bin_dsc"] is None
    assert np.isnan(columns["panoptica_dsc"]) and np.isnan(columns["panoptica_global_dsc"])
    assert columns["lesionwise2023_dice"] == 1.0   # the 2023 dialect: no lesion, no FP -> 1


def test_the_2023_hd95_is_not_the_legacy_hd95(official):
    """The 2023 scripts' "Legacy_HD95" is DeepMind's surfel HD95, not MedPy's."""
    differ = [(c, r) for c, r in CASE_REGIONS if _value(official[c][r]["deepmind_hd95"]) != np.inf
              and abs(_value(official[c][r]["deepmind_hd95"]) - hd95_mm(
                  _masks(c, r)[1], _masks(c, r)[0], _masks(c, r)[2])) > 1e-3]
    assert len(differ) >= 3
