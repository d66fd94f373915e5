"""GPU figures per model: training epoch time in float32 and mixed precision, peak GPU memory.

Runs the package's own training path (models, logits loss, PyDataset loader) on
synthetic BraTS-size cases (240 x 240 x 155 at 1 mm), preprocessed as the
pipeline does, with the real-data patch sizes. Epoch time is the median of the
epochs after the first (which holds compilation and warm-up); no validation.

    KERAS_BACKEND=torch python bench/gpu_training.py --out bench_gpu.json
    KERAS_BACKEND=torch python bench/gpu_training.py --data-format channels_first
    KERAS_BACKEND=jax python bench/gpu_training.py --precisions float32 mixed_bfloat16

Each back end compiles as a job's ``jit_compile: auto`` would (XLA: TensorFlow on a GPU, JAX
always). Prints a table and writes every figure to --out, after each row (a run cut short
keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from brats_unet.data.synthetic import generate_case, subject_name
from brats_unet.data.validation import LoadedSubject
from brats_unet.io import Geometry
from brats_unet.preprocessing.cases import preprocess_subject, write_case
from brats_unet.runtime import gpu_count, resolve_jit
from brats_unet.training.callbacks import EpochClock
from brats_unet.training.loaders import SyncEpoch
from brats_unet.training.settings import TrainingSettings
from brats_unet.training.train import build_for_training, make_training_data

from timing import loader_throughput  # bench/ is sys.path[0] when this file runs

MODELS = ("unet2d", "unet3d", "resunet3d")


def make_cases(root: Path, n: int) -> list[Path]:
    dirs = []
    for index in range(1, n + 1):
        case = generate_case(seed=7, index=index)
        name = subject_name(index)
        loaded = LoadedSubject(name, {k: v.astype(np.float32) for k, v in case.images.items()},
                               case.label, Geometry(case.label.shape, case.affine, case.pixdim))
        write_case(preprocess_subject(loaded), root / name)
        dirs.append(root / name)
    return dirs


def _torch_cuda() -> bool:
    if keras.backend.backend() != "torch":
        return False
    import torch

    return torch.cuda.is_available()


def _jax_device():
    if keras.backend.backend() != "jax":
        return None
    import jax

    return jax.devices()[0]


def synchronize():
    """Wait for the GPU. JAX needs nothing: train_on_batch hands back its losses as numbers,
    which waits for the step."""
    if _torch_cuda():
        import torch

        torch.cuda.synchronize()


def peak_memory_reset():
    if _torch_cuda():
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib() -> float:
    """Peak GPU memory of this process (JAX: since it started, its allocator has no reset)."""
    device = _jax_device()
    if device is not None and device.platform == "gpu":
        return (device.memory_stats() or {}).get("peak_bytes_in_use", math.nan) / 2**30
    if _torch_cuda():
        import torch

        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**30
    return float("nan")


def write_result(args, rows: list[dict]) -> None:
    result = {"backend": keras.backend.backend(), "keras": keras.__version__,
              "python": platform.python_version(), "base_filters": args.base_filters,
              "depth": args.depth, "data_format": args.data_format, "rows": rows}
    if _torch_cuda():
        import torch

        result["device"] = torch.cuda.get_device_name(0)
        result["torch"] = torch.__version__
    if (device := _jax_device()) is not None:
        import jax

        result["device"] = device.device_kind
        result["jax"] = jax.__version__
    args.out.write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--patch3d", type=int, nargs=3, default=(64, 128, 128))
    parser.add_argument("--batch3d", type=int, default=2)
    parser.add_argument("--patch2d", type=int, nargs=2, default=(192, 192))
    parser.add_argument("--batch2d", type=int, default=16)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--precisions", nargs="+",
                        default=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--data-format", default="channels_last",
                        choices=["channels_last", "channels_first"])
    parser.add_argument("--out", type=Path, default=Path("bench_gpu.json"))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    dirs = make_cases(tmp, args.cases)
    print(f"made {len(dirs)} BraTS-size cases in {time.perf_counter() - start:.1f} s")
    rows = []
    for name in args.models:
        patch, batch = ((tuple(args.patch2d), args.batch2d) if name.endswith("2d")
                        else (tuple(args.patch3d), args.batch3d))
        for precision in args.precisions:
            keras.backend.clear_session()
            keras.mixed_precision.set_dtype_policy(precision)
            settings = TrainingSettings(
                patch_size=patch, batch_size=batch, epochs=args.epochs,
                steps_per_epoch=args.steps, precision=precision, jit_compile="auto",
                data_format=args.data_format, loader_workers=args.workers,
                model_options={"base_filters": args.base_filters, "depth": args.depth,
                               "norm": "batch", "dropout": 0.0})
            jit = resolve_jit("auto", gpu_count(), keras.backend.backend())
            model, trainer = build_for_training(name, settings, jit=jit, n_gpus=gpu_count())
            train = make_training_data(name, settings, dirs)
            loader_rate = loader_throughput(train, 10)
            clock = EpochClock()
            seconds: list[float] = []
            record = keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: seconds.append(logs["epoch_seconds"]))
            peak_memory_reset()
            trainer.fit(train, epochs=args.epochs, callbacks=[SyncEpoch(train), clock, record],
                        verbose=0)
            epoch = float(np.median(seconds[1:]))
            # The step alone, on batches already in memory: what the GPU does
            # when the loader keeps up.
            batches = [train[i] for i in range(5)]
            for x, y in batches:
                trainer.train_on_batch(x, y)
            synchronize()
            start = time.perf_counter()
            for i in range(args.steps):
                trainer.train_on_batch(*batches[i % len(batches)])
            synchronize()
            step = (time.perf_counter() - start) / args.steps
            row = {
                "model": name, "precision": precision, "patch": list(patch), "batch": batch,
                "data_format": args.data_format, "jit_compile": jit,
                "median_epoch_seconds": epoch, "steps_per_epoch": args.steps,
                "samples_per_second": batch * args.steps / epoch,
                "first_epoch_seconds": seconds[0],
                "step_seconds_in_memory": step,
                "samples_per_second_in_memory": batch / step,
                "peak_gpu_memory_gib": peak_memory_gib(),
                "loader_samples_per_second_one_worker": loader_rate,
                "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            write_result(args, rows)
    print(f"\n{'model':10} {'precision':14} {'epoch s':>8} {'samples/s':>10} "
          f"{'in-memory samples/s':>20} {'peak GiB':>9}")
    for r in rows:
        print(f"{r['model']:10} {r['precision']:14} {r['median_epoch_seconds']:8.2f} "
              f"{r['samples_per_second']:10.1f} {r['samples_per_second_in_memory']:20.1f} "
              f"{r['peak_gpu_memory_gib']:9.2f}")
    for name in args.models:
        pair = {r["precision"]: r for r in rows if r["model"] == name}
        for mixed in ("mixed_float16", "mixed_bfloat16"):
            if {"float32", mixed} <= pair.keys():
                f32, half = pair["float32"], pair[mixed]
                print(f"{name}: {mixed} speed-up x"
                      f"{f32['median_epoch_seconds'] / half['median_epoch_seconds']:.2f} per epoch,"
                      f" x{f32['step_seconds_in_memory'] / half['step_seconds_in_memory']:.2f} per "
                      "step in memory")


if __name__ == "__main__":
    main()
