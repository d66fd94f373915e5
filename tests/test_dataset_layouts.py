"""The DAG on four data folders of the same synthetic cases, laid out as BraTS 2020, BraTS 2021,
BraTS 2023 GLI and the Decathlon's Task01: recognised by ``dataset: auto``, read with the
right labels, predicted and written back in each dataset's own labels and names.

One model is trained once, on the BraTS 2020 folder; the other three folders are predicted
with it as pulled weights (``weights: pretrained``), so every folder meets the same network and
the canonical predictions and the scores must agree exactly across the four layouts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brats_unet.data.datasets import DATASETS
from brats_unet.data.synthetic import generate_dataset, subject_index
from brats_unet.labels import LABEL_SETS, to_canonical
from test_workflow import TINY, snakemake

pytestmark = pytest.mark.workflow

LAYOUTS = ("brats2020", "brats2021", "brats2023", "msd-task01")
MODEL = "unet3d"
GROUPS = ("train", "validation", "test", "unlabelled")
SCORES = ["dice", "hd95_mm", "sensitivity", "specificity", "volume_true_ml", "volume_pred_ml"]


def _config(data: Path, **more) -> dict:
    config = {key: value for key, value in TINY.items() if key != "synthetic"}
    return {**config, "data_dir": str(data), "model_names": [MODEL], "dataset": "auto", **more}


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict[str, Path]:
    """Each layout's study, run to the benchmark tables; the first one trains the model."""
    root = tmp_path_factory.mktemp("layouts")
    done, pulled = {}, root / "pulled"
    for name in LAYOUTS:
        data, study = root / f"data-{name}", root / f"study-{name}"
        generate_dataset(data, n=4, seed=1, shape=(40, 40, 28), spacing_mm=(5.0, 5.0, 5.5),
                         no_et_probability=0.25, dataset=DATASETS[name])
        study.mkdir()
        extra = {} if not done else {"weights": "pretrained", "pretrained_dir": str(pulled)}
        # the Decathlon's study to the report too: its FLAIR is one channel of a 4D image
        targets = ["results/per_case.csv"] + (["reports/report.html"] if name == "msd-task01"
                                               else [])
        result = snakemake(study, *targets, config=_config(data, **extra))
        (study / "terminal.txt").write_text(result.stdout + result.stderr)
        if not done:
            shutil.copytree(study / "results/models", pulled)
        done[name] = study
    return done


def _by_index(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` keyed by the synthetic case's index instead of the layout's subject name."""
    return table.assign(subject=table["subject"].map(lambda s: subject_index(s, DATASETS[name])))


@pytest.mark.parametrize("name", LAYOUTS)
def test_auto_recognises_the_layout_and_says_why_in_the_qc_log(studies, name):
    log = (studies[name] / "logs/qc_table.log").read_text()
    assert f"dataset {name} (" in log
    expected = {"msd-task01": "imagesTr/ holds the images", "brats2023": "end in -t2f"}
    assert expected.get(name, "end in _flair") in log


@pytest.mark.parametrize("name", LAYOUTS[1:])
def test_every_layout_gives_the_same_split_predictions_and_scores(studies, name):
    reference, study = studies[LAYOUTS[0]], studies[name]
    splits = [json.loads((s / "results/split.json").read_text()) for s in (reference, study)]
    as_index = [{group: sorted(subject_index(s, DATASETS[n]) for s in names)
                 for group, names in split.items() if group in GROUPS}
                for split, n in zip(splits, (LAYOUTS[0], name))]
    assert as_index[0] == as_index[1]
    ours = pd.read_csv(study / "results/per_case.csv")
    theirs = pd.read_csv(reference / "results/per_case.csv")
    key = ["subject", "region"]
    ours = _by_index(name, ours).sort_values(key).reset_index(drop=True)
    theirs = _by_index(LAYOUTS[0], theirs).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[key + SCORES], theirs[key + SCORES])


@pytest.mark.parametrize("name", LAYOUTS)
def test_predictions_are_written_in_the_datasets_own_labels_and_names(studies, name):
    study, reference = studies[name], studies[LAYOUTS[0]]
    split = json.loads((study / "results/split.json").read_text())
    for subject in split["test"]:
        written = nib.load(study / "results/predictions" / MODEL / f"{subject}.nii.gz")
        labels = np.asarray(written.dataobj)
        assert set(np.unique(labels).tolist()) <= LABEL_SETS[name]
        twin = next(s for s in json.loads((reference / "results/split.json").read_text())["test"]
                    if subject_index(s) == subject_index(subject, DATASETS[name]))
        canonical = np.asarray(nib.load(reference / "results/predictions" / MODEL
                                        / f"{twin}.nii.gz").dataobj)
        np.testing.assert_array_equal(to_canonical(labels, name), canonical)


@pytest.mark.parametrize("name, first_file", [
    ("msd-task01", "data/synthetic/imagesTr/BRATS_001.nii.gz"),
    ("brats2023", "data/synthetic/BraTS-GLI-00001-000/BraTS-GLI-00001-000-t2f.nii.gz"),
])
def test_synthetic_data_is_written_in_the_configured_layout(tmp_path, name, first_file):
    result = snakemake(tmp_path, "-n", config={**TINY, "dataset": name})
    assert first_file in result.stdout


def test_the_back_ends_start_up_messages_stay_in_the_job_logs(studies):
    trained = studies[LAYOUTS[0]]
    terminal = (trained / "terminal.txt").read_text()
    assert "Finished job" in terminal or "steps (100%) done" in terminal
    for noise in ("oneDNN custom operations", "cpu_feature_guard", "- val_dice_mean: "):
        assert noise not in terminal
    train_log = (trained / f"logs/train/{MODEL}.log").read_text()
    # TensorFlow's start-up lines and Keras' own epoch line, beside the package's records
    assert "oneDNN custom operations" in train_log and "- val_dice_mean: " in train_log
    assert "INFO back end tensorflow" in train_log


def test_the_report_of_a_decathlon_study_draws_the_flair_channel(studies):
    study = studies["msd-task01"]
    page = (study / "reports/report.html").read_text()
    assert page.count('<figure id="overlay_') == 3
    assert (study / "reports/figures/overlay_best.png").stat().st_size > 10_000
