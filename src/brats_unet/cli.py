"""The ``brats-unet`` command: entry points only parse arguments and call the package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brats_unet.data.datasets import DATASETS


def _synth(args: argparse.Namespace) -> int:
    from brats_unet.data.synthetic import generate_dataset

    layout = DATASETS[args.dataset]
    names = generate_dataset(
        args.out, n=args.n, seed=args.seed, shape=tuple(args.shape),
        spacing_mm=tuple(args.spacing), no_et_probability=args.no_et_probability,
        start_index=args.start_index, dataset=layout, anatomy=args.anatomy,
    )
    print(f"wrote {len(names)} synthetic {layout.title}-format subjects to {args.out}")
    return 0


def _qc(args: argparse.Namespace) -> int:
    from brats_unet.data.datasets import explain_dataset, resolve_dataset
    from brats_unet.data.qc import case_notes, qc_table
    from brats_unet.data.subjects import discover_subjects
    from brats_unet.data.validation import InvalidSubject, load_subject
    from brats_unet.preprocessing.cases import (
        brain_mask,
        case_note,
        qc_record,
        tumour_voxels_outside,
    )

    layout = resolve_dataset(args.dataset, args.data_dir)
    print(f"dataset {layout.name} ({layout.title}): "
          f"{explain_dataset(layout.name, args.data_dir)}", file=sys.stderr)
    found = discover_subjects(args.data_dir, layout)
    records = [qc_record(p.subject, p) for p in found.excluded]
    for files in found.subjects:
        try:
            loaded = load_subject(files, label_convention=layout.name,
                                  affine_atol_mm=args.affine_atol_mm)
            outside = (0 if loaded.label is None else
                       tumour_voxels_outside(loaded.label, brain_mask(loaded.images)))
            note = case_note(outside, files.label)  # the pipeline's QC table's warning
            records.append(qc_record(files.subject, has_label=files.has_label, note=note))
        except InvalidSubject as err:
            records.append(qc_record(files.subject, err.problem, has_label=files.has_label))
    table = qc_table(records)
    for note in found.ignored:
        print(f"ignored: {note}", file=sys.stderr)
    table.to_csv(args.out or sys.stdout, sep="\t", index=False)
    n_bad = int((table["status"] == "excluded").sum())
    print(f"{len(table) - n_bad} subjects valid ({len(case_notes(table))} with a warning), "
          f"{n_bad} excluded",
          file=sys.stderr)
    return 1 if n_bad else 0


def _use_backend(args: argparse.Namespace) -> None:
    """``--backend``, else KERAS_BACKEND, else auto: set before Keras is imported."""
    import os

    if args.backend or "KERAS_BACKEND" not in os.environ:
        from brats_unet.runtime import resolve_backend

        resolve_backend(args.backend or "auto")  # sets KERAS_BACKEND


def _segment(args: argparse.Namespace) -> int:
    _use_backend(args)
    from brats_unet.data.validation import InvalidSubject
    from brats_unet.segment import segment_new_patient

    images = {"flair": args.flair, "t1": args.t1, "t1ce": args.t1ce, "t2": args.t2}
    try:
        result = segment_new_patient(
            args.model, images, args.out, patch_size=args.patch,
            label_convention=args.dataset, calibration=args.calibration, overlap=args.overlap,
            mirror=args.mirror, threshold=args.threshold, min_et_voxels=args.min_et_voxels)
    except InvalidSubject as err:
        print(f"brats-unet segment: {err.problem.file}: {err.problem.problem}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"brats-unet segment: {err}", file=sys.stderr)
        return 2
    kind = f"ensemble of {len(args.model)} models" if len(args.model) > 1 else "one model"
    print(f"wrote {args.out} ({kind}, {result['seconds']:.1f} s)")
    intervals = result["intervals_ml"]
    for region, ml in result["volumes_ml"].items():
        if intervals and region in intervals:
            low, high, coverage = intervals[region]
            print(f"{region}\t{ml:.2f} ml\t{coverage:.0%} interval {low:.2f} - {high:.2f} ml")
        else:
            print(f"{region}\t{ml:.2f} ml")
    if intervals is None:
        print("no --calibration given: volumes without intervals")
    return 0


def _interval_text(value: float, low: float, high: float, digits: int = 2) -> str:
    top = "inf" if high == float("inf") else f"{high:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {top}]"


def _change(args: argparse.Namespace) -> int:
    _use_backend(args)
    from brats_unet.data.validation import InvalidSubject
    from brats_unet.evaluation.longitudinal import ChangeThresholds
    from brats_unet.segment import change_between

    try:
        table = change_between(
            args.model, args.before, args.after, args.out, calibration=args.calibration,
            dataset=args.dataset, patch_size=args.patch, overlap=args.overlap,
            mirror=args.mirror, thresholds=ChangeThresholds(args.progression_ratio,
                                                            args.response_ratio))
    except InvalidSubject as err:
        print(f"brats-unet change: {err.problem.file}: {err.problem.problem}", file=sys.stderr)
        return 2
    first = table.iloc[0]
    coverage = (f"{first['coverage']:.0%} intervals" if first["coverage"] == first["coverage"]
                else "no --calibration: unbounded intervals")
    print(f"{first['baseline']} -> {first['follow_up']}: ml and volume ratio, {coverage}; "
          f"progression above x{args.progression_ratio:g}, response below "
          f"x{args.response_ratio:g} (volumetric RANO equivalents; a measurement aid, not a "
          f"response assessment); segmentations in {args.out}")
    print("region\tbefore ml\tafter ml\tchange ml\tratio\tcall")
    for r in table.itertuples():
        print("\t".join([r.region, _interval_text(r.volume_before_ml, r.volume_before_low_ml,
                                                   r.volume_before_high_ml),
                         _interval_text(r.volume_after_ml, r.volume_after_low_ml,
                                        r.volume_after_high_ml),
                         _interval_text(r.change_ml, r.change_low_ml, r.change_high_ml),
                         _interval_text(r.ratio, r.ratio_low, r.ratio_high), r.call]))
    table.to_csv(args.out / "change.csv", index=False)
    return 0


def _publish_weights(args: argparse.Namespace) -> int:
    import yaml

    from brats_unet.config import laid_over
    from brats_unet.data.split import fold_members
    from brats_unet.training.weights import publish_weights

    models = args.models
    if not models:  # every trained model of the config: with k-fold, every fold's
        config: dict = {}
        for path in args.config:
            with open(path) as handle:
                config = laid_over(config, yaml.safe_load(handle) or {})
        n_folds = config.get("split", {}).get("n_folds", 0)
        models = [member for name in config["model_names"] for member in fold_members(name, n_folds)]
    manifest = publish_weights(args.models_dir, args.out, models)
    for model, entry in manifest["models"].items():
        print(f"{model}\t{entry[model + '.keras']}")
    print(f"published {len(models)} model(s) to {args.out}; track them: dvc repro publish_weights "
          "(or dvc add), then dvc push", file=sys.stderr)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    import yaml

    from brats_unet.config import config_problems, laid_over
    from brats_unet.doctor import run_doctor

    config: dict = {}
    for path in args.config:  # laid one over the other, as Snakemake lays --configfile
        with open(path) as handle:
            config = laid_over(config, yaml.safe_load(handle) or {})
    if problems := config_problems(config, args.config[0].parent / "schema.yaml"):
        print("invalid configuration:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    lines = run_doctor(config)
    print("\n".join(lines))
    return 1 if any(line.startswith("WARNING") for line in lines) else 0


def _add_synth(sub) -> None:
    synth = sub.add_parser("synth", help="write synthetic BraTS-format subjects")
    synth.add_argument("out", type=Path, help="folder to write the subject folders into")
    synth.add_argument("--n", type=int, default=10, help="number of subjects (default 10)")
    synth.add_argument("--seed", type=int, default=2020, help="random seed (default 2020)")
    synth.add_argument("--shape", type=int, nargs=3, default=(240, 240, 155),
                       metavar=("I", "J", "K"), help="voxels per axis (default BraTS: 240 240 155)")
    synth.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 1.0),
                       metavar=("SI", "SJ", "SK"), help="voxel size in mm (default 1 1 1)")
    synth.add_argument("--no-et-probability", type=float, default=0.2,
                       help="chance that a case has no enhancing tumour (default 0.2)")
    synth.add_argument("--start-index", type=int, default=1,
                       help="number of the first subject (default 1: BraTS20_Training_001)")
    synth.add_argument("--dataset", choices=sorted(DATASETS), default="brats2020",
                       help="layout, names and labels to write (default brats2020)")
    synth.add_argument("--anatomy", choices=["cartoon", "mni152"], default="cartoon",
                       help="the healthy brain: cartoon (default) or the MNI152 template "
                            "(nilearn's package data)")
    synth.set_defaults(func=_synth)


def _add_qc(sub) -> None:
    qc = sub.add_parser("qc", help="find and validate the subjects of a BraTS data folder")
    qc.add_argument("data_dir", type=Path)
    qc.add_argument("--dataset", choices=["auto", *sorted(DATASETS)], default="auto",
                    help="layout, names and labels of the files (default auto: recognised)")
    qc.add_argument("--affine-atol-mm", type=float, default=1e-3)
    qc.add_argument("--out", type=Path, help="write the table here instead of standard output")
    qc.set_defaults(func=_qc)


def _add_segment(sub) -> None:
    seg = sub.add_parser("segment", help="segment one new patient with a trained model and "
                         "print each region's volume in ml")
    seg.add_argument("--model", type=Path, required=True, action="append",
                     help="a trained .keras model; repeat it for an ensemble (a model's folds: "
                          "the mean of their probabilities)")
    seg.add_argument("--calibration", type=Path,
                     help="a run's results/volume_calibration.csv: print each volume's interval")
    for contrast in ("flair", "t1", "t1ce", "t2"):
        seg.add_argument(f"--{contrast}", type=Path, required=True, help=f"the {contrast} NIfTI")
    seg.add_argument("--out", type=Path, required=True, help="segmentation to write (.nii.gz)")
    seg.add_argument("--patch", type=int, nargs=3, metavar=("Z", "Y", "X"),
                     help="3D window (default: the training patch, from <model>.json)")
    seg.add_argument("--overlap", type=float, default=0.5)
    seg.add_argument("--mirror", action="store_true", help="test-time flips")
    seg.add_argument("--threshold", type=float, default=0.5)
    seg.add_argument("--min-et-voxels", type=int, default=0)
    seg.add_argument("--dataset", choices=sorted(DATASETS), default="brats2020",
                     help="whose label values to read and write (default brats2020: ET = 4)")
    seg.add_argument("--backend", choices=("auto", "tensorflow", "torch", "jax"),
                     help="Keras back end (default: KERAS_BACKEND, else auto: as the pipeline's "
                          "`backend: auto`)")
    seg.set_defaults(func=_segment)


def _add_change(sub) -> None:
    cha = sub.add_parser("change", help="how much one patient's tumour changed between two "
                         "scans: each region's volumes, change and ratio with intervals, and "
                         "the call")
    cha.add_argument("--model", type=Path, required=True, action="append",
                     help="a trained .keras model; repeat it for a model's folds (ensemble)")
    cha.add_argument("--before", type=Path, required=True,
                     help="the baseline: a BraTS subject folder (four contrasts)")
    cha.add_argument("--after", type=Path, required=True, help="the follow-up's subject folder")
    cha.add_argument("--calibration", type=Path,
                     help="a run's results/volume_calibration.csv with change rules (a run with "
                          "longitudinal pairs); without it the intervals are unbounded")
    cha.add_argument("--out", type=Path, required=True,
                     help="folder for both segmentations and change.csv")
    cha.add_argument("--progression-ratio", type=float, default=1.40,
                     help="volume ratio above which to call progression (default 1.40: RANO's "
                          "+25%% in two diameters' product, for a sphere)")
    cha.add_argument("--response-ratio", type=float, default=0.35,
                     help="volume ratio below which to call response (default 0.35: RANO's "
                          "-50%%)")
    cha.add_argument("--patch", type=int, nargs=3, metavar=("Z", "Y", "X"))
    cha.add_argument("--overlap", type=float, default=0.5)
    cha.add_argument("--mirror", action="store_true", help="test-time flips")
    cha.add_argument("--dataset", choices=sorted(DATASETS), default="brats2020",
                     help="the folders' naming and label values (default brats2020)")
    cha.add_argument("--backend", choices=("auto", "tensorflow", "torch", "jax"))
    cha.set_defaults(func=_change)


def _add_doctor(sub) -> None:
    doc = sub.add_parser("doctor", help="what this machine gives the pipeline: CPU, GPUs each "
                         "Keras back end sees, the back end, precision and XLA a job would use")
    doc.add_argument("--config", type=Path, nargs="+", default=[Path("config/config.yaml")],
                     help="config files laid one over the other, the first beside its "
                          "schema.yaml (default config/config.yaml; for a preset: "
                          "config/config.yaml config/presets/gpu-full.yaml)")
    doc.set_defaults(func=_doctor)


def _add_publish_weights(sub) -> None:
    pub = sub.add_parser("publish-weights", help="copy trained models into the folder DVC "
                         "tracks and pushes (read back with `weights: pretrained`)")
    pub.add_argument("models", nargs="*", help="models to publish (default: every model in the "
                     "config's model_names, with split.n_folds >= 2 each fold's: unet3d.fold0, ...)")
    pub.add_argument("--config", type=Path, nargs="+", default=[Path("config/config.yaml")],
                     help="config files laid one over the other (default config/config.yaml)")
    pub.add_argument("--models-dir", type=Path, default=Path("results/models"))
    pub.add_argument("--out", type=Path, default=Path("weights"))
    pub.set_defaults(func=_publish_weights)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brats-unet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synth(sub)
    _add_qc(sub)
    _add_segment(sub)
    _add_change(sub)
    _add_doctor(sub)
    _add_publish_weights(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, NotADirectoryError, ValueError) as err:
        print(f"brats-unet {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
