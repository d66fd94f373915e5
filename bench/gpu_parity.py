"""Does mixed precision train as well as float32? The same short training through the real
job (``train_model``: loaders, callbacks, per-epoch validation on whole cases), once per
precision, from the same seed, on the same synthetic BraTS-size cases; prints each run's best
validation Dice per region and its difference from float32's.

bf16 3D convolutions have had silent-error bugs in recent cuDNN releases: a difference above
0.01 flags one (or a precision that does not train), which a speed figure alone would hide.

    KERAS_BACKEND=jax python3 bench/gpu_parity.py --out gpu_parity.json
    KERAS_BACKEND=torch python3 bench/gpu_parity.py --model unet3d --epochs 2 --steps 4   # a CPU try
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras

from brats_unet.labels import REGIONS
from brats_unet.training.settings import TrainingSettings
from brats_unet.training.train import train_model
from gpu_training import make_cases  # bench/ is sys.path[0] when this file runs

#: Above this difference in validation Dice from float32 a precision fails the check.
TOLERANCE = 0.01


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="unet3d")
    parser.add_argument("--precisions", nargs="+",
                        default=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--cases", type=int, default=6, help="BraTS-size cases, 2 validate")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--patch", type=int, nargs="+", default=[64, 128, 128])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--data-format", default="auto")
    parser.add_argument("--out", type=Path, default=Path("gpu_parity.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    dirs = make_cases(work / "cases", args.cases)
    rows = []
    for precision in args.precisions:
        settings = TrainingSettings(
            patch_size=tuple(args.patch), batch_size=args.batch, epochs=args.epochs,
            steps_per_epoch=args.steps, learning_rate=2e-3, precision=precision, seed=1234,
            data_format=args.data_format, loader_workers=6,
            model_options={"base_filters": args.base_filters, "depth": args.depth,
                           "norm": "batch", "norm_momentum": 0.9, "dropout": 0.0})
        keras.backend.clear_session()
        out = work / precision
        start = time.perf_counter()
        summary = train_model(args.model, settings, train_dirs=dirs[:-2], validation_dirs=dirs[-2:],
                              weights_path=out / "m.keras", history_path=out / "h.csv",
                              summary_path=out / "s.json", state_dir=out / "state")
        rows.append({"precision": summary.precision, "backend": summary.backend,
                     "best_val_dice": summary.best_val_dice, "best_epoch": summary.best_epoch,
                     "seconds": time.perf_counter() - start, "gpus": summary.gpus})
        print(json.dumps(rows[-1]), flush=True)
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                        "rows": rows}, indent=2))
    reference = next((r for r in rows if r["precision"] == "float32"), None)
    for row in rows:
        if reference is None or row is reference:
            continue
        diffs = {r: row["best_val_dice"][r] - reference["best_val_dice"][r] for r in REGIONS}
        verdict = "within" if all(abs(d) <= TOLERANCE for d in diffs.values()) else "OUTSIDE"
        print(f"{row['precision']}: Dice - float32's " + ", ".join(
            f"{r} {d:+.3f}" for r, d in diffs.items()) + f" ({verdict} {TOLERANCE})")


if __name__ == "__main__":
    main()
