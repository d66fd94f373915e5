"""Preprocessing seconds per full case against the bare decode of its five NIfTI files.

One synthetic BraTS-size case (240 x 240 x 155, 1 mm, gzip-compressed NIfTI,
as ``brats-unet synth`` writes it). Per round, interleaved: the bare decode
(``nibabel.load(...).dataobj`` read into an array, the five files, nothing
else) and ``preprocess_to_folder`` (validation, decode, brain mask, crop,
z-score, writing ``image.npy``, ``label.npy`` and the JSON files), split into
its stages. Medians over rounds; the ratio is taken per round.

    .venv/bin/python bench/preprocess_speed.py
    .venv/bin/python bench/preprocess_speed.py --rounds 7
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_unet.data.subjects import discover_subjects
from brats_unet.data.synthetic import generate_dataset
from brats_unet.data.validation import load_subject
from brats_unet.preprocessing.cases import preprocess_subject, preprocess_to_folder, write_case


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    generate_dataset(root / "data", n=1, seed=3)
    files = discover_subjects(root / "data").subjects[0]
    paths = sorted((root / "data" / files.subject).glob("*.nii.gz"))
    sizes = {p.name: p.stat().st_size for p in paths}

    def decode():
        return [np.asanyarray(nib.load(p).dataobj) for p in paths]

    dtypes = {a.dtype.name for a in decode()}  # also warms the page cache
    rows: dict[str, list[float]] = {}
    for i in range(args.rounds):
        out = root / f"pre{i}"
        rows.setdefault("decode", []).append(timed(decode))
        rows.setdefault("preprocess_to_folder", []).append(
            timed(lambda: preprocess_to_folder(files, out)))
        shutil.rmtree(out)
        # The same job in stages.
        start = time.perf_counter()
        loaded = load_subject(files)
        rows.setdefault("  load_subject (validate + decode)", []).append(time.perf_counter() - start)
        start = time.perf_counter()
        case = preprocess_subject(loaded)
        rows.setdefault("  preprocess_subject (mask, crop, z-score)", []).append(time.perf_counter() - start)
        rows.setdefault("  write_case (npy + json)", []).append(timed(lambda: write_case(case, out)))
        shutil.rmtree(out)
    ratio = np.median(np.array(rows["preprocess_to_folder"]) / np.array(rows["decode"]))
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"one synthetic case 240 x 240 x 155, 5 files .nii.gz ({sum(sizes.values()) / 1e6:.1f} MB "
          f"compressed, voxel types {sorted(dtypes)}); median of {args.rounds} rounds")
    for name, values in rows.items():
        print(f"{name:45} {np.median(values):7.3f} s")
    print(f"preprocess_to_folder / decode (per round, median): {ratio:.2f}x")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
