"""The benchmark report: one self-contained HTML page from the pipeline's tables.

:func:`build_report` is a list of sections, each a small function returning its HTML
parts; the figures come from :mod:`~brats_unet.reporting.figures` and
:mod:`~brats_unet.reporting.overlays`, the prose from
:mod:`~brats_unet.reporting.discussion` (whose verdicts :mod:`brats_unet.evaluation.comparison`
decides), the provenance from :mod:`~brats_unet.reporting.provenance`, and the page from
:mod:`~brats_unet.reporting.page`. Figures are saved as PNG, closed and embedded as base64
data URIs, so the HTML needs no network and no other file.

Inputs are the pipeline's own tables:

* ``per_case``: one row per model, subject and region (``results/per_case.csv``),
  with ``dice``, ``hd95_mm``, ``dice_slicewise``, ``volume_true_ml``,
  ``volume_pred_ml``, ``volume_error_ml`` (predicted - true, ml),
  ``components_pred``, ``largest_component_share_pred``, ``predict_seconds``...
* ``benchmark``: one row per model and region (``results/benchmark.csv``).
* ``lesions``: one row per lesion of each lesion dialect (``results/lesions.csv``).
* ``comparison``: paired statistics per region and model pair
  (``results/comparison.csv``): ``mean_difference`` (a - b), bootstrap
  ``ci95_low``/``ci95_high`` and ``wilcoxon_p``.
* ``histories``: model -> per-epoch training history (``models/<m>.history.csv``).
* ``summaries``: model -> training summary (``models/<m>.json``), which also says
  which models are 2D and which 3D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import pandas as pd
import yaml
from matplotlib.figure import Figure

from brats_unet.data.qc import case_notes
from brats_unet.data.split import architecture_of
from brats_unet.evaluation.comparison import ALPHA
from brats_unet.evaluation.cross_validation import predictor_rank
from brats_unet.evaluation.metrics import HD95_ONE_EMPTY_MM
from brats_unet.labels import region_rank
from brats_unet.reporting.cv_section import cv_section
from brats_unet.reporting.dialect_section import dialect_section
from brats_unet.reporting.discussion import discussion
from brats_unet.reporting.figures import FIGURE_CAPTIONS, models_of, regions_of, standard_figures
from brats_unet.reporting.longitudinal_section import longitudinal_section, scan_overlays
from brats_unet.reporting.overlays import load_overlay_inputs, overlay_figure, pick_cases
from brats_unet.reporting.page import document, escape, figure, number, table
from brats_unet.reporting.provenance import collect_provenance
from brats_unet.training.summary import TrainingSummary, read_training_summary

#: The conventions section, one item each.
CONVENTIONS: tuple[str, ...] = (
    "Metrics are computed per case on the original image grid (predictions resampled back "
    "to the input geometry), per region: whole tumour WT = labels {1, 2, 4}, tumour core "
    "TC = {1, 4}, enhancing tumour ET = {4}.",
    "Legacy Dice (BraTS 2018-2021, MedPy): both masks empty -> 1; exactly one empty -> 0.",
    f"Legacy HD95 (mm): 95th percentile of the symmetric surface distances; both masks empty -> 0 mm; "
    f"exactly one empty -> {HD95_ONE_EMPTY_MM:.2f} mm (the diagonal of a 240 × 240 × 155 mm "
    "volume).",
    "Slice-wise Dice: the mean of per-slice Dice over the axial slices where truth or "
    "prediction is non-empty, as slice-level 2D studies report it; a small tumour slice "
    "weighs as much as a large one.",
    "Volumes (ml) are voxel counts times the voxel volume from the NIfTI pixdim; "
    "volume error = predicted - true.",
)


def _hardware(summary: TrainingSummary | None) -> str:
    if summary is None:
        return "–"
    gpus, threads = summary.gpus, summary.cpu_threads
    cpu = f"CPU, {threads} thread{'s' if threads != 1 else ''}" if threads else "CPU"
    return f"{gpus} GPU{'s' if gpus != 1 else ''}" if gpus > 0 else cpu


def _machine_lines(summaries: Mapping[str, TrainingSummary]) -> list[str]:
    """Why each model trained on its back end, and on which CPU (as its summary records)."""
    lines = []
    for model in sorted(summaries):
        summary = summaries[model]
        if summary.backend_reason:
            lines.append(f"<li>{escape(model)} trained on {escape(summary.backend)}: "
                         f"{escape(summary.backend_reason)}</li>")
    cpus = sorted({s.cpu for s in summaries.values() if s.cpu})
    if cpus:
        lines.append(f"<li>Training CPU: {escape('; '.join(cpus))}</li>")
    return lines


def benchmark_rows(benchmark: pd.DataFrame, summaries: Mapping[str, TrainingSummary]) -> list:
    """Cells of the benchmark table, one row per model and region (already HTML)."""
    rows = []
    if "predictor" not in benchmark:
        benchmark = benchmark.assign(predictor=benchmark["model"])
    frame = benchmark.assign(_r=benchmark["region"].map(region_rank),
                             _p=benchmark["predictor"].map(predictor_rank))
    for _, row in frame.sort_values(["model", "_p", "_r"]).iterrows():
        summary = summaries.get(str(row["predictor"])) or summaries.get(str(row["model"]))

        def pick(column: str, key: str | None = None) -> Any:
            if column in row and pd.notna(row[column]):
                return row[column]
            return getattr(summary, key or column, None)

        training = pick("training_seconds", "training_seconds_total")
        rows.append([
            escape(row["predictor"]), escape(row["region"]), escape(pick("n_subjects") or "–"),
            f"{number(row.get('dice_mean'))} ± {number(row.get('dice_sd'))}",
            number(row.get("dice_median")), number(row.get("hd95_mm_mean"), 2),
            number(row.get("volume_abs_error_ml_mean"), 2),
            escape(f"{int(parameters):,}") if (parameters := pick("trainable_parameters"))
            is not None else "–",
            number(training, 0), number(pick("predict_seconds_per_case"), 2),
            escape(pick("backend") or "–"), escape(pick("precision") or "–"),
            escape(_hardware(summary)),
        ])
    return rows


def _run_summary(per_case: pd.DataFrame, qc: pd.DataFrame | None,
                 summaries: Mapping[str, TrainingSummary]) -> list[str]:
    subjects = sorted(per_case["subject"].astype(str).unique())
    backends = sorted({s.backend for s in summaries.values()})
    parts = [
        "<h2>Run summary</h2><ul>",
        f"<li>Models: {escape(', '.join(models_of(per_case)))}</li>",
        f"<li>Test subjects: {len(subjects)} ({escape(', '.join(subjects))})</li>",
        f"<li>Regions: {escape(', '.join(regions_of(per_case)))}</li>",
        f"<li>Back end(s): {escape(', '.join(backends) or 'not recorded')}</li>",
        *_machine_lines(summaries),
    ]
    if qc is not None:
        parts.append(f"<li>QC: {len(qc)} subjects checked, {len(_excluded(qc))} excluded, "
                     f"{len(case_notes(qc))} with a warning</li>")
    parts.append("</ul>")
    return parts


def _benchmark_section(benchmark: pd.DataFrame,
                       summaries: Mapping[str, TrainingSummary]) -> list[str]:
    return [
        "<h2>Benchmark</h2>",
        "<p>Per-case metrics on the test subjects, summarised per model and region, in the "
        "legacy dialect (BraTS 2018-2021; the other dialects follow below). "
        "Training time is the total over all training runs (s); inference is the mean "
        "prediction time per case (s). In a k-fold run each model has a row per fold and one "
        "for its fold ensemble (<code>.ensemble</code>: training time and parameters summed "
        "over its folds), which stands for the model everywhere else in the report.</p>",
        table(["model", "region", "n", "legacy Dice mean ± sd", "legacy Dice median",
               "legacy HD95 mean (mm)",
               "|volume error| mean (ml)", "trainable parameters", "training (s)",
               "inference (s/case)", "back end", "precision", "hardware"],
              benchmark_rows(benchmark, summaries)),
    ]


def _figures_section(figures: Mapping[str, Figure], figures_dir: Path) -> list[str]:
    return ["<h2>Figures</h2>"] + [
        figure(name, fig, FIGURE_CAPTIONS.get(name, name), figures_dir)
        for name, fig in figures.items()
    ]


def _examples_section(overlay_figures: Mapping[str, Figure], cases: Mapping[str, str],
                      figures_dir: Path) -> list[str]:
    parts = ["<h2>Example cases</h2>"]
    if not overlay_figures:
        parts.append("<p>No overlays were made.</p>")
    for rank, fig in overlay_figures.items():
        subject = cases.get(rank, "")
        caption = (f"{rank.capitalize()} case by mean WT Dice over models"
                   + (f": {subject}" if subject else "")
                   + ". Rows: ground truth and each model; columns: axial, coronal, sagittal "
                   "slices through the tumour centre. Red: necrosis/non-enhancing core (1), "
                   "green: oedema (2), yellow: enhancing tumour (4), blue: resection cavity "
                   "(BraTS 2024 post-treatment's 4), where there is one.")
        parts.append(figure(f"overlay_{rank}", fig, caption, figures_dir))
    return parts


def _statistics_section(comparison: pd.DataFrame) -> list[str]:
    rows = [
        [escape(r["region"]), escape(r.get("metric", "dice")), escape(r["model_a"]),
         escape(r["model_b"]), escape(r.get("n_subjects", "–")),
         number(r["mean_difference"], 4),
         f"{number(r['ci95_low'], 4)} to {number(r['ci95_high'], 4)}",
         number(r["wilcoxon_p"], 3)]
        for _, r in comparison.iterrows()
    ]
    return [
        "<h2>Paired statistics</h2>",
        "<p>Paired over test subjects: mean difference (model a - model b), its 95% "
        f"bootstrap confidence interval, and the Wilcoxon signed-rank p; α = {ALPHA}.</p>",
        table(["region", "metric", "model a", "model b", "n", "mean difference", "95% CI",
               "Wilcoxon p"], rows) if rows else "<p>none</p>",
    ]


def _excluded(qc: pd.DataFrame | None) -> pd.DataFrame:
    if qc is None or "status" not in qc:
        return pd.DataFrame()
    return qc[qc["status"].astype(str) != "included"]


def _qc_section(qc: pd.DataFrame | None) -> list[str]:
    parts = ["<h2>Quality control: excluded subjects</h2>"]
    excluded = _excluded(qc)
    if excluded.empty:
        parts.append("<p>none</p>")
    else:
        columns = [c for c in ("subject", "status", "has_label", "file", "problem")
                   if c in excluded]
        parts.append(table(columns, [
            [escape("" if pd.isna(r[c]) else r[c]) for c in columns]
            for _, r in excluded.iterrows()
        ]))
    notes = case_notes(qc) if qc is not None else []
    if notes:
        parts.append("<h2>Quality control: warnings (subjects included)</h2>")
        parts.append(table(["subject", "warning"], [[escape(s), escape(n)] for s, n in notes]))
    return parts


def _conventions_section() -> list[str]:
    return ["<h2>Conventions</h2><ul>", *(f"<li>{escape(c)}</li>" for c in CONVENTIONS),
            "</ul>"]


def _discussion_section(per_case: pd.DataFrame, comparison: pd.DataFrame,
                        summaries: Mapping[str, TrainingSummary]) -> list[str]:
    # in the summaries' order, which is the config's model_names order
    by_dims = {dims: [m for m, s in summaries.items() if s.spatial_dims == dims]
               for dims in (2, 3)}
    paragraphs = discussion(per_case, comparison, models_2d=by_dims[2], models_3d=by_dims[3])
    return ["<h2>Discussion</h2>",
            "<p><em>Every statement below is computed from this run's tables.</em></p>",
            *(f"<p>{escape(p)}</p>" for p in paragraphs)]


def _provenance_section(info: Mapping[str, Any] | None) -> list[str]:
    rows = []
    for key, value in (info or {}).items():
        text = value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False)
        cell = f"<pre>{escape(text)}</pre>" if "\n" in text.strip() else escape(text)
        rows.append([escape(key), cell])
    return ["<h2>Provenance</h2>",
            table(["item", "value"], rows) if rows else "<p>not recorded</p>"]


def build_report(
    *,
    per_case: pd.DataFrame,
    benchmark: pd.DataFrame,
    comparison: pd.DataFrame,
    qc: pd.DataFrame | None,
    histories: Mapping[str, pd.DataFrame],
    summaries: Mapping[str, TrainingSummary],
    overlays: Mapping[str, Figure] | None = None,
    provenance: Mapping[str, Any] | None = None,
    figures_dir: Path,
    figures: Mapping[str, Figure] | None = None,
    cases: Mapping[str, str] | None = None,
    lesions: pd.DataFrame | None = None,
    challenge: str = "GLI",
    cross_validation: Mapping[str, Any] | None = None,
    longitudinal: Mapping[str, Any] | None = None,
    title: str = "BraTS U-Net benchmark",
) -> str:
    """Save every figure as PNG under ``figures_dir`` and return one self-contained HTML page.

    Args:
        per_case, benchmark, comparison: the pipeline's tables (see module doc).
        qc: subject table with ``subject`` and ``status`` (``included`` or not),
            optionally ``file`` and ``problem``; None when there was no QC.
        histories: model -> per-epoch history; summaries: model -> training summary
            (parameters, training time, back end, precision, hardware, 2D or 3D).
        overlays: rank ("best", "median", "worst") -> figure, saved as ``overlay_<rank>.png``.
        provenance: key -> value (strings, or anything YAML can dump).
        figures_dir: where the PNGs go (created); figures: name -> figure to use instead.
        cases: rank -> subject, for the overlay captions (default: :func:`pick_cases`).
        lesions: the per-lesion table (detection by size); challenge: the 2023 challenge's.
        cross_validation: :func:`cv_section`'s arguments but ``per_case``, ``figures_dir``.
        longitudinal: :func:`longitudinal_section`'s arguments but ``figures_dir``.
        title: page title.

    Returns the HTML document (images as base64 data URIs, inline CSS, no scripts, no external
    links); every figure passed in or built is closed.
    """
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    if figures is None:
        figures = standard_figures(per_case, histories)
    cases = dict(cases) if cases is not None else (pick_cases(per_case) if len(per_case) else {})
    return document(title, [
        *_run_summary(per_case, qc, summaries),
        *_benchmark_section(benchmark, summaries),
        *dialect_section(per_case, lesions, challenge),
        *_figures_section(figures, figures_dir),
        *_examples_section(dict(overlays or {}), cases, figures_dir),
        *_statistics_section(comparison),
        *(cv_section(per_case=per_case, figures_dir=figures_dir, **cross_validation)
          if cross_validation is not None else []),
        *(longitudinal_section(figures_dir=figures_dir, **longitudinal)
          if longitudinal is not None else []),
        *_qc_section(qc),
        *_conventions_section(),
        *_discussion_section(per_case, comparison, summaries),
        *_provenance_section(provenance),
    ])


def write_report(*, per_case, benchmark, comparison, qc, histories: Sequence, summaries: Sequence,
                 lesions=None, cross_validation: Mapping[str, Any] | None = None,
                 longitudinal=None, longitudinal_scans: Mapping[str, Any] | None = None,
                 subjects: Sequence[str], flair: Sequence, labels: Sequence, predictions: Sequence,
                 config: Mapping[str, Any], repo_dir: Path | None, figures_dir: Path,
                 label_convention: str = "brats2020", flair_channel: int | None = None) -> str:
    """The report from the workflow's files: tables (CSV/TSV), model histories and summaries,
    and, for the overlays, each test subject's FLAIR, label map and predictions.

    ``flair`` and ``labels`` follow ``subjects``; ``predictions`` are
    ``results/predictions/<predictor>/<subject>.nii.gz`` paths of each model's headline
    predictor (the model, or its fold ensemble); ``cross_validation``: name -> CSV path of
    ``cross_validation``, ``cv_comparison``, ``gain``, ``calibration`` and ``coverage``;
    ``longitudinal``: ``results/longitudinal.csv``'s path, where there were pairs, and
    ``longitudinal_scans`` its scans' files (:func:`scan_overlays`);
    ``flair_channel``: the FLAIR's channel when ``flair`` are 4D images of every contrast.
    Returns the HTML.
    """
    per_case = pd.read_csv(per_case)
    models = models_of(per_case)
    # every trained model's curves (each fold's too), by its file's name
    history_frames = {Path(p).name.removesuffix(".history.csv"): pd.read_csv(p)
                      for p in histories}
    records = {}
    for path in summaries:
        record = read_training_summary(path)
        records[Path(path).name.removesuffix(".json")] = record
        records.setdefault(record.model, record)  # a k-fold run's model: its first fold
    files = dict(zip(subjects, zip(flair, labels)))
    predicted = {(architecture_of(Path(p).parent.name), Path(p).name.split(".")[0]): p
                 for p in predictions}
    cases = pick_cases(per_case)
    figures = {}
    for rank, subject in cases.items():
        flair_path, label_path = files[subject]
        image, truth, preds = load_overlay_inputs(
            subject, flair_path, label_path, {m: predicted[(m, subject)] for m in models},
            label_convention=label_convention, flair_channel=flair_channel)
        figures[rank] = overlay_figure(image, truth, preds, f"{rank}: {subject}",
                                       affine=nib.load(flair_path).affine)
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    change = pd.read_csv(longitudinal) if longitudinal is not None else None
    cv = None
    if cross_validation is not None:
        cv = {name: pd.read_csv(path) for name, path in cross_validation.items()}
        cv["n_folds"] = config["split"]["n_folds"]
    return build_report(
        per_case=per_case, benchmark=pd.read_csv(benchmark), comparison=pd.read_csv(comparison),
        qc=pd.read_csv(qc, sep="\t", keep_default_na=False), histories=history_frames,
        summaries=records, overlays=figures, provenance=collect_provenance(config, repo_dir),
        figures_dir=Path(figures_dir), cases=cases,
        lesions=pd.read_csv(lesions) if lesions is not None else None,
        challenge=config.get("evaluation", {}).get("challenge", "GLI"), cross_validation=cv,
        longitudinal={"change": change, "overlays": scan_overlays(
            change, dict(longitudinal_scans or {}), label_convention=label_convention,
            flair_channel=flair_channel)} if change is not None else None)
