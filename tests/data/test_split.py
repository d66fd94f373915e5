import pytest

from brats_unet.data.split import make_split, prediction_plan

SUBJECTS = [f"BraTS20_Training_{i:03d}" for i in range(1, 21)]


def _sets(split):
    return set(split["train"]), set(split["validation"]), set(split["test"])


def test_no_subject_in_two_sets_and_none_lost():
    train, val, test = _sets(make_split(SUBJECTS, seed=1))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(SUBJECTS)
    assert (len(train), len(val), len(test)) == (12, 4, 4)


def test_deterministic_and_independent_of_input_order():
    a = make_split(SUBJECTS, seed=7)
    b = make_split(list(reversed(SUBJECTS)), seed=7)
    assert a == b
    assert make_split(SUBJECTS, seed=8)["test"] != a["test"]


def test_k_fold_keeps_test_fixed_and_covers_the_rest_once():
    splits = [make_split(SUBJECTS, seed=3, n_folds=4, fold=f) for f in range(4)]
    tests = {tuple(s["test"]) for s in splits}
    assert len(tests) == 1
    validations = [set(s["validation"]) for s in splits]
    union = set().union(*validations)
    assert sum(len(v) for v in validations) == len(union) == 16
    for s in splits:
        train, val, test = _sets(s)
        assert not (train & val or train & test or val & test)
        assert train | val | test == set(SUBJECTS)


def test_unlabelled_subjects_are_kept_apart():
    split = make_split(SUBJECTS[:5], seed=0, unlabelled=["BraTS20_Validation_001"])
    assert split["unlabelled"] == ["BraTS20_Validation_001"]
    assert "BraTS20_Validation_001" not in split["train"] + split["validation"] + split["test"]


def test_smallest_possible_split():
    train, val, test = _sets(make_split(SUBJECTS[:3], seed=0))
    assert len(train) == len(val) == len(test) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(subjects=SUBJECTS[:2]), "at least 3 labelled subjects"),
        (dict(subjects=SUBJECTS + SUBJECTS[:1]), "not unique"),
        (dict(subjects=SUBJECTS, n_folds=3, fold=3), "fold must be in 0..2"),
        (dict(subjects=SUBJECTS, test_fraction=1.0), "test_fraction"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    subjects = kwargs.pop("subjects")
    with pytest.raises(ValueError, match=message):
        make_split(subjects, seed=0, **kwargs)


def test_longitudinal_scans_are_only_predicted_never_trained_validated_or_tested():
    labelled = [f"s{i:02d}" for i in range(12)]
    followed = ["s03", "s07", "u1", "gone"]  # "gone": excluded by QC, in neither list
    split = make_split(labelled, seed=1, n_folds=3, unlabelled=["u1", "u2"],
                       longitudinal=followed)
    assert split["longitudinal"] == ["s03", "s07", "u1"]
    used = split["train"] + split["validation"] + split["test"] + split["unlabelled"]
    assert not set(used) & set(followed)
    assert split["unlabelled"] == ["u2"]
    # the other subjects split as if the followed scans were never there
    plain = make_split([s for s in labelled if s not in followed], seed=1, n_folds=3)
    assert split["test"] == plain["test"] and split["folds"] == plain["folds"]
    plan = prediction_plan("unet3d", split)
    assert plan["s03"] == plan["u1"] == ["unet3d.fold0", "unet3d.fold1", "unet3d.fold2"]
