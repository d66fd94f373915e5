"""Timing helpers shared by the benchmark workers (bench/ is on their sys.path)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def loader_throughput(dataset, n_batches: int) -> float:
    """Samples per second of ``dataset[i]`` for ``i < n_batches``, read in this thread.

    Measures one worker's rate (Keras' ``workers`` multiply it, up to the
    core count); indices wrap around ``len(dataset)``.
    """
    n_samples = 0
    start = time.perf_counter()
    for i in range(n_batches):
        x, _ = dataset[i % len(dataset)]
        n_samples += x.shape[0]
    return n_samples / (time.perf_counter() - start)


def run_worker(code: str, payload: dict, env: dict, label: str) -> dict:
    """Run ``code`` in a fresh Python with ``payload`` (JSON) as its argument; the JSON object on
    its last line of output. Exits naming ``label`` and the worker's stderr if it fails."""
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(payload)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{label} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_dag(workdir: Path, configfiles, cores: int = 2) -> float:
    """Wall seconds of the whole DAG (this repository's Snakefile) in ``workdir`` with
    ``configfiles`` laid over the default config; exits with Snakemake's output if it fails."""
    repo = Path(__file__).resolve().parent.parent
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "-s", str(repo / "Snakefile"), "--directory", str(workdir),
               "--cores", str(cores), "--configfile", *map(str, configfiles)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return time.perf_counter() - start
