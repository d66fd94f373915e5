"""Longitudinal pairs through the DAG and the `brats-unet change` command, on tiny data."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from brats_unet.data.synthetic import generate_dataset, write_raw_case
from brats_unet.data.synthetic.longitudinal import generate_follow_up, pair_rows, plan_follow_ups
from brats_unet.evaluation.longitudinal import CALLS, CHANGE_REGIONS
from test_workflow import TINY, job_counts, snakemake

pytestmark = pytest.mark.workflow

SYNTH = TINY["synthetic"]
GRID = {"shape": SYNTH["shape"], "spacing_mm": SYNTH["spacing_mm"]}


def test_synthetic_pairs_are_synthesized_and_kept_out_of_the_split_in_the_plan(tmp_path: Path):
    config = copy.deepcopy(TINY)
    config["synthetic"]["longitudinal_pairs"] = 2
    counts = job_counts((r := snakemake(tmp_path, "-n", config=config)).stdout + r.stderr)
    assert counts["synthesize_subject"] == 4 + 2 * 2 and counts["preprocess"] == 8
    assert counts["longitudinal"] == 1


@pytest.fixture(scope="module")
def longitudinal_study(tmp_path_factory) -> Path:
    """Real-data mode: 4 cases to train, validate and test on, and two followed patients (one
    follow-up without labels), named in a pairs table; unet3d only."""
    study = tmp_path_factory.mktemp("longitudinal")
    data = study / "data"
    generate_dataset(data, n=6, seed=SYNTH["seed"], no_et_probability=0.0, **GRID)
    plans = plan_follow_ups(2, seed=SYNTH["seed"], first_index=5, **GRID)
    for plan, row in zip(plans, pair_rows(plans)):
        case = generate_follow_up(plan, seed=SYNTH["seed"], no_et_probability=0.0, **GRID)
        write_raw_case(case, data, row["follow_up"])
    unlabelled = pair_rows(plans)[1]["follow_up"]
    (data / unlabelled / f"{unlabelled}_seg.nii.gz").unlink()
    pd.DataFrame(pair_rows(plans)).to_csv(study / "pairs.tsv", sep="\t", index=False)
    config = copy.deepcopy(TINY)
    config.update(data_dir=str(data), model_names=["unet3d"])
    config["longitudinal"] = {"pairs": str(study / "pairs.tsv"), "coverage": 0.9,
                              "progression_ratio": 1.4, "response_ratio": 0.35}
    snakemake(study, config=config)
    return study


def test_the_dag_reports_each_followed_patients_change(longitudinal_study: Path):
    study = longitudinal_study
    split = json.loads((study / "results/split.json").read_text())
    followed = ["BraTS20_Training_005", "BraTS20_Training_006", "BraTS20_Training_905",
                "BraTS20_Training_906"]
    assert split["longitudinal"] == followed
    assert not set(followed) & set(split["train"] + split["validation"] + split["test"])
    summary = json.loads((study / "results/models/unet3d.json").read_text())
    assert not set(followed) & set(summary["train_subjects"] + summary["validation_subjects"])

    table = pd.read_csv(study / "results/longitudinal.csv")
    assert len(table) == 2 * len(CHANGE_REGIONS) and set(table["call"]) <= set(CALLS)
    assert (table["status"] == "measured").all() and (table["coverage"] == 0.9).all()
    labelled, unlabelled = (table[table["patient"] == p] for p in ("patient-005", "patient-006"))
    assert labelled["true_change_ml"].notna().all() and unlabelled["true_change_ml"].isna().all()
    # one validation case cannot calibrate 95 % per scan: unbounded, so never a clear call
    assert (table["call"] == "indeterminate").all() and (table["change_high_ml"] == float(
        "inf")).all()
    calibration = pd.read_csv(study / "results/volume_calibration.csv")
    assert set(calibration["purpose"]) == {"volume", "change"}
    assert set(calibration["region"]) == {"WT", "TC", "ET", "NCR"}
    html = (study / "reports/report.html").read_text()
    assert "Longitudinal change" in html and "patient-006" in html
    assert (study / "reports/figures/longitudinal_change.png").exists()
    for patient in ("patient-005", "patient-006"):  # patient-006's follow-up has no labels
        for role in ("baseline", "follow_up"):
            assert (study / f"reports/figures/longitudinal_{patient}_{role}.png").exists()


def test_change_command_prints_each_regions_change(longitudinal_study: Path, tmp_path: Path):
    study = longitudinal_study
    cli = Path(sys.executable).with_name("brats-unet")
    result = subprocess.run(
        [str(cli), "change", "--model", str(study / "results/models/unet3d.keras"),
         "--before", str(study / "data/BraTS20_Training_005"),
         "--after", str(study / "data/BraTS20_Training_905"),
         "--calibration", str(study / "results/volume_calibration.csv"),
         "--out", str(tmp_path / "change")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("BraTS20_Training_005 -> BraTS20_Training_905: ml and volume "
                               "ratio, 90% intervals")
    rows = [line.split("\t") for line in lines[2:]]
    assert [r[0] for r in rows] == list(CHANGE_REGIONS) and all(r[-1] in CALLS for r in rows)
    saved = pd.read_csv(tmp_path / "change/change.csv")
    assert saved["true_change_ml"].notna().all()  # both folders hold labels
    assert (tmp_path / "change/BraTS20_Training_905.after.nii.gz").exists()
    # the two scans' own DAG rows and the command agree on the volumes
    dag = pd.read_csv(study / "results/longitudinal.csv").query("patient == 'patient-005'")
    assert list(saved["volume_after_ml"]) == pytest.approx(list(dag["volume_after_ml"]))

    bad = subprocess.run(
        [str(cli), "change", "--model", str(study / "results/models/unet3d.keras"),
         "--before", str(study / "data/nowhere"), "--after", str(study / "data"),
         "--out", str(tmp_path / "bad")], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "nowhere: not a folder" in bad.stderr
