"""Seconds to segment one full BraTS-size case (240 x 240 x 155, 1 mm) per model, against a PyTorch reference.

Untrained models of the demo's width by default (speed does not depend on the
weights); the case is synthetic and preprocessed as the pipeline does (brain
crop 124 x 162 x 130). Rows, each in its own process, interleaved over
--rounds; each figure is the median of --repeats calls after one warm-up:

* ``keras``: ``segment_case`` end to end on the current Keras back end
  (forward passes, Gaussian blending, thresholds, back into the input grid),
  and ``predict_case`` alone (the probabilities).
* ``reference``: the plain-PyTorch network of the same architecture and FLOPs
  (``bench/reference.py``, eval mode, ``torch.no_grad``) under MONAI's
  ``sliding_window_inference`` with the same window, overlap 0.5, Gaussian
  blending (sigma 1/8 of the window) and 2 windows per batch; 2D: the axial
  slices 16 at a time, padded to the size divisor. Probabilities only.
  ``reference-cl``: the same in the ``channels_last`` memory format.

GFLOP/s = forward FLOPs per window (``bench/flops.py``) x windows / seconds.
Then the scoring of the case (``metrics.region_metrics``).

    .venv/bin/python bench/inference_speed.py
    .venv/bin/python bench/inference_speed.py --rounds 3 --repeats 3
    KERAS_BACKEND=torch .venv/bin/python bench/inference_speed.py --who keras
    .venv/bin/python bench/inference_speed.py --base-filters 16 --depth 5    # real-data width

Needs the bench extra for the reference rows (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from timing import run_worker  # bench/ is sys.path[0] when this file runs

BENCH = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, time
args = json.loads(sys.argv[1])
sys.path.insert(0, args["bench"])
import numpy as np
from brats_unet.io import Geometry
from brats_unet.preprocessing.cases import preprocess_subject
from brats_unet.data.synthetic import generate_case
from brats_unet.data.validation import LoadedSubject
from brats_unet.models.windows import window_starts, _pad_end
from flops import forward_flops
from timing import median_seconds

case = generate_case(seed=1, index=1)
loaded = LoadedSubject("bench", {k: v.astype(np.float32) for k, v in case.images.items()},
                       case.label, Geometry(case.label.shape, case.affine, case.pixdim))
pre = preprocess_subject(loaded)
name, patch, mirror, who = args["model"], args["patch"], args["mirror"], args["who"]
dims = 2 if name.endswith("2d") else 3
divisor = 2 ** (args["depth"] - 1)
shape = pre.image.shape[:3]
if dims == 3:
    windows = len(window_starts([max(s, p) for s, p in zip(shape, patch)], patch, 0.5))
    per_window = forward_flops(spatial_dims=3, patch=tuple(patch), base_filters=args["base_filters"],
                               depth=args["depth"], residual=name.startswith("res"))
else:
    plane = tuple(-(-s // divisor) * divisor for s in shape[1:])
    windows = shape[0]
    per_window = forward_flops(spatial_dims=2, patch=plane, base_filters=args["base_filters"],
                               depth=args["depth"])
gflop = windows * per_window * (8 if mirror else 1) / 1e9


out = {"windows": windows, "gflop": gflop}
if who == "keras":
    import keras
    from brats_unet.inference.predict import segment_case
    from brats_unet.models.windows import predict_case
    from brats_unet.models.unets import build_model
    model = build_model(name, base_filters=args["base_filters"], depth=args["depth"])
    kw = dict(spatial_dims=dims, patch_size=patch, overlap=0.5, mirror=mirror)
    out["segment_case"] = median_seconds(lambda: segment_case(model, pre.image, pre.properties, **kw),
                                         args["repeats"])
    out["predict_case"] = median_seconds(lambda: predict_case(model, pre.image, **kw), args["repeats"])
    out["backend"] = keras.backend.backend()
else:
    import torch
    from monai.inferers import sliding_window_inference
    from reference import TorchUNet
    fmt = torch.contiguous_format
    if who.endswith("-cl"):
        fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    net = TorchUNet(spatial_dims=dims, base_filters=args["base_filters"], depth=args["depth"],
                    residual=name.startswith("res")).eval().to(memory_format=fmt)
    image = torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(pre.image), -1, 0)))[None]
    def predictor(x):
        return torch.sigmoid(net(x.contiguous(memory_format=fmt)))
    def run():
        with torch.no_grad():
            if dims == 3:
                return sliding_window_inference(image, tuple(patch), 2, predictor, overlap=0.5,
                                                mode="gaussian", sigma_scale=0.125)
            slices = torch.from_numpy(_pad_end(np.moveaxis(np.asarray(pre.image), -1, 1),
                                               (shape[0], 4) + plane))
            return torch.cat([predictor(slices[i:i + 16]) for i in range(0, shape[0], 16)])
    out["predict_case"] = median_seconds(run, args["repeats"])
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--who", nargs="+", default=["keras", "reference", "reference-cl"])
    args = parser.parse_args()

    settings = [("unet2d", None, False), ("unet3d", (32, 64, 64), False),
                ("unet3d", (64, 128, 128), False), ("resunet3d", (64, 128, 128), False),
                ("unet3d", (64, 128, 128), True)]
    results: dict[tuple, list[dict]] = {}
    for _ in range(args.rounds):
        for name, patch, mirror in settings:
            for who in args.who:
                if mirror and who != "keras":
                    continue
                payload = dict(vars(args), model=name, patch=patch, mirror=mirror, who=who,
                               bench=str(BENCH))
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
                if who != "keras":
                    env["KERAS_BACKEND"] = "torch"
                results.setdefault((name, patch, mirror, who), []).append(
                    run_worker(WORKER, payload, env, f"{who}/{name}"))

    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    backend = next((r[0].get("backend") for r in results.values() if "backend" in r[0]), "-")
    print(f"keras back end {backend}; base {args.base_filters}, depth {args.depth}; medians of "
          f"{args.rounds} rounds x {args.repeats} calls")
    print(f"{'model':10} {'window':15} {'flips':5} {'who':13} {'windows':>7} {'GFLOP':>7} "
          f"{'segment_case s':>14} {'predict s':>9} {'GFLOP/s':>8} {'best ref / keras':>16}")
    for (name, patch, mirror, who), runs in results.items():
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0] if k != "backend"}
        refs = [results[(name, patch, mirror, w)] for w in ("reference", "reference-cl")
                if (name, patch, mirror, w) in results]
        ratio = "-"
        if who == "keras" and refs:
            ratio = f"{np.median([min(r[i]['predict_case'] for r in refs) / k['predict_case'] for i, k in enumerate(runs)]):.2f}"
        seg = f"{med['segment_case']:.2f}" if "segment_case" in med else "-"
        print(f"{name:10} {str(patch):15} {'8' if mirror else 'no':5} {who:13} {int(med['windows']):7d} "
              f"{med['gflop']:7.1f} {seg:>14} {med['predict_case']:9.2f} "
              f"{med['gflop'] / med['predict_case']:8.1f} {ratio:>16}")

    from brats_unet.data.synthetic import generate_case
    from brats_unet.evaluation.metrics import region_metrics

    case = generate_case(seed=1, index=1)
    pred = np.roll(case.label, 2, axis=0)  # every region non-empty
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        region_metrics(pred, case.label, case.pixdim)
        times.append(time.perf_counter() - start)
    print(f"region_metrics (Dice, HD95, sensitivity, specificity; WT, TC, ET): "
          f"{np.median(times):.3f} s per case")


if __name__ == "__main__":
    main()
