"""A 3-fold run of the DAG on tiny synthetic data: out-of-fold predictions of every non-test
subject, a fold-ensemble row, every test volume with its interval, and the report's section.

About 3 minutes on 2 cores (9 trainings' jobs): opt-in (``--run-slow``), beside a CI run kept
under 20 minutes; the pieces are unit-tested in CI (tests/evaluation/test_intervals.py,
test_scoring.py, tests/data/test_split.py, tests/inference/test_batches.py)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from test_workflow import TINY, job_counts, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

KFOLD = copy.deepcopy(TINY)
KFOLD["synthetic"]["n_subjects"] = 8
KFOLD["model_names"] = ["unet2d", "unet3d"]
KFOLD["split"] = {"seed": 42, "test_fraction": 0.25, "validation_fraction": 0.25, "n_folds": 3}


def test_a_three_fold_run_predicts_out_of_fold_and_ensembles_the_folds(tmp_path: Path):
    snakemake(tmp_path, config=KFOLD)
    split = json.loads((tmp_path / "results/split.json").read_text())
    test = split["test"]
    non_test = sorted(split["train"] + split["validation"])
    oof = pd.read_csv(tmp_path / "results/out_of_fold.csv")
    for model in KFOLD["model_names"]:
        rows = oof[(oof["model"] == model) & (oof["region"] == "WT")]
        assert sorted(rows["subject"]) == non_test  # every non-test subject exactly once
        for fold, validation in enumerate(split["folds"]):
            assert sorted(rows[rows["fold"] == fold]["subject"]) == validation
            summary = json.loads((tmp_path / f"results/models/{model}.fold{fold}.json")
                                 .read_text())
            assert summary["validation_subjects"] == validation
            assert not set(summary["train_subjects"]) & (set(validation) | set(test))
    bench = pd.read_csv(tmp_path / "results/benchmark.csv")
    assert {"unet3d.ensemble", "unet3d.fold0", "unet3d.fold2"} <= set(bench["predictor"])
    per_case = pd.read_csv(tmp_path / "results/per_case.csv")
    assert set(per_case["predictor"]) == {"unet2d.ensemble", "unet3d.ensemble"}
    assert sorted(per_case["subject"].unique()) == test
    assert per_case["volume_pred_low_ml"].notna().all()
    assert (per_case["volume_pred_low_ml"] <= per_case["volume_pred_ml"]).all()
    assert (per_case["volume_pred_high_ml"] >= per_case["volume_pred_ml"]).all()
    coverage = pd.read_csv(tmp_path / "results/volume_coverage.csv")
    assert set(coverage["predictor"]) >= {"unet3d.ensemble", "unet3d.fold1"}
    html = (tmp_path / "reports/report.html").read_text()
    assert "Cross-validation, fold ensembles and volume intervals" in html
    assert "empirical coverage" in html and 'id="volume_intervals"' in html
    # the command line: the folds' ensemble, each volume with its interval
    subject = test[0]
    images = tmp_path / "data/synthetic" / subject
    cli = [str(Path(sys.executable).with_name("brats-unet")), "segment",
           *[a for f in range(3) for a in ("--model", str(tmp_path / f"results/models/"
                                                            f"unet3d.fold{f}.keras"))],
           "--calibration", str(tmp_path / "results/volume_calibration.csv"),
           *[a for c in ("flair", "t1", "t1ce", "t2")
             for a in (f"--{c}", str(images / f"{subject}_{c}.nii.gz"))],
           "--out", str(tmp_path / "seg.nii.gz")]
    printed = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert "ensemble of 3 models" in printed
    assert all(f"{r}\t" in printed for r in ("WT", "TC", "ET")) and "90% interval" in printed
    # one fewer fold: the preprocessed cases stay, the models and predictions are redone
    fewer = copy.deepcopy(KFOLD)
    fewer["split"]["n_folds"] = 2
    counts = job_counts(snakemake(tmp_path, "-n", config=fewer).stdout)
    assert "preprocess" not in counts and "synthesize_subject" not in counts
    assert counts["train"] == 4 and counts["split"] == 1
