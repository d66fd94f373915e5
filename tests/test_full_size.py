"""The DAG at BraTS's full size (240 x 240 x 155, 1 mm): every job within the memory its rule
asks for. About 10 minutes on 2 cores: opt-in (``--run-slow``); the figures are in
BENCHMARKS.md (``bench/full_size.py``, the same config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CONFIGS = [REPO / "config/presets/cpu.yaml", REPO / "bench/full_size.yaml"]


def _layered(*paths: Path) -> dict:
    """The config the run sees: config.yaml, then each file over it, key by key at the top
    level and one level down (as Snakemake lays --configfile files over the default)."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for path in paths:
        for key, value in yaml.safe_load(path.read_text()).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
    return config


def _mem_mb(rule: str, config: dict) -> int:
    """What a rule asks for (by its benchmark folder: benchmarks/predict/ is predict_batch's):
    its config block, else the SLURM profile's default."""
    block = {"train": "train_resources", "predict": "inference_resources",
             "preprocess": "preprocess_resources"}.get(rule)
    if block:
        return int(config[block]["mem_mb"])
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    return int(profile["default-resources"]["mem_mb"])


@pytest.mark.slow
def test_full_size_jobs_stay_within_their_rules_memory(tmp_path: Path):
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--cores", "2", "--configfile", *map(str, CONFIGS)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600,
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    config = _layered(*CONFIGS)
    measured = {}
    for tsv in (tmp_path / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(tmp_path / "benchmarks").parts[0].removesuffix(".tsv")
        rss = float(pd.read_csv(tsv, sep="\t")["max_rss"].max())
        measured[rule] = max(measured.get(rule, 0.0), rss)
    assert {"preprocess", "train", "predict", "evaluate", "report"} <= set(measured)
    over = {rule: (rss, _mem_mb(rule, config)) for rule, rss in measured.items()
            if rss > _mem_mb(rule, config)}
    assert not over, f"max_rss above mem_mb (MB): {over}"

    split = json.loads((tmp_path / "results/split.json").read_text())
    (subject,) = split["test"]
    source = nib.load(tmp_path / f"data/synthetic/{subject}/{subject}_flair.nii.gz")
    assert source.shape == (240, 240, 155)
    for model in config["model_names"]:
        written = nib.load(tmp_path / f"results/predictions/{model}/{subject}.nii.gz")
        assert written.shape == source.shape
        np.testing.assert_array_equal(written.affine, source.affine)
        history = pd.read_csv(tmp_path / f"results/models/{model}.history.csv")
        assert (history["validation_seconds"] > 0).all()
