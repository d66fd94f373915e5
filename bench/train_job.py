"""A training job as the pipeline runs it, against the bare step, per model and back end (CPU).

Each row is one fresh process doing what ``scripts/train.py`` does: the back end chosen
before Keras loads, the package imported (which turns on TensorFlow's oneDNN kernels unless
``TF_ENABLE_ONEDNN_OPTS`` says otherwise), ``limit_threads``, then ``train_model`` with the
demo's settings from ``config/config.yaml`` (loaders, callbacks: backup, checkpoint, CSV,
and per-epoch validation on whole cases), cut to ``--epochs`` x ``--steps``. Per epoch it
records wall time, the validation's share, minor page faults and system CPU time. After the
job, the same process times the bare step: ``train_on_batch`` of a fresh model on batches
already in memory. Rounds interleave the rows, so a noisy machine hurts every row alike;
figures are medians over the epochs after the first and over rounds.

    .venv/bin/python bench/train_job.py                                   # all models, both back ends
    .venv/bin/python bench/train_job.py --models unet3d --variants tensorflow tensorflow-eigen torch
    .venv/bin/python bench/train_job.py --variants tensorflow torch torch-channels_first jax
    .venv/bin/python bench/train_job.py --preload /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4

Variants: ``tensorflow`` (the pipeline's TensorFlow job), ``tensorflow-eigen``
(``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow's own default on CPUs without AVX512_VNNI,
AVX512_BF16 or AMX, i.e. what the pipeline ran before it set the variable), ``torch``
(layers channels last), ``torch-channels_first`` (``training.data_format: channels_first``),
``jax`` (XLA compiles the step, as ``jit_compile: auto`` does there).
``--preload``: also each variant with that allocator in ``LD_PRELOAD`` (``+preload`` rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from timing import run_worker  # bench/ is sys.path[0] when this file runs
from train_throughput import make_cases

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

WORKER = r"""
import json, os, resource, sys, time
args = json.loads(sys.argv[1])
import brats_unet  # noqa: F401  (as the job script: before Keras)
from brats_unet.runtime import limit_threads
limit_threads(args["threads"])
from pathlib import Path
import keras, numpy as np, yaml
from brats_unet.training import callbacks
from brats_unet.training.settings import settings_for
from brats_unet.training.train import build_for_training, make_training_data, train_model


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_minflt, r.ru_utime, r.ru_stime


epochs = []


class MeasuredEpoch(callbacks.EpochClock):
    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._usage = usage()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        end = usage()
        wall, faults, user, system = (b - a for a, b in zip(self._usage, end))
        epochs.append({"seconds": wall, "validation_seconds": logs["validation_seconds"],
                       "faults": faults, "user": user, "system": system})


callbacks.EpochClock = MeasuredEpoch  # training_callbacks looks it up there
config = yaml.safe_load(Path(args["config"]).read_text())
block = {**config["training"], "epochs": args["epochs"], "steps_per_epoch": args["steps"],
         "data_format": args["data_format"]}
settings = settings_for(args["model"], block, config["models"][args["model"]])
cases = [Path(c) for c in args["cases"]]
train_dirs, validation_dirs = cases[: args["n_train"]], cases[args["n_train"]:]
out = Path(args["work"])
start = time.perf_counter()
summary = train_model(args["model"], settings, train_dirs=train_dirs, validation_dirs=validation_dirs,
                      weights_path=out / "m.keras", history_path=out / "m.csv",
                      summary_path=out / "m.json", state_dir=out / "state")
job_seconds = time.perf_counter() - start

train = make_training_data(args["model"], settings, train_dirs)
batches = [train[i] for i in range(args["steps"])]
from brats_unet.runtime import resolve_jit
jit = resolve_jit("auto", 0, keras.backend.backend())  # as the job: XLA with JAX only
_, trainer = build_for_training(args["model"], settings, jit=jit, n_gpus=0)
for x, y in batches[:2]:
    trainer.train_on_batch(x, y)
before = usage()
for x, y in batches:
    trainer.train_on_batch(x, y)
wall, faults, user, system = (b - a for a, b in zip(before, usage()))
steady = epochs[1:] or epochs
median = lambda key: float(np.median([e[key] for e in steady]))
print(json.dumps({
    "job_seconds": job_seconds,
    "epoch_seconds": median("seconds"),
    "validation_seconds": median("validation_seconds"),
    "job_seconds_per_step": median("seconds") / args["steps"],
    "job_train_seconds_per_step": (median("seconds") - median("validation_seconds")) / args["steps"],
    "job_faults_per_step": median("faults") / args["steps"],
    "job_system_share": float(np.median([e["system"] / (e["system"] + e["user"]) for e in steady])),
    "bare_seconds_per_step": wall / len(batches),
    "bare_faults_per_step": faults / len(batches),
    "bare_system_share": system / (system + user),
    "cpu_threads": summary.cpu_threads,
    "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
}))
"""


def run_row(variant: str, model: str, args, cases: list[str]) -> dict:
    backend = variant.split("+")[0].split("-")[0]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if "-eigen" in variant:
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    if variant.endswith("+preload"):
        env["LD_PRELOAD"] = args.preload
    with tempfile.TemporaryDirectory() as work:
        payload = {"model": model, "cases": cases, "n_train": args.n_train, "epochs": args.epochs,
                   "steps": args.steps, "threads": args.threads, "work": work,
                   "config": str(args.config),
                   # pinned: torch's auto layout is channels first, and "torch" means channels last
                   "data_format": "channels_first" if "-channels_first" in variant
                   else "channels_last"}
        return run_worker(WORKER, payload, env, f"{variant}/{model}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", nargs="+", default=["tensorflow", "tensorflow-eigen", "torch"])
    parser.add_argument("--models", nargs="+", default=["unet2d", "unet3d", "resunet3d"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=16, help="steps per epoch (the demo's 16)")
    parser.add_argument("--cases", type=int, default=6, help="synthetic cases: training + validation")
    parser.add_argument("--n-train", type=int, default=3, help="of them for training; the rest validate")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--preload", help="an allocator library to add as +preload rows")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from brats_unet.runtime import cpu_description

    variants = args.variants + ([f"{v}+preload" for v in args.variants] if args.preload else [])
    # the demo's cases: 96 x 96 x 64 at 2 x 2 x 2.4 mm, its seed and share without ET
    cases = make_cases(Path(tempfile.mkdtemp()), args.cases, (96, 96, 64), (2.0, 2.0, 2.4),
                       seed=2020, no_et_probability=0.25)
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for model in args.models:
            for variant in variants:
                runs.setdefault((model, variant), []).append(run_row(variant, model, args, cases))
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"CPU: {cpu_description()}")
    print(f"{args.rounds} round(s); {args.epochs} epochs x {args.steps} steps, {args.n_train} training "
          f"and {args.cases - args.n_train} validation cases, {args.threads} threads")
    header = ("model", "variant", "job s/step", "train s/step", "bare s/step", "job/bare",
              "val s/epoch", "faults/step job", "faults/step bare", "sys share job")
    print(" | ".join(header))
    table = []
    for (model, variant), rows in runs.items():
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0] if k != "onednn"}
        table.append({"model": model, "variant": variant, **med, "runs": rows})
        print(f"{model} | {variant} | {med['job_seconds_per_step']:.3f} | "
              f"{med['job_train_seconds_per_step']:.3f} | {med['bare_seconds_per_step']:.3f} | "
              f"{med['job_seconds_per_step'] / med['bare_seconds_per_step']:.2f} | "
              f"{med['validation_seconds']:.2f} | {med['job_faults_per_step']:,.0f} | "
              f"{med['bare_faults_per_step']:,.0f} | {med['job_system_share']:.1%}")
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu_description(), "args": {
            k: str(v) for k, v in vars(args).items()}, "rows": table}, indent=2))


if __name__ == "__main__":
    main()
