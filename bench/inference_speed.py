"""Seconds to segment one full BraTS-size case (240 x 240 x 155, 1 mm) per model, and to score it.

Untrained models of the demo's and the real-data sizes (speed does not depend
on the weights); the case is synthetic and preprocessed as the pipeline does.
Each figure is the median of --repeats calls after one warm-up call.

    .venv/bin/python bench/inference_speed.py
    KERAS_BACKEND=torch .venv/bin/python bench/inference_speed.py
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from brats_unet.inference import segment_case
from brats_unet.io import Geometry
from brats_unet.metrics import region_metrics
from brats_unet.models import build_model
from brats_unet.preprocessing import preprocess_subject
from brats_unet.synthetic import generate_case
from brats_unet.validation import LoadedSubject


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: graph building, first allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()

    case = generate_case(seed=1, index=1)
    loaded = LoadedSubject("bench", {k: v.astype(np.float32) for k, v in case.images.items()},
                           case.label, Geometry(case.label.shape, case.affine, case.pixdim))
    pre = preprocess_subject(loaded)
    print(f"back end {keras.backend.backend()}, case {case.label.shape}, crop {pre.image.shape[:3]}")
    settings = [("unet2d", None, False), ("unet3d", (32, 64, 64), False),
                ("unet3d", (64, 128, 128), False), ("resunet3d", (64, 128, 128), False),
                ("unet3d", (64, 128, 128), True)]
    labels = None
    for name, patch, mirror in settings:
        model = build_model(name, base_filters=args.base_filters, depth=args.depth)
        dims = 2 if name.endswith("2d") else 3

        def run():
            nonlocal labels
            labels, _ = segment_case(model, pre.image, pre.properties, spatial_dims=dims,
                                     patch_size=patch, overlap=0.5, mirror=mirror)

        seconds = median_seconds(run, args.repeats)
        print(f"{name:10} patch {str(patch):16} mirror {mirror!s:5}  {seconds:6.2f} s per case")
    # Scoring on the full grid: the truth against a shifted copy, so every region is non-empty.
    truth = case.label
    pred = np.roll(truth, 2, axis=0)
    seconds = median_seconds(lambda: region_metrics(pred, truth, case.pixdim), args.repeats)
    print(f"region_metrics (Dice, HD95, sensitivity, specificity; WT, TC, ET): {seconds:.3f} s per case")


if __name__ == "__main__":
    main()
