"""The real-data presets: each one, laid over config/config.yaml as Snakemake lays a
--configfile, is a valid config whose patches fit its networks, and the DAG takes it."""

from pathlib import Path

import pytest
import yaml

from brats_unet.config import config_problems, laid_over
from test_workflow import snakemake

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "config/presets").glob("*.yaml"))
BASE = yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_there_are_full_and_short_gpu_presets_a_cpu_one_and_kfold():
    assert [p.stem for p in PRESETS] == ["cpu", "gpu-full", "gpu-short", "kfold"]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_a_preset_is_a_valid_config_whose_patches_fit_its_networks(preset):
    config = laid_over(BASE, yaml.safe_load(preset.read_text()))
    assert config_problems(config, REPO / "config/schema.yaml") == []
    for name, model in config["models"].items():
        divisor = 2 ** (model["architecture"]["depth"] - 1)
        assert all(size % divisor == 0 for size in model["patch_size"]), name


def test_the_full_preset_is_ten_times_the_short_one_and_sized_like_nnunet():
    full, short = (yaml.safe_load((REPO / f"config/presets/{n}.yaml").read_text())
                   for n in ("gpu-full", "gpu-short"))
    steps = [p["training"]["epochs"] * p["training"]["steps_per_epoch"] for p in (full, short)]
    assert steps == [250_000, 25_000]
    assert full["models"]["unet3d"]["patch_size"] == [128, 128, 128]
    assert full["models"]["unet3d"]["batch_size"] == 2
    assert full["models"] == short["models"]


@pytest.mark.workflow
def test_the_dag_takes_the_full_preset(tmp_path):
    """One dry run: the three presets set the same keys (their schema check is above)."""
    preset = REPO / "config/presets/gpu-full.yaml"
    result = snakemake(tmp_path, "-n", "--configfile", str(preset), config={})
    assert "train" in result.stdout
