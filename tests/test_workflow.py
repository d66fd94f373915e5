"""The Snakemake DAG end to end on tiny synthetic subjects, deployed into a separate study folder."""

from __future__ import annotations

import copy
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

from brats_unet.data.qc import read_qc_table
from brats_unet.data.synthetic import generate_dataset

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
MODELS = ("unet2d", "unet3d", "resunet3d")
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
_TINY_3D = {"architecture": {"base_filters": 4, "depth": 3}, "patch_size": [16, 32, 32],
            "batch_size": 2}
TINY = {
    "synthetic": {"n_subjects": 4, "seed": 1, "shape": [40, 40, 28],
                  "spacing_mm": [5.0, 5.0, 5.5], "no_et_probability": 0.25,
                  "longitudinal_pairs": 0},
    "training": {"epochs": 1, "steps_per_epoch": 2},
    "models": {
        "unet2d": {"architecture": {"base_filters": 4, "depth": 3}, "patch_size": [32, 32],
                   "batch_size": 4},
        "unet3d": copy.deepcopy(_TINY_3D),
        "resunet3d": copy.deepcopy(_TINY_3D),
    },
}


def snakemake(study: Path, *args: str, config: dict | None = None, check: bool = True):
    """Run the workflow deployed into ``study``; ``args`` may name targets."""
    cfg = study / "test-config.yaml"
    cfg.write_text(yaml.safe_dump(config if config is not None else TINY))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(study),
           "--configfile", str(cfg), "--cores", "2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=study,
                            env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=1200)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table."""
    counts, in_table = {}, False
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
        elif in_table and counts and not parts:
            break
    return counts


def test_dry_run_lists_one_preprocessing_job_per_subject(tmp_path: Path):
    result = snakemake(tmp_path, "-n")
    counts = job_counts(result.stdout + result.stderr)
    assert counts["synthesize_subject"] == 4
    assert counts["preprocess"] == 4
    assert counts["qc_table"] == 1 and counts["split"] == 1
    assert counts["train"] == 3


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    """The tiny synthetic DAG run once to the end, shared by the tests that read it."""
    study = tmp_path_factory.mktemp("study")
    snakemake(study)
    return study


def test_synthetic_default_runs_end_to_end(finished_study: Path):
    study = finished_study
    table = read_qc_table(study / "results/qc/subjects.tsv")
    assert list(table["status"]) == ["included"] * 4
    split = json.loads((study / "results/split.json").read_text())
    assert sorted(split["train"] + split["validation"] + split["test"]) == list(table["subject"])
    for subject in table["subject"]:
        assert (study / "results/preprocessed" / subject / "image.npy").exists()
        assert (study / "logs/preprocess" / f"{subject}.log").exists()
    for model in MODELS:
        summary = json.loads((study / f"results/models/{model}.json").read_text())
        assert summary["train_subjects"] == split["train"]
        assert summary["validation_subjects"] == split["validation"]
        assert summary["precision"] == "float32" and summary["backend"] == "tensorflow"
        # backend: auto, decided in the job on this GPU-less machine, with oneDNN's kernels
        assert summary["backend_reason"].startswith("auto: no GPU")
        assert summary["tensorflow_onednn"] == "1" and "CPUs usable" in summary["cpu"]
        # train_resources.threads (4) lowered to --cores 2, and TensorFlow held to it
        assert summary["cpu_threads"] == 2
        assert (study / f"results/models/{model}.history.csv").exists()
    timings = sorted((study / "results/predictions").glob("*/*.json"))
    predicted = sorted(split["test"] + split["validation"])  # validation: to calibrate volumes
    assert len(timings) == len(MODELS) * len(predicted)
    for model in MODELS:  # one prediction job per model: every predicted subject, the model once
        (batch,) = (study / "results/prediction_batches" / model).iterdir()
        record = json.loads((batch / "job.json").read_text())
        assert batch.name == "part-001" and record["subjects"] == predicted
        assert record["failed"] == [] and 0 < record["startup_seconds"] < record["job_seconds"]
        for subject in predicted:  # the subject's own files are the batch's, linked
            assert (batch / f"{subject}.{model}.nii.gz").samefile(
                study / f"results/predictions/{model}/{subject}.nii.gz")
    for timing in timings:
        recorded = json.loads(timing.read_text())
        assert recorded["cpu_threads"] == 1  # inference_resources.threads
        assert recorded["backend"] == "tensorflow" and recorded["backend_reason"].startswith("auto")
    assert not (study / "state/train").exists() or not any((study / "state/train").iterdir())


def test_predictions_are_in_the_input_geometry_and_scored(finished_study: Path):
    study = finished_study
    split = json.loads((study / "results/split.json").read_text())
    for model in MODELS:
        for subject in split["test"]:
            source = nib.load(study / f"data/synthetic/{subject}/{subject}_flair.nii.gz")
            written = nib.load(study / f"results/predictions/{model}/{subject}.nii.gz")
            assert written.shape == source.shape
            np.testing.assert_array_equal(written.affine, source.affine)
            assert written.header.get_zooms() == source.header.get_zooms()
            assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2, 4}
    per_case = pd.read_csv(study / "results/per_case.csv")
    assert list(per_case.columns[:10]) == ["model", "predictor", "subject", "region", "dice",
                                           "hd95_mm", "sensitivity", "specificity",
                                           "volume_true_ml", "volume_pred_ml"]
    assert (per_case["predictor"] == per_case["model"]).all()  # one split: the model itself
    assert {"volume_pred_low_ml", "volume_pred_high_ml"} <= set(per_case.columns)
    assert len(per_case) == len(MODELS) * len(split["test"]) * 3
    assert set(per_case["subject"]) == set(split["test"])  # never a training or validation case
    # every dialect for every test case; a lesion table whose lesions add up to the counts
    for column in ("lesionwise2023_dice", "lesionwise2023_hd95_mm", "panoptica_dsc",
                   "panoptica_rq", "panoptica_hd95_mm"):
        assert column in per_case
    assert per_case["lesionwise2023_dice"].notna().all()
    lesions = pd.read_csv(study / "results/lesions.csv")
    assert set(lesions["dialect"]) == {"lesionwise2023", "panoptica"}
    found = lesions[lesions["status"] == "matched"].groupby(["model", "subject", "region",
                                                            "dialect"]).size()
    for row in per_case.itertuples():
        assert found.get((row.model, row.subject, row.region, "panoptica"), 0) == row.panoptica_tp
    report = (study / "reports/report.html").read_text()
    assert "Official BraTS evaluations side by side" in report and "legacy Dice mean" in report
    benchmark = pd.read_csv(study / "results/benchmark.csv")
    assert len(benchmark) == len(MODELS) * 3
    assert {"dice_mean", "dice_sd", "dice_median", "hd95_mm_mean", "volume_abs_error_ml_mean",
            "predict_seconds_per_case", "trainable_parameters", "training_seconds"} <= set(
        benchmark.columns)
    metrics = json.loads((study / "results/metrics.json").read_text())
    assert set(metrics) == set(MODELS)
    comparison = pd.read_csv(study / "results/comparison.csv")
    assert len(comparison) == 3 * 3  # three model pairs, three regions


def test_finished_run_has_nothing_to_do_and_one_model_change_reruns_only_it(finished_study: Path):
    rerun = snakemake(finished_study, "-n")
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    split = json.loads((finished_study / "results/split.json").read_text())
    changed = copy.deepcopy(TINY)
    changed["models"]["unet3d"]["batch_size"] = 1
    dry = snakemake(finished_study, "-n", config=changed)
    assert job_counts(dry.stdout + dry.stderr) == {
        "train": 1, "predict_batch": 1, "predict": len(split["test"] + split["validation"]),
        "evaluate": 1,
        "tables": 1, "report": 1, "all": 1}
    assert "results/models/unet3d.keras" in dry.stdout + dry.stderr


def test_a_preprocessing_change_reruns_everything_downstream_of_it(finished_study: Path):
    changed = copy.deepcopy(TINY)
    changed["validation"] = {"affine_atol_mm": 0.01}
    dry = snakemake(finished_study, "-n", config=changed)
    # The synthetic inputs stay; every job after them runs again. The predict jobs hang on the
    # split checkpoint's new output, so Snakemake adds them once the split has rerun (and each
    # reads a retrained model, so all of them rerun).
    assert job_counts(dry.stdout + dry.stderr) == {
        "preprocess": 4, "qc_table": 1, "split": 1, "train": 3, "evaluate": 3, "tables": 1,
        "report": 1, "all": 1}


def weight_arrays(keras_file: Path) -> dict[str, np.ndarray]:
    """Every array in a .keras file's weights (its metadata holds the save date, so not bytes)."""
    import io
    import zipfile

    import h5py

    arrays = {}
    with zipfile.ZipFile(keras_file) as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            weights.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                               if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_same_config_and_seed_give_the_same_study_bit_for_bit(finished_study: Path, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    # what is compared below: everything but the report
    snakemake(again, "results/qc/subjects.tsv", "results/per_case.csv")
    for path in ("results/split.json", "results/qc/subjects.tsv"):
        assert (again / path).read_bytes() == (finished_study / path).read_bytes(), path
    for case in sorted((finished_study / "results/preprocessed").iterdir()):
        for name in ("image.npy", "label.npy", "properties.json"):
            assert (again / "results/preprocessed" / case.name / name).read_bytes() == (
                case / name).read_bytes(), f"{case.name}/{name}"
    for model in MODELS:
        ours = weight_arrays(again / f"results/models/{model}.keras")
        theirs = weight_arrays(finished_study / f"results/models/{model}.keras")
        assert ours.keys() == theirs.keys() and len(ours) > 10
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{model}: {name}")
        history = [pd.read_csv(study / f"results/models/{model}.history.csv")
                   .drop(columns=["epoch_seconds", "validation_seconds"])
                   for study in (again, finished_study)]
        pd.testing.assert_frame_equal(*history)
    for path in ("results/per_case.csv", "results/benchmark.csv"):
        tables = [pd.read_csv(study / path) for study in (again, finished_study)]
        timing = [c for c in tables[0].columns if "seconds" in c or "per_second" in c]
        pd.testing.assert_frame_equal(tables[0].drop(columns=timing),
                                      tables[1].drop(columns=timing))


def test_report_is_self_contained_and_shows_table_and_figures(finished_study: Path, tmp_path):
    from browser import find_chromium, ink_fraction, rendered_dom, screenshot

    page = finished_study / "reports/report.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html and "<script src" not in html
    assert html.count("data:image/png;base64,") >= 9  # six figures and three overlays
    for name in ("dice_by_model", "hd95_by_model", "volume_agreement", "bland_altman",
                 "training_curves", "slicewise_vs_case", "overlay_best", "overlay_median",
                 "overlay_worst"):
        assert (finished_study / f"reports/figures/{name}.png").stat().st_size > 1000
    for model in MODELS:
        assert model in html
    if find_chromium() is None:
        pytest.skip("chromium is not installed: the page was not looked at")
    shot = screenshot(page, tmp_path / "report.png", width=1400, height=2400)
    assert ink_fraction(shot) > 0.03  # not blank
    dom = rendered_dom(page)
    assert dom.count("<table") >= 2 and dom.count("<img") >= 9


def test_snakemake_report_archive(finished_study: Path):
    snakemake(finished_study, "--report", "report.zip")
    assert (finished_study / "report.zip").stat().st_size > 10_000


def test_trained_models_load_back_in_safe_mode(finished_study: Path):
    code = ("import sys, keras, brats_unet.models.unets; "
            "m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
            "print(m.name, m.output.shape)")
    result = subprocess.run([sys.executable, "-c", code,
                             str(finished_study / "results/models/unet2d.keras")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("unet2d (None, None, None, 3)")


def test_segment_one_new_patient(finished_study: Path, tmp_path: Path):
    subject = "BraTS20_Training_002"
    folder = finished_study / "data/synthetic" / subject
    out = tmp_path / "seg.nii.gz"
    cli = Path(sys.executable).with_name("brats-unet")
    result = subprocess.run(
        [str(cli), "segment", "--model", str(finished_study / "results/models/unet3d.keras"),
         *[arg for c in ("flair", "t1", "t1ce", "t2")
           for arg in (f"--{c}", str(folder / f"{subject}_{c}.nii.gz"))],
         "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split("\t")[:2] for line in result.stdout.splitlines() if "\t" in line)
    assert set(lines) == {"WT", "TC", "ET", "NCR"}  # NCR: the necrotic core
    assert all(v.endswith(" ml") for v in lines.values())
    assert "no --calibration given" in result.stdout
    source = nib.load(folder / f"{subject}_flair.nii.gz")
    written = nib.load(out)
    assert written.shape == source.shape
    np.testing.assert_array_equal(written.affine, source.affine)


def test_real_data_folder_with_bad_subjects_yields_a_qc_table(tmp_path: Path):
    data = tmp_path / "BraTS2020"
    names = generate_dataset(data, n=5, seed=3, shape=(40, 40, 28), spacing_mm=(5.0, 5.0, 5.5))
    (data / names[1] / f"{names[1]}_t1ce.nii.gz").unlink()  # missing contrast
    corrupt = data / names[3] / f"{names[3]}_flair.nii.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:300])  # truncated gzip
    (data / "name_mapping.csv").write_text("BraTS_2020_subject_ID\n")
    study = tmp_path / "study"
    study.mkdir()
    snakemake(study, "results/split.json", config={"data_dir": str(data)})
    table = read_qc_table(study / "results/qc/subjects.tsv").set_index("subject")
    assert table.loc[names[1], "status"] == "excluded"
    assert "missing contrast t1ce" in table.loc[names[1], "problem"]
    assert table.loc[names[3], "status"] == "excluded"
    assert table.loc[names[3], "file"] == f"{names[3]}_flair.nii.gz"
    assert "truncated" in table.loc[names[3], "problem"]
    good = [names[0], names[2], names[4]]
    assert list(table.loc[good, "status"]) == ["included"] * 3
    split = json.loads((study / "results/split.json").read_text())
    assert sorted(split["train"] + split["validation"] + split["test"]) == good
    assert not (study / "results/preprocessed" / names[3] / "image.npy").exists()


@pytest.mark.parametrize(
    "config, message",
    [
        ({"data_dir": "/nonexistent/brats"}, "does not exist"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"split": {"seed": "forty-two"}}, "forty-two"),
        ({"dataset": "brats2019"}, "brats2019"),
        ({"label_convention": "brats2021"}, "label_convention: replaced by dataset"),
        ({"model_names": ["unet2d", "unet4d"]}, "'unet4d' is not one of"),
        ({"training": {"epochs": "ten"}}, "training.epochs: 'ten' is not of type 'integer'"),
    ],
)
def test_config_mistakes_stop_before_any_job(tmp_path: Path, config, message):
    result = snakemake(tmp_path, "-n", config=config, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_lint_is_clean():
    result = subprocess.run([str(SNAKEMAKE), "--lint"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout


def test_workflow_files_are_formatted_by_snakefmt():
    snakefmt = Path(sys.executable).with_name("snakefmt")  # settings: pyproject's [tool.snakefmt]
    result = subprocess.run([str(snakefmt), "--check", "Snakefile", "workflow/rules"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
