"""The training summary record: one writer, one reader, errors that name the file."""

import json
from pathlib import Path

import pytest

from brats_unet.training.summary import FIELDS, read_training_summary, write_training_summary

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
