"""The training summary record: one writer, one reader, errors that name the file."""

import json
from pathlib import Path

import pytest

from brats_unet.training.summary import (
    FIELDS,
    curve_settling,
    read_training_summary,
    write_training_summary,
)

from builders import training_summary


def test_round_trip_keeps_every_field(tmp_path: Path):
    summary = training_summary("unet2d", settings={"patch_size": [64, 64], "batch_size": 16})
    write_training_summary(summary, tmp_path / "unet2d.json")
    assert list(json.loads((tmp_path / "unet2d.json").read_text())) == list(FIELDS)
    back = read_training_summary(tmp_path / "unet2d.json")
    assert back == summary
    assert back.spatial_dims == 2 and back.patch_size == [64, 64]


def test_a_file_that_is_not_a_summary_says_which_keys(tmp_path: Path):
    record = json.loads(json.dumps(training_summary().__dict__))
    del record["spatial_dims"]
    record["hardware"] = "GPU"
    (tmp_path / "m.json").write_text(json.dumps(record))
    with pytest.raises(ValueError) as error:
        read_training_summary(tmp_path / "m.json")
    assert str(error.value) == (f"{tmp_path / 'm.json'}: not a training summary of this version: "
                                "missing keys ['spatial_dims'], unknown keys ['hardware']")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="list.json: not a training summary"):
        read_training_summary(tmp_path / "list.json")


def test_curve_settling_measures_the_second_half_and_the_last_epochs():
    # The fall from 0.9 to 0.5 is in the first half (epochs 1-4): not counted.
    swinging = [0.2, 0.9, 0.5, 0.8, 0.85, 0.6, 0.9, 0.88]
    figures = curve_settling(swinging)
    assert figures["largest_late_fall"] == pytest.approx(0.25)  # 0.85 -> 0.6
    assert figures["last_spread"] == pytest.approx(0.3)  # 0.6 to 0.9
    rising = curve_settling([0.1, 0.5, 0.8, 0.9, 0.92, 0.93])
    assert rising == {"largest_late_fall": 0.0, "last_spread": pytest.approx(0.13)}
    assert curve_settling([0.7], last=4) == {"largest_late_fall": 0.0, "last_spread": 0.0}
    with pytest.raises(ValueError, match="at least one epoch"):
        curve_settling([])
