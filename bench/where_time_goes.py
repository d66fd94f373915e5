"""Where a 3D training step's time goes: TensorFlow against the PyTorch reference, op by op.

Two parts, each TensorFlow and PyTorch in its own process, interleaved over rounds:

1. Whole model: forward pass alone (``predict_on_batch`` / ``no_grad``) and a
   full training step, for Keras on TensorFlow (graph, and XLA), and for the
   plain-PyTorch reference (``bench/reference.py``), channels first (its
   native layout) and ``channels_last_3d``.
2. Every convolution of the network alone, as the three products a training
   step computes: forward, gradient with respect to the input ("backward
   input") and to the kernel ("backward filter"), each with the same FLOPs
   (``bench/flops.py``). TensorFlow's raw ops (``Conv3D``,
   ``Conv3DBackpropInputV2``, ``Conv3DBackpropFilterV2``) in NDHWC and NCDHW,
   PyTorch's ``convolution`` / ``convolution_backward`` in NCDHW. Summed per
   op class, and the slowest layers listed.

    .venv/bin/python bench/where_time_goes.py                         # demo: 32x64x64, base 8, depth 4, batch 2
    .venv/bin/python bench/where_time_goes.py --patch 64 128 128 --base-filters 16 --depth 5 --batch 1 --rounds 1

Bench code only: it calls ``tf.*`` directly, which the package never does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from timing import run_worker  # bench/ is sys.path[0] when this file runs

BENCH = Path(__file__).resolve().parent

WORKER = r"""
import json, os, sys, time
args = json.loads(sys.argv[1])
sys.path.insert(0, args["bench"])
import numpy as np
from flops import unet_convolutions
from timing import median_seconds
who, part = args["who"], args["part"]
patch, batch, base, depth = tuple(args["patch"]), args["batch"], args["base_filters"], args["depth"]
rng = np.random.default_rng(0)


out = {}
if part == "model":
    x = rng.standard_normal((batch,) + patch + (4,), dtype=np.float32)
    y = (rng.random((batch,) + patch + (3,)) > 0.9).astype(np.float32)
    if who.startswith("reference"):
        import torch
        from reference import TorchUNet, channels_first, soft_dice_bce_from_logits
        fmt = torch.channels_last_3d if who.endswith("-cl") else torch.contiguous_format
        net = TorchUNet(spatial_dims=3, base_filters=base, depth=depth).to(memory_format=fmt)
        optimiser = torch.optim.Adam(net.parameters())
        tx = lambda a: channels_first(a).contiguous(memory_format=fmt)
        def step():
            optimiser.zero_grad(set_to_none=True)
            soft_dice_bce_from_logits(net(tx(x)), tx(y)).backward()
            optimiser.step()
        def forward():
            with torch.no_grad():
                net(tx(x))
    else:
        from brats_unet.training.settings import TrainingSettings
        from brats_unet.training.train import build_for_training
        settings = TrainingSettings(patch_size=patch, batch_size=batch, epochs=1, steps_per_epoch=10,
                                    precision="float32",
                                    model_options={"base_filters": base, "depth": depth})
        model, trainer = build_for_training("unet3d", settings, jit=who.endswith("-xla"), n_gpus=0)
        step = lambda: trainer.train_on_batch(x, y)
        if who.endswith("-xla"):
            model.compile(jit_compile=True)
        forward = lambda: model.predict_on_batch(x)
    out["forward"] = median_seconds(forward, args["repeats"])
    out["step"] = median_seconds(step, args["repeats"])
else:
    convs = unet_convolutions(spatial_dims=3, patch=patch, base_filters=base, depth=depth)
    if who == "torch":
        import torch
    else:
        import tensorflow as tf
        channels_first = who.endswith("ncdhw")
    for c in convs:
        k = round(c.kernel ** (1 / 3))
        transposed = c.name.startswith("up")
        big = tuple(round((c.voxels * (8 if transposed else 1) / np.prod(patch)) ** (1 / 3) * p) for p in patch)
        stride = 2 if (c.name.endswith("conv1") and c.name.startswith("enc") and c.name != "enc0_conv1") else 1
        if transposed:
            stride = 2
        in_shape = tuple(s * stride for s in big) if stride == 2 and not transposed else big
        if transposed:  # forward: small (c_in) -> big (c_out)
            in_shape, out_shape = tuple(s // 2 for s in big), big
        else:
            out_shape = tuple(s // stride for s in in_shape)
        xi = rng.standard_normal((batch,) + in_shape + (c.c_in,), dtype=np.float32)
        dy = rng.standard_normal((batch,) + out_shape + (c.c_out,), dtype=np.float32)
        if who == "torch":
            cf = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))
            tx, tdy = cf(xi), cf(dy)
            if transposed:
                w = torch.randn(c.c_in, c.c_out, k, k, k)
                pad = 0
            else:
                w = torch.randn(c.c_out, c.c_in, k, k, k)
                pad = k // 2
            conv = lambda: torch.ops.aten.convolution(tx, w, None, [stride] * 3, [pad] * 3, [1] * 3,
                                                      transposed, [0] * 3, 1)
            back = lambda mask: torch.ops.aten.convolution_backward(
                tdy, tx, w, None, [stride] * 3, [pad] * 3, [1] * 3, transposed, [0] * 3, 1, mask)
            with torch.no_grad():
                fns = {"forward": conv, "backward_input": lambda: back([True, False, False]),
                       "backward_filter": lambda: back([False, True, False])}
                times = {op: median_seconds(fn, args["repeats"]) for op, fn in fns.items()}
        else:
            fmt = "NCDHW" if channels_first else "NDHWC"
            cf = (lambda a: np.ascontiguousarray(np.moveaxis(a, -1, 1))) if channels_first else (lambda a: a)
            tx, tdy = tf.constant(cf(xi)), tf.constant(cf(dy))
            strides = [1, 1] + [stride] * 3 if channels_first else [1] + [stride] * 3 + [1]
            if transposed:  # kernel (k, k, k, c_out, c_in): big <- small
                w = tf.constant(rng.standard_normal((k, k, k, c.c_out, c.c_in), dtype=np.float32))
                fwd = tf.function(lambda: tf.raw_ops.Conv3DBackpropInputV2(
                    input_sizes=tdy.shape, filter=w, out_backprop=tx, strides=strides, padding="SAME",
                    data_format=fmt))
                bin_ = tf.function(lambda: tf.raw_ops.Conv3D(input=tdy, filter=w, strides=strides,
                                                             padding="SAME", data_format=fmt))
                bfi = tf.function(lambda: tf.raw_ops.Conv3DBackpropFilterV2(
                    input=tdy, filter_sizes=w.shape, out_backprop=tx, strides=strides, padding="SAME",
                    data_format=fmt))
            else:
                w = tf.constant(rng.standard_normal((k, k, k, c.c_in, c.c_out), dtype=np.float32))
                fwd = tf.function(lambda: tf.raw_ops.Conv3D(input=tx, filter=w, strides=strides,
                                                            padding="SAME", data_format=fmt))
                bin_ = tf.function(lambda: tf.raw_ops.Conv3DBackpropInputV2(
                    input_sizes=tx.shape, filter=w, out_backprop=tdy, strides=strides, padding="SAME",
                    data_format=fmt))
                bfi = tf.function(lambda: tf.raw_ops.Conv3DBackpropFilterV2(
                    input=tx, filter_sizes=w.shape, out_backprop=tdy, strides=strides, padding="SAME",
                    data_format=fmt))
            try:
                times = {op: median_seconds(lambda f=f: f().numpy(), args["repeats"])
                         for op, f in (("forward", fwd), ("backward_input", bin_), ("backward_filter", bfi))}
            except Exception as error:  # NCDHW is not implemented for every op on CPU
                times = {"error": type(error).__name__ + ": " + str(error).splitlines()[0][:120]}
        out[c.name] = {"gflop": batch * c.flops / 1e9, **times}
print(json.dumps(out))
"""


def run(payload: dict, backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return run_worker(WORKER, payload, env, f"{payload['who']}/{payload['part']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patch", type=int, nargs=3, default=(32, 64, 64))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=["tensorflow", "tensorflow-xla", "reference",
                                                        "reference-cl"])
    parser.add_argument("--ops", nargs="*", default=["tensorflow-ndhwc", "tensorflow-ncdhw", "torch"])
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    from flops import forward_flops

    common = dict(vars(args), bench=str(BENCH))
    model_runs: dict[str, list[dict]] = {}
    op_runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for who in args.models:
            model_runs.setdefault(who, []).append(
                run({**common, "who": who, "part": "model"}, "torch" if who.startswith("ref") else "tensorflow"))
        for who in args.ops:
            op_runs.setdefault(who, []).append(
                run({**common, "who": who, "part": "ops"}, "torch" if who == "torch" else "tensorflow"))

    gflop = args.batch * forward_flops(spatial_dims=3, patch=tuple(args.patch),
                                       base_filters=args.base_filters, depth=args.depth) / 1e9
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"unet3d, patch {tuple(args.patch)}, batch {args.batch}, base {args.base_filters}, depth "
          f"{args.depth}: forward {gflop:.2f} GFLOP, step {3 * gflop:.2f} GFLOP; medians of {args.rounds} rounds")
    print(f"{'whole model':16} {'forward s':>9} {'GFLOP/s':>8} {'step s':>8} {'GFLOP/s':>8} {'backward+update s':>18}")
    for who, runs in model_runs.items():
        f = float(np.median([r["forward"] for r in runs]))
        s = float(np.median([r["step"] for r in runs]))
        print(f"{who:16} {f:9.3f} {gflop / f:8.1f} {s:8.3f} {3 * gflop / s:8.1f} {s - f:18.3f}")

    if not op_runs:
        return
    print(f"\nconvolutions alone, summed over the network's {len(op_runs[args.ops[0]][0])} layers "
          f"(seconds, and GFLOP/s):")
    print(f"{'ops':18} {'forward':>16} {'backward input':>16} {'backward filter':>16} {'all three':>10}")
    per_layer: dict[str, dict[str, dict[str, float]]] = {}
    for who, runs in op_runs.items():
        layers = runs[0].keys()
        med = {name: {op: float(np.median([r[name][op] for r in runs])) if op != "error" else runs[0][name][op]
                      for op in runs[0][name]} for name in layers}
        per_layer[who] = med
        errors = {m["error"] for m in med.values() if "error" in m}
        if errors:
            print(f"{who:18} not run: {errors.pop()}")
            continue
        total_gflop = sum(m["gflop"] for m in med.values())
        cells = []
        for op in ("forward", "backward_input", "backward_filter"):
            seconds = sum(m[op] for m in med.values())
            cells.append(f"{seconds:7.3f} ({total_gflop / seconds:5.1f})")
        total = sum(m[op] for m in med.values() for op in ("forward", "backward_input", "backward_filter"))
        print(f"{who:18} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {total:10.3f}")

    print("\nslowest layers (seconds: forward / backward input / backward filter):")
    names = list(per_layer[args.ops[0]].keys())
    ranked = sorted(names, key=lambda n: -sum(per_layer["torch"][n].get(op, 0) for op in
                                               ("forward", "backward_input", "backward_filter"))
                    if "torch" in per_layer else 0)
    for name in ranked[:8]:
        cells = []
        for who in per_layer:
            m = per_layer[who][name]
            cells.append(f"{who} " + ("n/a" if "error" in m else
                                      f"{m['forward']:.3f}/{m['backward_input']:.3f}/{m['backward_filter']:.3f}"))
        print(f"  {name:11} {per_layer[args.ops[0]][name]['gflop']:6.2f} GFLOP  " + "   ".join(cells))


if __name__ == "__main__":
    main()
