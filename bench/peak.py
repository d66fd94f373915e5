"""Practical float32 peak of this machine: GFLOP/s of a large matrix product.

``n x n`` times ``n x n`` is ``2 n**3`` FLOPs; the figure is the median of
``--repeats`` products after one warm-up, each library in its own process so
their thread pools do not compete, the libraries interleaved round by round.

    .venv/bin/python bench/peak.py
    .venv/bin/python bench/peak.py --n 4096 --repeats 5 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

WORKER = r"""
import json, sys
library, n, repeats, bench = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, bench)
from timing import median_seconds
if library == "numpy":
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    product = lambda: a @ b
elif library == "torch":
    import torch
    a, b = torch.rand(n, n), torch.rand(n, n)
    product = lambda: a @ b
else:
    import tensorflow as tf
    a, b = tf.random.uniform((n, n)), tf.random.uniform((n, n))
    product = lambda: tf.linalg.matmul(a, b).numpy()
print(json.dumps({"library": library, "gflops": 2 * n**3 / median_seconds(product, repeats) / 1e9}))
"""

LIBRARIES = ("numpy", "torch", "tensorflow")


def measure(library: str, n: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of one library's float32 ``n x n`` product (median of ``repeats``), in a fresh process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", WORKER, library, str(n), str(repeats),
                           os.path.dirname(os.path.abspath(__file__))],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])["gflops"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    args = parser.parse_args()
    results: dict[str, list[float]] = {lib: [] for lib in args.libraries}
    for _ in range(args.rounds):
        for lib in args.libraries:
            results[lib].append(measure(lib, args.n, args.repeats))
    print(f"float32 {args.n} x {args.n} matrix product, {os.cpu_count()} CPUs visible; "
          f"median of {args.rounds} rounds x {args.repeats} products")
    for lib, values in results.items():
        print(f"{lib:11} {np.median(values):8.1f} GFLOP/s   (rounds: "
              f"{', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
