"""Synthetic cases on the MNI152 template: a real brain's tissues, the tumour in white matter."""

from __future__ import annotations

import numpy as np
import pytest

from brats_unet.data.synthetic import TISSUES, generate_case
from brats_unet.data.synthetic.generate import _generate
from brats_unet.data.synthetic.template import load_template, template_dir

SHAPE, SPACING = (48, 48, 32), (4.0, 4.0, 4.8)  # the demo's field of view, coarser


def _case(index, shape=SHAPE, spacing=SPACING, seed=3):
    return _generate(seed=seed, index=index, shape=shape, spacing_mm=spacing,
                     no_et_probability=0.25, anatomy="mni152")


def test_the_template_is_the_1_mm_icbm_2009_brain():
    brain, gm, wm, affine = load_template()
    assert brain.shape == gm.shape == wm.shape == (197, 233, 189)
    np.testing.assert_array_equal(np.diag(affine), [1, 1, 1, 1])
    assert 1400 < brain.sum() / 1000 < 2000  # ml: an adult brain
    assert 0 <= gm.min() and wm.max() <= 1 and (gm + wm)[~brain].max() < 0.5


@pytest.mark.parametrize("index", range(1, 5))
def test_a_real_brain_with_the_tumour_grown_in_its_white_matter(index):
    case, tissue = _case(index)
    brain = tissue != TISSUES.index("background")
    ml = np.prod(SPACING) / 1000
    assert 1100 < brain.sum() * ml < 2300
    counts = {t: int(np.count_nonzero(tissue == TISSUES.index(t)))
              for t in ("csf", "grey_matter", "white_matter")}
    assert counts["grey_matter"] > counts["csf"] > 0 and counts["white_matter"] > 0
    assert set(np.unique(case.label)) <= {0, 1, 2, 4} and (case.label > 0).any()
    assert not case.label[~brain].any()
    # the oedema (label 2) is the tissue map's oedema, which replaced white matter only
    assert np.array_equal(case.label == 2, tissue == TISSUES.index("oedema"))
    for image in case.images.values():
        assert np.array_equal(image != 0, brain)
        for axis in range(2):  # the brain fits the field of view, but for the brainstem
            assert not np.take(brain, [0, -1], axis=axis).any()
        assert not brain[:, :, -1].any() and brain[:, :, 0].mean() < 0.1


def test_the_anatomy_does_not_depend_on_the_grid():
    fine = generate_case(seed=3, index=2, shape=(96, 96, 64), spacing_mm=(2.0, 2.0, 2.4),
                         anatomy="mni152")
    coarse = generate_case(seed=3, index=2, shape=SHAPE, spacing_mm=SPACING, anatomy="mni152")
    for region in (lambda c: c.images["t1"] > 0, lambda c: c.label > 0):
        fine_ml = region(fine).sum() * np.prod(fine.pixdim) / 1000
        coarse_ml = region(coarse).sum() * np.prod(coarse.pixdim) / 1000
        assert coarse_ml == pytest.approx(fine_ml, rel=0.12)


def test_cases_differ_in_pose_and_tumour():
    (one, _), (two, _) = _case(1), _case(2)
    assert not np.array_equal(one.images["t1"] > 0, two.images["t1"] > 0)
    assert not np.array_equal(one.label > 0, two.label > 0)


def test_a_missing_template_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BRATS_UNET_TEMPLATE_DIR", str(tmp_path))
    assert template_dir() == tmp_path
    load_template.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="MNI152 template file missing: .*t1"):
            load_template()
    finally:
        load_template.cache_clear()
    monkeypatch.delenv("BRATS_UNET_TEMPLATE_DIR")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="BRATS_UNET_EXTRAS=anatomy"):
        template_dir()
    with pytest.raises(ValueError, match="anatomy must be one of"):
        generate_case(seed=1, index=1, shape=SHAPE, spacing_mm=SPACING, anatomy="mouse")
