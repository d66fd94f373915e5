"""Synthetic longitudinal pairs (known growth, another grid, a moved head) and the pairs table."""

import numpy as np
import pytest

from brats_unet.data.pairs import check_pairs, pair_subjects, read_pairs
from brats_unet.data.synthetic import generate_case
from brats_unet.data.synthetic.longitudinal import (
    FOLLOW_UP_OFFSET,
    FollowUp,
    generate_follow_up,
    moved,
    pair_rows,
    plan_follow_ups,
    rotation_matrix,
)
from brats_unet.evaluation.volumetry import tissue_volumes_ml
from brats_unet.labels import ENHANCING, NECROSIS

SHAPE, SPACING = (48, 48, 32), (4.0, 4.0, 4.8)


def _centroid_mm(case, mask):
    voxels = np.argwhere(mask).mean(axis=0)
    return case.affine[:3, :3] @ voxels + case.affine[:3, 3]


def test_plans_are_deterministic_with_known_factors_and_other_grids():
    plans = plan_follow_ups(4, seed=7, first_index=5, shape=SHAPE, spacing_mm=SPACING)
    assert plans == plan_follow_ups(4, seed=7, first_index=5, shape=SHAPE, spacing_mm=SPACING)
    assert [p.factor for p in plans] == [2.0, 1.0, 0.3, 1.5]
    assert [p.index for p in plans] == [905, 906, 907, 908]
    for plan in plans:
        assert plan.spacing_mm != SPACING and max(map(abs, plan.rotation_deg)) <= 8
        fov = np.asarray(plan.shape) * plan.spacing_mm
        assert np.allclose(fov, np.asarray(SHAPE) * SPACING, rtol=0.1)
    rows = pair_rows(plans)
    assert rows[0] == {"patient": "patient-005", "baseline": "BraTS20_Training_005",
                       "follow_up": "BraTS20_Training_905", "factor": 2.0}
    with pytest.raises(ValueError, match="below 900"):
        plan_follow_ups(2, seed=7, first_index=FOLLOW_UP_OFFSET - 1, shape=SHAPE,
                        spacing_mm=SPACING)


@pytest.mark.parametrize("factor", [2.0, 1.0, 0.3])
def test_the_follow_up_has_the_known_change_on_its_own_grid(factor):
    plan = FollowUp(3, factor, (5.0, -4.0, 6.0), (4.0, -3.0, 2.0), (40, 52, 36), (4.8, 3.7, 4.3))
    base = generate_case(seed=11, index=3, shape=SHAPE, spacing_mm=SPACING,
                         no_et_probability=0.0)
    follow = generate_follow_up(plan, seed=11, shape=SHAPE, spacing_mm=SPACING,
                                no_et_probability=0.0)
    assert follow.label.shape == (40, 52, 36) and follow.pixdim == (4.8, 3.7, 4.3)
    before, after = tissue_volumes_ml(base.label, base.pixdim), tissue_volumes_ml(
        follow.label, follow.pixdim)
    for region in ("WT", "TC", "ET", "NCR"):
        # the unclipped shape scales exactly; the labels follow up to clipping and two grids
        assert after[region] / before[region] == pytest.approx(factor, rel=0.2), region
    # the brain is the same brain, scanned again
    brain = [np.count_nonzero(c.images["t1"]) * np.prod(c.pixdim) for c in (base, follow)]
    assert brain[1] == pytest.approx(brain[0], rel=0.03)
    # outside the brain stays 0, inside >= 1, and every tumour voxel is in the brain
    assert (follow.images["t1"][follow.label > 0] >= 1).all()
    assert follow.has_enhancing == bool((follow.label == ENHANCING).any())


def test_the_head_moves_rigidly_in_world_coordinates():
    base = generate_case(seed=11, index=3, shape=SHAPE, spacing_mm=SPACING,
                         no_et_probability=0.0)
    rotation, shift = (6.0, 0.0, -5.0), (5.0, -4.0, 3.0)
    same = moved(base, rotation_deg=(0, 0, 0), shift_mm=(0, 0, 0), shape=SHAPE,
                 spacing_mm=SPACING)
    assert np.array_equal(same.label, base.label)
    follow = moved(base, rotation_deg=rotation, shift_mm=shift, shape=(60, 60, 40),
                   spacing_mm=(3.2, 3.2, 3.84))
    centre = np.array([0.0, -18.0, 18.0])
    expected = rotation_matrix(rotation) @ (_centroid_mm(base, base.label > 0) - centre) \
        + centre + np.asarray(shift)
    assert np.allclose(_centroid_mm(follow, follow.label > 0), expected, atol=2.0)
    core = (follow.label == NECROSIS) | (follow.label == ENHANCING)
    assert core.any()


def test_pairs_table_is_read_and_checked(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("patient\tbaseline\tfollow_up\textra\nP1\tA\tB\tx\nP1\tB\tC\ty\n")
    rows = read_pairs(path, {"A", "B", "C"})
    assert [r["follow_up"] for r in rows] == ["B", "C"] and rows[0]["extra"] == "x"
    assert pair_subjects(rows) == ["A", "B", "C"]
    with pytest.raises(ValueError, match=r"row 2 \(P1\): follow_up 'C' is not a subject"):
        read_pairs(path, {"A", "B"})
    (tmp_path / "bad.tsv").write_text("patient\tbefore\tafter\nP\tA\tB\n")
    with pytest.raises(ValueError, match="no column baseline, follow_up"):
        read_pairs(tmp_path / "bad.tsv", {"A", "B"})
    with pytest.raises(ValueError, match="the same scan"):
        check_pairs([{"patient": "P", "baseline": "A", "follow_up": "A"}], {"A"}, "t")
    with pytest.raises(ValueError, match="listed twice"):
        check_pairs([{"patient": "P", "baseline": "A", "follow_up": "B"}] * 2, {"A", "B"}, "t")
    with pytest.raises(ValueError, match="no patient"):
        check_pairs([{"patient": "", "baseline": "A", "follow_up": "B"}], {"A", "B"}, "t")
