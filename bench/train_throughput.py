"""Training throughput of each model on each Keras back end, and the loader against the step.

Same code, same data, same patch: only KERAS_BACKEND differs. Each (back end,
model) runs in its own process (Keras fixes its back end per process); rounds
are interleaved so that a noisy machine hurts every back end alike. Figures are
medians over rounds.

    .venv/bin/python bench/train_throughput.py                       # demo sizes
    .venv/bin/python bench/train_throughput.py --rounds 3 --steps 30

Needs torch for the torch rows (`BRATS_UNET_EXTRAS=test,torch bash bin/setup`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WORKER = r"""
import json, sys, time
from pathlib import Path
import keras, numpy as np
from brats_unet.loaders import loader_throughput
from brats_unet.training import TrainingSettings, build_for_training, make_datasets
args = json.loads(sys.argv[1])
dims = 2 if args["model"].endswith("2d") else 3
settings = TrainingSettings(
    patch_size=tuple(args["patch2d"] if dims == 2 else args["patch3d"]),
    batch_size=args["batch2d"] if dims == 2 else args["batch3d"], epochs=1,
    steps_per_epoch=args["steps"] + args["warmup"], precision="float32", jit_compile=False,
    model_options={"base_filters": args["base_filters"], "depth": args["depth"], "norm": "batch",
                   "dropout": 0.0})
model, trainer = build_for_training(args["model"], settings, jit=False, n_gpus=0)
train, _ = make_datasets(args["model"], settings, [Path(d) for d in args["cases"]],
                         [Path(args["cases"][0])])
batches = [train[i] for i in range(len(train))]
loader = loader_throughput(train, len(train))
for x, y in batches[: args["warmup"]]:
    trainer.train_on_batch(x, y)
start = time.perf_counter()
for x, y in batches[args["warmup"]:]:
    trainer.train_on_batch(x, y)
step = (time.perf_counter() - start) / args["steps"]
voxels = int(np.prod(settings.patch_size))
print(json.dumps({"backend": keras.backend.backend(), "model": args["model"],
                  "seconds_per_step": step,
                  "samples_per_second": settings.batch_size / step,
                  "voxels_per_second": settings.batch_size * voxels / step,
                  "loader_samples_per_second": loader}))
"""


def make_cases(root: Path, n: int, shape, spacing) -> list[str]:
    from brats_unet.preprocessing import preprocess_to_folder
    from brats_unet.subjects import discover_subjects
    from brats_unet.synthetic import generate_dataset

    generate_dataset(root / "data", n=n, seed=11, shape=tuple(shape), spacing_mm=tuple(spacing))
    dirs = []
    for files in discover_subjects(root / "data").subjects:
        preprocess_to_folder(files, root / "pre" / files.subject)
        dirs.append(str(root / "pre" / files.subject))
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "torch"])
    parser.add_argument("--models", nargs="+", default=["unet2d", "unet3d", "resunet3d"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--shape", type=int, nargs=3, default=(96, 96, 64))
    parser.add_argument("--spacing", type=float, nargs=3, default=(2.0, 2.0, 2.4))
    parser.add_argument("--patch3d", type=int, nargs=3, default=(32, 64, 64))
    parser.add_argument("--batch3d", type=int, default=2)
    parser.add_argument("--patch2d", type=int, nargs=2, default=(64, 64))
    parser.add_argument("--batch2d", type=int, default=16)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    cases = make_cases(Path(tempfile.mkdtemp()), args.cases, args.shape, args.spacing)
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for model in args.models:
            for backend in args.backends:
                payload = dict(vars(args), model=model, cases=cases, out=None)
                env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
                proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(payload)],
                                      env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"{backend}/{model} failed:\n{proc.stderr[-3000:]}")
                results.setdefault((backend, model), []).append(
                    json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'model':10} {'back end':11} {'s/step':>7} {'samples/s':>10} {'Mvoxel/s':>9} "
          f"{'loader samples/s':>17} {'loader share':>12}")
    table = []
    for (backend, model), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0] if k not in ("backend", "model")}
        share = med["samples_per_second"] / med["loader_samples_per_second"]
        table.append({"backend": backend, "model": model, **med, "loader_time_share": share,
                      "rounds": len(runs)})
        print(f"{model:10} {backend:11} {med['seconds_per_step']:7.3f} {med['samples_per_second']:10.2f} "
              f"{med['voxels_per_second'] / 1e6:9.2f} {med['loader_samples_per_second']:17.1f} "
              f"{share:12.1%}")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "out"},
                                        "rows": table}, indent=2, default=list))


if __name__ == "__main__":
    main()
