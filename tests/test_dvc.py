"""DVC round trip on a real repository with a local remote: `dvc repro` runs the pipeline and
publishes the weights, `dvc push` shares data and weights, and a fresh clone that pulls them
predicts, scores and reports with `weights: pretrained` without any training job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from brats_unet.data.synthetic import generate_dataset

sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import TINY  # noqa: E402

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
ENV = {
    **os.environ,
    "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    "PYTHONHASHSEED": "0",
    "DVC_NO_ANALYTICS": "1",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",  # no signing, hooks, templates
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
}
MODEL = "unet2d"


def run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result


def merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def set_config(repo: Path, **changes) -> None:
    path = repo / "config/config.yaml"
    path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), changes)))


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory) -> dict[str, Path]:
    """An origin repository run with `dvc repro` and pushed; a clone that pulled and predicted."""
    root = tmp_path_factory.mktemp("dvc")
    origin = root / "origin"
    # The project as a user's clone has it: every file git would commit from this tree.
    files = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                cwd=REPO).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = origin / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    (origin / ".venv").symlink_to(VENV)
    set_config(origin, **merge(json.loads(json.dumps(TINY)), {
        "data_dir": "data/raw", "model_names": [MODEL],
        "evaluation": {"bootstrap_samples": 200}}))
    generate_dataset(origin / "data/raw", n=5, seed=1, shape=(40, 40, 28),
                     spacing_mm=(5.0, 5.0, 5.5))
    run("git", "init", "-q", cwd=origin)
    run("git", "add", "-A", cwd=origin)
    run("git", "commit", "-qm", "project", cwd=origin)
    run("dvc", "add", "data/raw", cwd=origin)
    run("dvc", "repro", cwd=origin)
    run("git", "add", "-A", cwd=origin)
    run("git", "commit", "-qm", "run: data, dvc.lock", cwd=origin)
    run("dvc", "push", cwd=origin)

    clone = root / "clone"
    run("git", "clone", "-q", str(origin), str(clone), cwd=root)
    (clone / ".venv").symlink_to(VENV)
    run("dvc", "pull", "data/raw.dvc", "publish_weights", cwd=clone)
    set_config(clone, weights="pretrained")
    result = run(str(VENV / "bin/snakemake"), "--cores", "2", "--workflow-profile",
                 "workflow/profiles/default", cwd=clone)
    # jobs after the split checkpoint are not in the first job table: count every job started
    ran = re.findall(r"^(?:local)?rule (\w+):$", result.stdout + result.stderr, re.MULTILINE)
    return {"root": root, "origin": origin, "clone": clone, "clone_jobs": Counter(ran)}


def test_dvc_repro_runs_the_pipeline_and_tracks_weights_and_data(round_trip):
    origin = round_trip["origin"]
    lock = yaml.safe_load((origin / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"pipeline", "publish_weights"}
    weights_out = lock["stages"]["publish_weights"]["outs"][0]
    assert weights_out["path"] == "weights" and weights_out["md5"].endswith(".dir")
    assert (origin / "data/raw.dvc").exists()
    tracked = run("git", "ls-files", cwd=origin).stdout.split()
    assert "data/raw.dvc" in tracked and "dvc.lock" in tracked
    assert not [name for name in tracked if name.startswith(("data/raw/", "weights/", "results/"))
                and not name.endswith(".gitkeep")]
    manifest = json.loads((origin / "weights/manifest.json").read_text())
    assert set(manifest["models"]) == {MODEL}
    # the remote holds the content: a local directory next to the repository by default
    store = round_trip["root"] / "brats-unet-dvc-store"
    assert sum(1 for p in store.rglob("*") if p.is_file()) >= 25 + 4  # 5 cases x 5 files, weights


def test_dvc_metrics_and_plots_read_the_pipeline_outputs(round_trip):
    origin = round_trip["origin"]
    metrics = json.loads(run("dvc", "metrics", "show", "--json", cwd=origin).stdout)
    (workspace,) = metrics.values()  # dvc 3 keys the workspace as ""
    shown = workspace["data"]["results/metrics.json"]["data"]
    assert set(shown[MODEL]) == {"WT", "TC", "ET"}
    assert shown == json.loads((origin / "results/metrics.json").read_text())
    plots = json.loads(run("dvc", "plots", "show", "--json", cwd=origin).stdout)
    assert {"validation_dice_by_epoch", "test_volume_agreement"} <= set(plots["data"])
    # only the models this run did not train are missing from the curves
    assert {e["source"] for e in plots.get("errors", [])} <= {
        "results/models/unet3d.history.csv", "results/models/resunet3d.history.csv"}


def test_clone_with_pulled_weights_predicts_without_training(round_trip):
    origin, clone, jobs = round_trip["origin"], round_trip["clone"], round_trip["clone_jobs"]
    split = json.loads((clone / "results/split.json").read_text())
    assert "train" not in jobs
    assert jobs["predict"] == len(split["test"] + split["validation"]) and jobs["evaluate"] == 1
    assert jobs["predict_batch"] == 1  # one job for all test subjects, loading the model once
    assert jobs["report"] == 1
    assert not (clone / "results/models").exists() and not (clone / "logs/train").exists()
    assert (clone / "reports/report.html").stat().st_size > 10_000
    for subject in split["test"]:
        ours = nib.load(clone / f"results/predictions/{MODEL}/{subject}.nii.gz")
        theirs = nib.load(origin / f"results/predictions/{MODEL}/{subject}.nii.gz")
        np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
    scores = ["subject", "region", "dice", "hd95_mm", "volume_true_ml", "volume_pred_ml"]
    pd.testing.assert_frame_equal(pd.read_csv(clone / "results/per_case.csv")[scores],
                                  pd.read_csv(origin / "results/per_case.csv")[scores])
    again = run(str(VENV / "bin/snakemake"), "--cores", "2", "-n", cwd=clone)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_pretrained_without_pulled_weights_says_what_to_do(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    config = study / "config.yaml"
    config.write_text(yaml.safe_dump({"weights": "pretrained"}))
    result = subprocess.run(
        [str(VENV / "bin/snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(study),
         "--configfile", str(config), "--cores", "1", "-n"],
        capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "weights/unet2d.keras" in message and "dvc pull publish_weights" in message
