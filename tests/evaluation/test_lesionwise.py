import numpy as np
import pytest

from brats_unet.evaluation.dialects import LESIONWISE_HD95_PENALTY_MM, lesionwise_2023_parameters
from brats_unet.evaluation.lesionwise import lesionwise_2023, merged_lesions

SHAPE = (40, 40, 20)


def _cube(mask, corner, size):
    mask[tuple(slice(c, c + s) for c, s in zip(corner, size))] = True
    return mask


def _score(truth, pred, spacing=(1.0, 1.0, 1.0), dilation=3, threshold=50.0):
    return lesionwise_2023(truth, pred, spacing, dilation=dilation,
                           volume_threshold_mm3=threshold)


def test_components_closer_than_the_dilation_merge_into_one_lesion():
    truth = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (5, 5, 5))
    _cube(truth, (2, 2, 12), (5, 5, 5))        # 5 voxels of gap along the last axis
    _cube(truth, (14, 2, 2), (5, 5, 5))        # 7 voxels of gap from the first
    # two dilations of 3 voxels meet across a gap of up to 6 voxels, not 7
    assert merged_lesions(truth, dilation=3)[1] == 2
    assert merged_lesions(truth, dilation=1)[1] == 3
    lesions, _ = merged_lesions(truth, dilation=3)
    assert lesions[4, 4, 4] == lesions[4, 4, 14] != lesions[16, 4, 4]


def test_a_perfect_prediction_scores_one_and_zero():
    truth = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (5, 5, 5))
    _cube(truth, (20, 20, 2), (4, 4, 4))
    scores, lesions = _score(truth, truth.copy())
    assert scores["dice"] == 1.0 and scores["hd95_mm"] == 0.0
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2, 0, 0)
    assert [lesion.status for lesion in lesions] == ["matched", "matched"]


def test_misses_and_false_positives_enter_the_denominator_with_the_penalty():
    truth = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (5, 5, 5))        # 125 voxels, found
    _cube(truth, (20, 20, 2), (4, 4, 4))                                # 64 voxels, missed
    pred = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (5, 5, 5))
    _cube(pred, (30, 2, 10), (3, 3, 3))                                 # far from any lesion
    scores, lesions = _score(truth, pred)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 1, 1)
    assert scores["dice"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert scores["hd95_mm"] == pytest.approx((0.0 + 2 * LESIONWISE_HD95_PENALTY_MM) / 3)
    by_status = {lesion.status: lesion for lesion in lesions}
    assert by_status["missed"].voxels_true == 64 and by_status["false_positive"].voxels_pred == 27


def test_a_prediction_within_the_dilation_matches_and_is_scored_against_the_undilated_lesion():
    truth = _cube(np.zeros(SHAPE, bool), (10, 10, 5), (6, 6, 6))
    pred = _cube(np.zeros(SHAPE, bool), (10, 10, 5), (6, 6, 6))
    _cube(pred, (18, 10, 5), (2, 2, 2))     # 2 voxels from the lesion: inside its dilation
    scores, lesions = _score(truth, pred)
    assert scores["fp"] == 0 and scores["tp"] == 1
    assert lesions[0].voxels_pred == 216 + 8
    assert scores["dice"] == pytest.approx(2 * 216 / (216 + 224))


def test_lesions_at_or_below_the_threshold_are_neither_counted_nor_false_positives():
    truth = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (5, 5, 5))
    _cube(truth, (25, 25, 10), (2, 5, 5))   # 50 voxels: at the threshold, dropped
    pred = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (5, 5, 5))
    _cube(pred, (25, 25, 10), (1, 2, 2))    # its prediction: not a false positive either
    scores, lesions = _score(truth, pred)
    assert (scores["tp"], scores["fp"], scores["fn"], scores["below_threshold"]) == (1, 0, 0, 1)
    assert scores["dice"] == 1.0
    assert [lesion.counted for lesion in lesions] == [True, False]


def test_the_threshold_is_a_volume_in_cubic_millimetres_as_the_scripts_compute_it():
    truth = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (3, 3, 3))   # 27 voxels of 2 mm³
    scores, _ = _score(truth, np.zeros(SHAPE, bool), spacing=(1.0, 1.0, 2.0))
    assert scores["fn"] == 1 and scores["dice"] == 0.0           # 54 mm³ > 50 mm³
    scores, _ = _score(truth, np.zeros(SHAPE, bool))
    assert scores["fn"] == 0 and scores["dice"] == 1.0           # 27 mm³: dropped


def test_empty_truth_and_prediction_score_one_and_zero():
    empty = np.zeros(SHAPE, bool)
    scores, lesions = _score(empty, empty)
    assert (scores["dice"], scores["hd95_mm"], scores["full_hd95_mm"]) == (1.0, 0.0, 0.0)
    assert lesions == []
    pred = _cube(np.zeros(SHAPE, bool), (2, 2, 2), (2, 2, 2))
    scores, _ = _score(empty, pred)
    assert (scores["dice"], scores["hd95_mm"], scores["fp"]) == (0.0, 374.0, 1)
    assert scores["full_hd95_mm"] == 374.0


def test_challenge_parameters_are_the_scripts():
    assert lesionwise_2023_parameters("BraTS-GLI") == (3, 50.0)
    assert lesionwise_2023_parameters("MET") == (1, 2.0)
    with pytest.raises(ValueError, match="unknown BraTS challenge 'GoAT'"):
        lesionwise_2023_parameters("GoAT")
