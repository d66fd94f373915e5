from pathlib import Path

import yaml

from brats_unet.config import config_problems, laid_over

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config/schema.yaml"


def _default():
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_shipped_config_is_valid():
    assert config_problems(_default(), SCHEMA) == []


def test_each_mistake_is_one_line_naming_the_key():
    config = _default()
    config["unknown_key"] = 1
    config["split"]["seed"] = "forty-two"
    config["synthetic"]["shape"] = [96, 96]
    problems = config_problems(config, SCHEMA)
    assert len(problems) == 3
    assert any(p.startswith("config: Additional properties") and "unknown_key" in p for p in problems)
    assert "split.seed: 'forty-two' is not of type 'integer'" in problems
    assert any(p.startswith("synthetic.shape:") for p in problems)


def test_a_preset_is_laid_over_the_config_key_by_key():
    base = {"a": 1, "training": {"epochs": 14, "seed": 1}, "models": {"m": {"x": 1, "y": 2}}}
    more = {"training": {"epochs": 1000}, "models": {"m": {"y": 3}}, "b": [1]}
    assert laid_over(base, more) == {"a": 1, "training": {"epochs": 1000, "seed": 1},
                                     "models": {"m": {"x": 1, "y": 3}}, "b": [1]}
    assert base["training"]["epochs"] == 14  # the base is left as it was
