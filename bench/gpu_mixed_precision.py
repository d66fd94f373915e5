"""Where mixed precision's speed-up goes on a GPU: Keras (PyTorch back end) against plain PyTorch.

For each model, one training step on batches already on the GPU (random data of the real-data
shape), timed as the median of repeated blocks of steps, and the peak GPU memory:

- the plain-PyTorch reference of the same architecture (bench/reference.py): strict float32
  (TF32 off), float32 as PyTorch runs it by default (cuDNN convolutions in TF32), automatic
  mixed precision (float16 autocast + GradScaler), and AMP with channels-last memory;
- the package's Keras model and loss: float32 and mixed_float16, cuDNN autotuner off and on.

So the speed-up of half precision is measured once where nothing but the hardware limits it
(the reference) and once through Keras, side by side in one process.

    KERAS_BACKEND=torch python3 bench/gpu_mixed_precision.py --out gpu_mixed_precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from brats_unet.training.settings import TrainingSettings  # noqa: E402
from brats_unet.training.train import build_for_training  # noqa: E402

from reference import TorchUNet, soft_dice_bce_from_logits  # noqa: E402

CASES = {  # model: (patch, batch) as on real data
    "unet2d": ((192, 192), 16),
    "unet3d": ((64, 128, 128), 2),
    "resunet3d": ((64, 128, 128), 2),
}


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: only to try the script out


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(step, *, warmup: int, steps: int, repeats: int) -> tuple[float, float]:
    """Median seconds per step over ``repeats`` blocks, and the peak memory in GiB."""
    for _ in range(warmup):
        step()
    sync()
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    blocks = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        blocks.append((time.perf_counter() - start) / steps)
    peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE == "cuda" else float("nan")
    return float(np.median(blocks)), peak


def batch(patch, size, device):
    x = torch.rand(size, *patch, 4, device=device)
    y = (torch.rand(size, *patch, 3, device=device) > 0.9).float()
    return x, y


def reference_step(name, patch, size, mode, args):
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = mode != "fp32_strict"
    torch.backends.cuda.matmul.allow_tf32 = mode != "fp32_strict"
    dims = len(patch)
    net = TorchUNet(spatial_dims=dims, base_filters=args.base_filters, depth=args.depth,
                    residual=name.startswith("res")).to(DEVICE)
    x, y = batch(patch, size, DEVICE)
    x = x.permute(0, dims + 1, *range(1, dims + 1)).contiguous()
    y = y.permute(0, dims + 1, *range(1, dims + 1)).contiguous()
    if mode == "amp_channels_last":
        memory = torch.channels_last_3d if dims == 3 else torch.channels_last
        net = net.to(memory_format=memory)
        x = x.contiguous(memory_format=memory)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    amp = mode.startswith("amp") and DEVICE == "cuda"
    scaler = torch.amp.GradScaler(DEVICE, enabled=amp)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(DEVICE, dtype=torch.float16, enabled=amp):
            logits = net(x)
        loss = soft_dice_bce_from_logits(logits.float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def keras_step(name, patch, size, precision, benchmark, args, jit=False):
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.allow_tf32 = True
    keras.backend.clear_session()
    keras.mixed_precision.set_dtype_policy(precision)
    settings = TrainingSettings(
        patch_size=patch, batch_size=size, epochs=1, steps_per_epoch=1, precision=precision,
        jit_compile=False, model_options={"base_filters": args.base_filters,
                                          "depth": args.depth, "norm": "batch", "dropout": 0.0})
    # jit on the torch back end: Keras wraps the train step in torch.compile
    _, trainer = build_for_training(name, settings, jit=jit, n_gpus=int(DEVICE == "cuda"))
    x, y = batch(patch, size, DEVICE)
    return lambda: trainer.train_on_batch(x, y)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(CASES))
    parser.add_argument("--batch3d", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--patch3d", type=int, nargs=3, help="override (64, 128, 128)")
    parser.add_argument("--only", nargs="+", help='variants to run, e.g. "keras: float32 '
                        'torch.compile" "torch reference: amp_channels_last"')
    parser.add_argument("--out", type=Path, default=Path("gpu_mixed_precision.json"))
    args = parser.parse_args()
    if args.patch3d:
        for name in ("unet3d", "resunet3d"):
            CASES[name] = (tuple(args.patch3d), CASES[name][1])
    rows = []
    for name in args.models:
        patch, default_size = CASES[name]
        sizes = args.batch3d if len(patch) == 3 else [default_size]
        for size in sizes:
            variants = [("torch reference", mode, lambda m=mode: reference_step(
                name, patch, size, m, args))
                for mode in ("fp32_strict", "fp32_tf32", "amp_fp16", "amp_channels_last")]
            variants += [("keras", f"{precision}{' cudnn.benchmark' if bench else ''}"
                          f"{' torch.compile' if jit else ''}",
                          lambda p=precision, b=bench, j=jit: keras_step(name, patch, size, p, b,
                                                                         args, jit=j))
                         for bench, jit in ((False, False), (True, False), (False, True))
                         for precision in ("float32", "mixed_float16")]
            variants = [v for v in variants if not args.only or any(
                f"{v[0]}: {v[1]}" == wanted for wanted in args.only)]
            for framework, mode, make in variants:
                step = make()
                seconds, peak = timed(step, warmup=args.warmup, steps=args.steps,
                                      repeats=args.repeats)
                row = {"model": name, "patch": list(patch), "batch": size,
                       "framework": framework, "mode": mode, "step_seconds": seconds,
                       "samples_per_second": size / seconds, "peak_gpu_memory_gib": peak}
                rows.append(row)
                print(json.dumps(row), flush=True)
                del step
                torch.cuda.empty_cache()
    result = {"device": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu", "torch": torch.__version__,
              "keras": keras.__version__, "base_filters": args.base_filters,
              "depth": args.depth, "rows": rows}
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{'model':10} {'batch':>5} {'framework':16} {'mode':32} {'step s':>8} "
          f"{'samples/s':>10} {'peak GiB':>9}")
    for r in rows:
        print(f"{r['model']:10} {r['batch']:5d} {r['framework']:16} {r['mode']:32} "
              f"{r['step_seconds']:8.4f} {r['samples_per_second']:10.1f} "
              f"{r['peak_gpu_memory_gib']:9.2f}")


if __name__ == "__main__":
    main()
