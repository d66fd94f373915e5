"""The report: figure shapes, case picking, data-driven discussion, self-contained HTML."""

from __future__ import annotations

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from brats_unet.reporting import discussion, figures, overlays, provenance, report

from builders import training_summary

MODELS = ("resunet3d", "unet2d", "unet3d")
REGIONS = ("WT", "TC", "ET")


def _per_case(
    subjects=("s1", "s2", "s3", "s4"),
    models=MODELS,
    *,
    dice_of=None,
    components_of=None,
    share_of=None,
    volume_error_of=None,
) -> pd.DataFrame:
    """A per_case frame; the ``*_of(model, index)`` callables set what a test cares about."""
    rng = np.random.default_rng(0)
    rows = []
    for m_index, model in enumerate(models):
        for s_index, subject in enumerate(subjects):
            for region in REGIONS:
                dice = dice_of(model, s_index) if dice_of else 0.7 + 0.05 * m_index + 0.01 * s_index
                true = 10.0 + 5 * s_index
                error = volume_error_of(model, s_index) if volume_error_of else rng.normal()
                rows.append({
                    "model": model, "subject": subject, "region": region, "dice": dice,
                    "hd95_mm": 5.0 - m_index + s_index, "dice_slicewise": dice - 0.02,
                    "volume_true_ml": true, "volume_pred_ml": true + error,
                    "volume_error_ml": error, "volume_abs_error_ml": abs(error),
                    "components_pred": components_of(model, s_index) if components_of else 1,
                    "largest_component_share_pred": share_of(model, s_index) if share_of else 1.0,
                    "predict_seconds": 0.5,
                })
    return pd.DataFrame(rows)


def _benchmark(per_case: pd.DataFrame) -> pd.DataFrame:
    grouped = per_case.groupby(["model", "region"])
    frame = grouped.agg(
        n_subjects=("subject", "nunique"), dice_mean=("dice", "mean"), dice_sd=("dice", "std"),
        dice_median=("dice", "median"), hd95_mm_mean=("hd95_mm", "mean"),
        volume_abs_error_ml_mean=("volume_abs_error_ml", "mean"),
        predict_seconds_per_case=("predict_seconds", "mean"),
    ).reset_index()
    return frame.assign(trainable_parameters=1234, training_seconds=60.0, backend="tensorflow",
                        precision="float32")


def _comparison(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["region", "metric", "model_a", "model_b", "n_subjects",
                                       "mean_difference", "ci95_low", "ci95_high", "wilcoxon_p"])


def _history(n: int = 5) -> pd.DataFrame:
    epochs = np.arange(n)
    return pd.DataFrame({
        "epoch": epochs, "loss": 1.0 / (epochs + 1), "val_loss": 1.2 / (epochs + 1),
        "val_dice_mean": epochs / n, "val_dice_wt": epochs / n, "val_dice_tc": epochs / n,
        "val_dice_et": epochs / n,
    })


def _discussion(per_case: pd.DataFrame, comparison: pd.DataFrame) -> list[str]:
    return discussion.discussion(per_case, comparison, models_2d=("unet2d",),
                                 models_3d=("unet3d", "resunet3d"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize(
    ("function", "n_axes"),
    [
        (figures.dice_by_model, 3),
        (figures.hd95_by_model, 3),
        (figures.volume_agreement, 3),
        (figures.bland_altman, 3),  # one panel per model
        (figures.slicewise_vs_case, 3),
    ],
)
def test_per_case_figures_have_one_panel_per_region_or_model(function, n_axes):
    fig = function(_per_case())
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n_axes


def test_bland_altman_draws_bias_and_limits():
    per_case = _per_case(models=("unet2d",), volume_error_of=lambda m, s: float(s))
    ax = figures.bland_altman(per_case).axes[0]
    levels = sorted(line.get_ydata()[0] for line in ax.lines)
    diffs = np.arange(4.0)
    bias, sd = diffs.mean(), diffs.std(ddof=1)
    assert np.allclose(levels, sorted([0.0, bias, bias - 1.96 * sd, bias + 1.96 * sd]))


def test_training_curves_has_loss_and_dice_panels():
    fig = figures.training_curves({"unet2d": _history(), "unet3d": _history(7)})
    assert len(fig.axes) == 2
    # per model: train and val loss; mean and three regional Dice curves
    assert len(fig.axes[0].lines) == 4
    assert len(fig.axes[1].lines) == 8


def test_overlays_grid_and_tumour_centre():
    shape = (12, 10, 8)
    flair = np.random.default_rng(1).random(shape)
    truth = np.zeros(shape, dtype=np.int16)
    truth[6:9, 4:7, 2:5] = 2
    truth[7, 5, 3] = 4
    predictions = {"unet2d": truth.copy(), "unet3d": np.zeros(shape, dtype=np.int16)}
    assert overlays.tumour_centre_of_mass(truth) == (7, 5, 3)
    fig = overlays.overlay_figure(flair, truth, predictions, "s1", affine=np.diag([-1.0, -1.0, 2.0, 1.0]))
    assert len(fig.axes) == 9  # (truth + 2 models) x 3 planes
    with pytest.raises(ValueError, match="shape"):
        overlays.overlay_figure(flair, truth, {"bad": np.zeros((2, 2, 2))}, "s1")


def test_pick_cases_uses_mean_over_models_and_breaks_ties_by_name():
    scores = {"a": [0.9, 0.7], "b": [0.5, 0.5], "c": [0.8, 0.8], "d": [0.2, 0.4], "e": [0.5, 0.5]}
    rows = [
        {"model": model, "subject": subject, "region": "WT", "dice": values[i]}
        for subject, values in scores.items() for i, model in enumerate(("m1", "m2"))
    ] + [{"model": "m1", "subject": "d", "region": "TC", "dice": 1.0}]
    picked = overlays.pick_cases(pd.DataFrame(rows))
    # means: a 0.8, c 0.8, b 0.5, e 0.5, d 0.3; median of means 0.5
    # -> best a (tie with c), median b (tie with e)
    assert picked == {"best": "a", "median": "b", "worst": "d"}


def test_discussion_names_the_better_model_and_significance():
    subjects = [f"s{i:02d}" for i in range(10)]
    per_case = _per_case(subjects, ("a", "b"), dice_of=lambda m, s: (0.9 if m == "a" else 0.6)
                         + 0.005 * s)
    comparison = _comparison([
        (region, "dice", "b", "a", 10, -0.3, -0.32, -0.28, 0.002) for region in REGIONS
    ])
    paragraphs = _discussion(per_case, comparison)
    first = paragraphs[0]
    assert first.startswith("WT: a had the highest mean Dice")
    assert "+0.300" in first  # sign turned to best - other
    assert "significant by both criteria" in first
    assert "little power" not in first


def test_discussion_flags_small_samples_and_non_significance():
    per_case = _per_case(("s1", "s2", "s3"), ("a", "b"),
                         dice_of=lambda m, s: 0.8 if m == "a" else 0.79)
    comparison = _comparison([(r, "dice", "a", "b", 3, 0.01, -0.01, 0.03, 0.5) for r in REGIONS])
    first = _discussion(per_case, comparison)[0]
    assert "not significant by either criterion" in first
    assert "little power" in first and "0.25" in first


def _paradox(per_case: pd.DataFrame) -> str:
    comparison = _comparison([])
    return _discussion(per_case, comparison)[-1]


def test_paradox_supported_when_3d_is_more_connected_and_larger():
    text = _paradox(_per_case(
        components_of=lambda m, s: 3 if m == "unet2d" else 1,
        share_of=lambda m, s: 0.7 if m == "unet2d" else 0.98,
        volume_error_of=lambda m, s: -2.0 if m == "unet2d" else 3.0,
    ))
    assert "is supported" in text and "not supported" not in text
    assert "3.00 connected components" not in text  # 3D mean is 1.00
    assert "1.00 connected components against 3.00" in text
    assert "+3.00 ml against -2.00 ml" in text


def test_paradox_not_supported_by_the_opposite_data():
    text = _paradox(_per_case(
        components_of=lambda m, s: 1 if m == "unet2d" else 4,
        share_of=lambda m, s: 0.99 if m == "unet2d" else 0.6,
        volume_error_of=lambda m, s: 3.0 if m == "unet2d" else -2.0,
    ))
    assert "not supported" in text
    assert "connectivity and volume parts" in text


def test_paradox_untestable_without_a_2d_model():
    text = _paradox(_per_case(models=("unet3d", "resunet3d")))
    assert "cannot be tested" in text


def test_slicewise_paragraph_gives_the_signed_difference():
    paragraphs = _discussion(_per_case(), _comparison([]))
    slicewise = next(p for p in paragraphs if "slice-wise" in p.lower())
    assert "unet2d" in slicewise and "-0.020" in slicewise and "lower" in slicewise


def test_build_report_is_self_contained_and_escaped(tmp_path):
    per_case = _per_case(subjects=("<x>", "s2", "s3"))
    benchmark = _benchmark(per_case)
    comparison = _comparison([("WT", "dice", "unet2d", "unet3d", 3, 0.05, 0.01, 0.09, 0.25)])
    qc = pd.DataFrame({"subject": ["<x>", "bad&case"], "status": ["included", "excluded"],
                       "file": ["", "bad_t1.nii.gz"], "problem": ["", "shape <mismatch>"],
                       "note": ["x_seg.nii.gz: 2 tumour voxels <outside>", ""]})
    flair = np.ones((6, 6, 6))
    truth = np.zeros((6, 6, 6), dtype=np.int16)
    truth[2:4, 2:4, 2:4] = 1
    overlay_figs = {rank: overlays.overlay_figure(flair, truth, {"unet2d": truth}, rank)
                    for rank in ("best", "median", "worst")}
    figures_dir = tmp_path / "figures"
    html_text = report.build_report(
        per_case=per_case, benchmark=benchmark, comparison=comparison, qc=qc,
        histories={m: _history() for m in MODELS},
        summaries={m: training_summary(m, gpus=1, trainable_parameters=99) for m in MODELS},
        overlays=overlay_figs,
        provenance=provenance.collect_provenance({"seed": 42, "models": list(MODELS)}, tmp_path),
        figures_dir=figures_dir,
    )
    assert html_text.startswith("<!DOCTYPE html>")
    assert "<table" in html_text
    assert "http://" not in html_text and "https://" not in html_text
    assert "<script" not in html_text and "<link" not in html_text
    assert html_text.count("data:image/png;base64,") == 9
    assert "<x>" not in html_text and "&lt;x&gt;" in html_text
    assert "shape &lt;mismatch&gt;" in html_text and "bad&amp;case" in html_text
    assert "2 subjects checked, 1 excluded, 1 with a warning" in html_text
    assert "x_seg.nii.gz: 2 tumour voxels &lt;outside&gt;" in html_text
    assert "1 GPU" in html_text and "373.13" in html_text
    assert "seed: 42" in html_text and "no dvc.lock" in html_text
    names = {p.name for p in figures_dir.glob("*.png")}
    assert names == {"dice_by_model.png", "hd95_by_model.png", "volume_agreement.png",
                     "bland_altman.png", "slicewise_vs_case.png", "training_curves.png",
                     "overlay_best.png", "overlay_median.png", "overlay_worst.png"}
    assert plt.get_fignums() == []  # every figure closed after saving


def test_build_report_says_none_without_exclusions(tmp_path):
    per_case = _per_case()
    qc = pd.DataFrame({"subject": ["s1"], "status": ["included"]})
    html_text = report.build_report(
        per_case=per_case, benchmark=_benchmark(per_case), comparison=_comparison([]), qc=qc,
        histories={}, summaries={}, overlays=None, provenance={}, figures_dir=tmp_path,
    )
    section = html_text.split("Quality control: excluded subjects</h2>")[1]
    assert section.lstrip().startswith("<p>none</p>")


def test_provenance_without_git_or_dvc(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    cmd: x\n    outs:\n"
        "    - path: results/models/unet2d.keras\n      md5: abc123\n"
    )
    info = provenance.collect_provenance({"a": 1}, tmp_path)
    assert info["git revision"].startswith("unknown")
    assert "unet2d.keras" in info["dvc.lock md5s"] and "abc123" in info["dvc.lock md5s"]
    assert info["config"].strip() == "a: 1"
    assert info["version numpy"] == np.__version__
    assert provenance.collect_provenance({}, None)["dvc.lock md5s"] == "no dvc.lock"


def test_load_overlay_inputs_maps_label_3_only_for_brats2023(tmp_path):
    affine = np.eye(4)
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    labels[1, 1, 1], labels[2, 2, 2] = 3, 2
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), affine), tmp_path / "f.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "seg.nii.gz")
    paths = ("s", tmp_path / "f.nii.gz", tmp_path / "seg.nii.gz", {"m": tmp_path / "seg.nii.gz"})
    _, truth, predictions = overlays.load_overlay_inputs(*paths)
    assert truth[1, 1, 1] == 3 and np.issubdtype(truth.dtype, np.integer)
    flair, truth, predictions = overlays.load_overlay_inputs(*paths, label_convention="brats2023")
    assert truth[1, 1, 1] == 4 and predictions["m"][1, 1, 1] == 4 and truth[2, 2, 2] == 2
    assert flair.dtype == np.float32


def test_hardware_names_the_gpus_or_the_cpu_threads():
    assert report._hardware(training_summary(gpus=2, cpu_threads=4)) == "2 GPUs"
    assert report._hardware(training_summary(gpus=1, cpu_threads=4)) == "1 GPU"
    assert report._hardware(training_summary(gpus=0, cpu_threads=1)) == "CPU, 1 thread"
    assert report._hardware(training_summary(gpus=0, cpu_threads=4)) == "CPU, 4 threads"
    assert report._hardware(training_summary(gpus=0, cpu_threads=None)) == "CPU"
    assert report._hardware(None) == "–"  # a model in the table without a summary


def test_run_summary_says_why_each_model_ran_on_its_back_end_and_on_which_cpu():
    summaries = {"unet3d": training_summary("unet3d", backend_reason="auto: no GPU; <fast>"),
                 "unet2d": training_summary("unet2d", backend="torch",
                                            backend_reason="set in the config")}
    lines = report._machine_lines(summaries)
    assert lines == ["<li>unet2d trained on torch: set in the config</li>",
                     "<li>unet3d trained on tensorflow: auto: no GPU; &lt;fast&gt;</li>",
                     "<li>Training CPU: AMD EPYC, 2 CPUs usable, avx2 fma</li>"]
    assert report._machine_lines({"unet3d": training_summary(backend_reason=None, cpu="")}) == []


def test_the_report_takes_2d_and_3d_from_the_summaries_in_the_configs_order(tmp_path):
    per_case = _per_case(components_of=lambda m, s: 3 if m == "unet2d" else 1)
    config_order = ("unet2d", "unet3d", "resunet3d")

    def discussion_of(summaries) -> str:
        page = report.build_report(
            per_case=per_case, benchmark=_benchmark(per_case), comparison=_comparison([]),
            qc=None, histories={}, summaries=summaries, figures_dir=tmp_path, figures={})
        return page.split("<h2>Discussion</h2>")[1].split("<h2>")[0]

    both = discussion_of({m: training_summary(m) for m in config_order})
    assert "the 3D models (unet3d/resunet3d)" in both and "For the 2D model unet2d" in both
    only_3d = discussion_of({m: training_summary(m) for m in config_order[1:]})
    assert "a 2D model (none in this run) and a 3D model (unet3d, resunet3d)" in only_3d
