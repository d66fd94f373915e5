"""Metrics seconds per full case, and HD95 against MedPy's and MONAI's implementations.

One synthetic BraTS-size case (240 x 240 x 155, 1 mm); the "prediction" is its
label map moved by (2, -1, 1) voxels with the enhancing rim grown by one voxel,
so every region is non-empty and the surfaces differ. Per round, interleaved:
``metrics.region_metrics`` (Dice, HD95, sensitivity, specificity for WT, TC,
ET), and HD95 of the three regions by ``metrics.hd95_mm``,
``medpy.metric.binary.hd95`` and MONAI's ``compute_hausdorff_distance(percentile=95)``.
Medians over rounds; the values are compared too.

Definitions: MedPy's HD95 is the 95th percentile of both directed
surface-distance sets pooled, the BraTS definition ours follows, so the values
must agree exactly. MONAI's is the larger of the two directed 95th
percentiles, a different quantity (never smaller), shown for speed and for
the size of the difference.

    .venv/bin/python bench/metrics_speed.py
    .venv/bin/python bench/metrics_speed.py --rounds 7

Needs the bench extra (`pip install -e .[bench]`): medpy, monai.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from brats_unet.data.synthetic import generate_case
from brats_unet.evaluation.metrics import hd95_mm, region_metrics
from brats_unet.labels import ENHANCING, REGION_LABELS, REGIONS


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # MONAI's deprecation notes
    import torch
    from medpy.metric.binary import hd95 as medpy_hd95
    from monai.metrics import compute_hausdorff_distance

    case = generate_case(seed=1, index=1)
    truth = case.label
    pred = np.roll(truth, (2, -1, 1), axis=(0, 1, 2))
    grown = ndimage.binary_dilation(pred == ENHANCING) & (pred > 0)
    pred[grown] = ENHANCING
    spacing = tuple(float(s) for s in case.pixdim)
    masks = {r: (np.isin(pred, REGION_LABELS[r]), np.isin(truth, REGION_LABELS[r])) for r in REGIONS}

    def ours():
        return [hd95_mm(p, t, spacing) for p, t in masks.values()]

    def medpy():
        return [float(medpy_hd95(p, t, voxelspacing=spacing, connectivity=1)) for p, t in masks.values()]

    def monai():
        values = []
        for p, t in masks.values():
            tp = torch.from_numpy(p)[None, None]
            tt = torch.from_numpy(t)[None, None]
            values.append(float(compute_hausdorff_distance(tp, tt, percentile=95, spacing=spacing)[0, 0]))
        return values

    funcs = {"region_metrics (all metrics, 3 regions)": lambda: region_metrics(pred, truth, spacing),
             "HD95, 3 regions: brats_unet.evaluation.metrics": ours, "HD95, 3 regions: medpy": medpy,
             "HD95, 3 regions: monai": monai}
    times: dict[str, list[float]] = {name: [] for name in funcs}
    values = {}
    for _ in range(args.rounds):
        for name, fn in funcs.items():
            seconds, values[name] = timed(fn)
            times[name].append(seconds)
    ratios = {who: np.median(np.array(times[f"HD95, 3 regions: {who}"]) /
                             np.array(times["HD95, 3 regions: brats_unet.evaluation.metrics"]))
              for who in ("medpy", "monai")}
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"case {truth.shape} at {spacing} mm, voxels per region (truth): "
          + ", ".join(f"{r} {int(t.sum())}" for r, (_, t) in masks.items())
          + f"; median of {args.rounds} rounds")
    for name, t in times.items():
        print(f"{name:42} {np.median(t):7.3f} s per case")
    print(f"medpy / ours: {ratios['medpy']:.1f}x slower; monai / ours: {ratios['monai']:.1f}x slower "
          f"(per round, median)")
    print("HD95 mm per region (WT, TC, ET):")
    for who in ("brats_unet.evaluation.metrics", "medpy", "monai"):
        print(f"  {who:20} " + ", ".join(f"{v:.4f}" for v in values[f"HD95, 3 regions: {who}"]))
    ours_v, medpy_v = values["HD95, 3 regions: brats_unet.evaluation.metrics"], values["HD95, 3 regions: medpy"]
    print(f"ours against medpy: largest difference {max(abs(a - b) for a, b in zip(ours_v, medpy_v)):.2e} mm")


if __name__ == "__main__":
    main()
