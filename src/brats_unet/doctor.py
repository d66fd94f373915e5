"""``brats-unet doctor``: what this machine gives the pipeline, the first thing to run on a new
cluster node.

It prints the CPU, whether an NVIDIA GPU is there, each installed Keras back end with the GPUs it
can compute on, and the choices a training job would make here with the given config (back end,
precision, XLA) and the CPU threads the jobs would use. Each back end is probed in a child
process: it loads its own CUDA libraries, and a crash or a hang there cannot take the report
with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brats_unet.runtime import (
    BACKENDS,
    choose_backend,
    cpu_description,
    nvidia_gpu_present,
    resolve_jit,
    resolve_precision,
)

#: What each back end is asked in its child process: its version and the GPUs it can use.
_PROBES = {
    "tensorflow": ("import tensorflow as tf; v = tf.__version__; "
                   "g = [d.name for d in tf.config.list_physical_devices('GPU')]"),
    "torch": ("import torch; v = torch.__version__; "
              "g = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]"),
    "jax": ("import jax; v = jax.__version__; "
            "g = [d.device_kind for d in jax.devices() if d.platform == 'gpu']"),
}
#: What the GPU extra installs and how, for the hint when TensorFlow misses a GPU.
GPU_SETUP = "BRATS_UNET_EXTRAS=gpu bash bin/setup (TensorFlow with its CUDA libraries)"


@dataclass(frozen=True)
class BackendProbe:
    """One back end on this machine: its version (None: not installed), the GPUs it sees, or
    why it could not be asked."""

    backend: str
    version: str | None
    gpus: tuple[str, ...] = ()
    error: str | None = None


def probe_backend(backend: str, timeout_s: float = 180.0) -> BackendProbe:
    """Import ``backend`` in a child process and list the GPUs it can compute on."""
    import importlib.util

    if importlib.util.find_spec(backend) is None:
        return BackendProbe(backend, None)
    code = (f"{_PROBES[backend]}; import json, sys; "
            "sys.stdout.write('\\n' + json.dumps({'version': v, 'gpus': g}))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return BackendProbe(backend, "unknown", error=f"no answer within {timeout_s:g} s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return BackendProbe(backend, "unknown", error=f"import failed ({last})")
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        return BackendProbe(backend, answer["version"], tuple(answer["gpus"]))
    except (IndexError, ValueError, KeyError, TypeError):
        return BackendProbe(backend, "unknown", error=f"no answer read from its output "
                                                      f"({done.stdout.strip()[-200:]!r})")


def _backend_line(probe: BackendProbe) -> str:
    if probe.version is None:
        return f"  {probe.backend}: not installed"
    if probe.error:
        return f"  {probe.backend} {probe.version}: could not be asked: {probe.error}"
    gpus = ", ".join(probe.gpus) if probe.gpus else "none"
    return f"  {probe.backend} {probe.version}: GPUs it can use: {gpus}"


def doctor_lines(*, cpu: str, nvidia_gpu: bool, probes: Mapping[str, BackendProbe],
                 config: Mapping[str, Any], cuda_visible: str | None = None) -> list[str]:
    """The report, one line each, from what was found (``probes``, per back end) and the
    config; lines starting with ``WARNING`` say what to fix."""
    lines = [f"CPU: {cpu}",
             f"NVIDIA GPU: {'present' if nvidia_gpu else 'none'}"
             + (f" (CUDA_VISIBLE_DEVICES={cuda_visible})" if cuda_visible is not None else ""),
             "Keras back ends:"]
    lines += [_backend_line(probes[b]) for b in BACKENDS if b in probes]
    sees = {b: (bool(p.gpus) if p.version is not None and not p.error else None)
            for b, p in probes.items()}
    choice = choose_backend(config["backend"], nvidia_gpu=nvidia_gpu, sees_gpu=sees)
    chosen = probes.get(choice.backend)
    n_gpus = len(chosen.gpus) if chosen is not None else 0
    training = config["training"]
    xla = resolve_jit(training["jit_compile"], n_gpus, choice.backend)
    lines += [
        f"A training job here would run on: {choice.backend} ({choice.reason})",
        f"  on {n_gpus} GPU{'s' if n_gpus != 1 else ''}" if n_gpus else "  on the CPU",
        f"  precision: {resolve_precision(training['precision'], n_gpus)} "
        f"(config: {training['precision']})",
        f"  XLA (jit_compile): {'on' if xla else 'off'} (config: {training['jit_compile']})",
        f"CPU threads: a training job {config['train_resources']['threads']}, a prediction job "
        f"{config['inference_resources']['threads']} (config; Snakemake lowers them to --cores)",
    ]
    if nvidia_gpu and n_gpus == 0:
        lines.append(f"WARNING: a GPU is there but {choice.backend} sees none of it: the job "
                     f"would train on the CPU. Install {GPU_SETUP}.")
    elif nvidia_gpu and sees.get("tensorflow") is False:
        lines.append(f"NOTE: TensorFlow sees none of the GPUs ({choice.backend} does); for "
                     f"TensorFlow install {GPU_SETUP}.")
    if chosen is None or chosen.version is None:
        extras = "" if choice.backend == "tensorflow" else f"BRATS_UNET_EXTRAS={choice.backend} "
        lines.append(f"WARNING: {choice.backend} is not installed here: install it with "
                     f"{extras}bash bin/setup.")
    return lines


def run_doctor(config: Mapping[str, Any]) -> list[str]:
    """:func:`doctor_lines` for this machine (it loads each installed back end once)."""
    return doctor_lines(cpu=cpu_description(), nvidia_gpu=nvidia_gpu_present(),
                        probes={b: probe_backend(b) for b in BACKENDS}, config=config,
                        cuda_visible=os.environ.get("CUDA_VISIBLE_DEVICES"))
