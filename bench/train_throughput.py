"""Training throughput per model and back end, in GFLOP/s against the machine's peak and a PyTorch reference.

Same data, same patch, same batch: the Keras model on each back end
(``tensorflow``, ``tensorflow-xla``: jit_compile, ``torch``: Keras on PyTorch)
and ``reference``, the plain-PyTorch network of the same architecture and
FLOPs (``bench/reference.py``), trained with the same loss and Adam. Each
(back end, model) runs in its own process; rounds interleave them and, once
per round, the float32 matrix-product peak (``bench/peak.py``), so a noisy
machine hurts every row alike. Figures are medians over rounds.

GFLOP/s counts convolution FLOPs analytically (``bench/flops.py``: 2 per
multiply-add, a training step = 3x the forward pass). The loader column is
one worker's samples/s; "best ref time / time" is the step time of the faster
reference layout over the row's, per round (above 1: faster than PyTorch);
"loader share" is the time it would take of a step if
done serially (Keras' workers overlap it).

    .venv/bin/python bench/train_throughput.py                       # demo sizes
    .venv/bin/python bench/train_throughput.py --models unet3d --rounds 5 --steps 15

Needs torch (`pip install -e .[torch]`).
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

BENCH = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, time
args = json.loads(sys.argv[1])
sys.path.insert(0, args["bench"])
from pathlib import Path
import keras, numpy as np
from timing import loader_throughput
from brats_unet.training.settings import TrainingSettings
from brats_unet.training.train import build_for_training, make_training_data
from flops import training_flops
dims = 2 if args["model"].endswith("2d") else 3
settings = TrainingSettings(
    patch_size=tuple(args["patch2d"] if dims == 2 else args["patch3d"]),
    batch_size=args["batch2d"] if dims == 2 else args["batch3d"], epochs=1,
    steps_per_epoch=args["steps"] + args["warmup"], precision="float32", jit_compile=False,
    model_options={"base_filters": args["base_filters"], "depth": args["depth"], "norm": "batch",
                   "dropout": 0.0})
train = make_training_data(args["model"], settings, [Path(d) for d in args["cases"]])
batches = [train[i] for i in range(len(train))]
loader = loader_throughput(train, len(train))
if args["backend"].startswith("reference"):
    import torch
    from reference import TorchUNet, channels_first, soft_dice_bce_from_logits
    fmt = torch.contiguous_format
    if args["backend"].endswith("-cl"):
        fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    net = TorchUNet(spatial_dims=dims, base_filters=args["base_filters"], depth=args["depth"],
                    residual=args["model"].startswith("res")).to(memory_format=fmt)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    def step(x, y):
        optimiser.zero_grad(set_to_none=True)
        loss = soft_dice_bce_from_logits(net(channels_first(x).contiguous(memory_format=fmt)),
                                         channels_first(y).contiguous(memory_format=fmt))
        loss.backward()
        optimiser.step()
        return float(loss)
else:
    model, trainer = build_for_training(args["model"], settings, jit=args["backend"].endswith("-xla"),
                                        n_gpus=0)
    step = trainer.train_on_batch
for x, y in batches[: args["warmup"]]:
    step(x, y)
start = time.perf_counter()
for x, y in batches[args["warmup"]:]:
    step(x, y)
seconds = (time.perf_counter() - start) / args["steps"]
flops = training_flops(spatial_dims=dims, patch=settings.patch_size, base_filters=args["base_filters"],
                       depth=args["depth"], residual=args["model"].startswith("res"))
print(json.dumps({"seconds_per_step": seconds,
                  "samples_per_second": settings.batch_size / seconds,
                  "voxels_per_second": settings.batch_size * int(np.prod(settings.patch_size)) / seconds,
                  "gflops_per_second": settings.batch_size * flops / seconds / 1e9,
                  "loader_samples_per_second": loader}))
"""


def make_cases(root: Path, n: int, shape, spacing, *, seed: int = 11,
               no_et_probability: float = 0.2) -> list[str]:
    """``n`` synthetic cases under ``root``, preprocessed as the pipeline does; their folders."""
    from brats_unet.data.subjects import discover_subjects
    from brats_unet.data.synthetic import generate_dataset
    from brats_unet.preprocessing.cases import preprocess_to_folder

    generate_dataset(root / "data", n=n, seed=seed, shape=tuple(shape), spacing_mm=tuple(spacing),
                     no_et_probability=no_et_probability)
    dirs = []
    for files in discover_subjects(root / "data").subjects:
        preprocess_to_folder(files, root / "pre" / files.subject)
        dirs.append(str(root / "pre" / files.subject))
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", nargs="+",
                        default=["tensorflow", "torch", "reference", "reference-cl"],
                        help="tensorflow, tensorflow-xla, torch (Keras), reference (plain PyTorch, "
                             "channels first), reference-cl (channels_last memory format)")
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
    parser.add_argument("--peak-n", type=int, default=4096, help="matrix size of the peak (0: skip)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    from peak import measure

    cases = make_cases(Path(tempfile.mkdtemp()), args.cases, args.shape, args.spacing)
    results: dict[tuple[str, str], list[dict]] = {}
    peaks: list[float] = []
    for _ in range(args.rounds):
        if args.peak_n:
            peaks.append(max(measure("numpy", args.peak_n, 3), measure("torch", args.peak_n, 3)))
        for model in args.models:
            for backend in args.backends:
                payload = dict(vars(args), model=model, backend=backend, cases=cases, out=None,
                               bench=str(BENCH))
                env = {**os.environ, "KERAS_BACKEND": backend.split("-")[0].replace("reference", "torch"),
                       "TF_CPP_MIN_LOG_LEVEL": "3"}
                results.setdefault((backend, model), []).append(
                    run_worker(WORKER, payload, env, f"{backend}/{model}"))
    peak = float(np.median(peaks)) if peaks else float("nan")
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"practical peak (float32 {args.peak_n}^2 matrix product, best of numpy/torch, median of "
          f"{len(peaks)} rounds): {peak:.1f} GFLOP/s; {args.rounds} rounds, {args.steps} steps each")
    print(f"{'model':10} {'back end':15} {'s/step':>7} {'samples/s':>10} {'Mvoxel/s':>9} "
          f"{'GFLOP/s':>8} {'% peak':>7} {'best ref time / time':>20} {'loader samples/s':>17} "
          f"{'loader share':>12}")
    table = []
    medians = {key: {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
               for key, runs in results.items()}
    for (backend, model), med in sorted(medians.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        share = med["samples_per_second"] / med["loader_samples_per_second"]
        # Against the faster reference layout of the same round, so that both sides of
        # the ratio saw the same machine state.
        refs = [results[(b, model)] for b in ("reference", "reference-cl") if (b, model) in results]
        ratio = (float(np.median([min(r[i]["seconds_per_step"] for r in refs) / s["seconds_per_step"]
                                  for i, s in enumerate(results[(backend, model)])]))
                 if refs else float("nan"))
        row = {"backend": backend, "model": model, **med, "percent_of_peak": 100 * med["gflops_per_second"] / peak,
               "reference_speed_ratio": ratio, "loader_time_share": share,
               "rounds": len(results[(backend, model)]), "runs": results[(backend, model)]}
        table.append(row)
        print(f"{model:10} {backend:15} {med['seconds_per_step']:7.3f} {med['samples_per_second']:10.2f} "
              f"{med['voxels_per_second'] / 1e6:9.2f} {med['gflops_per_second']:8.1f} "
              f"{row['percent_of_peak']:6.1f}% {ratio:20.2f} {med['loader_samples_per_second']:17.1f} "
              f"{share:12.1%}")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "out"},
                                        "peak_gflops": peak, "peaks": peaks, "rows": table}, indent=2, default=list))


if __name__ == "__main__":
    main()
