"""Which Keras back end a job runs on, and how it runs there: CPU threads, GPUs, precision,
XLA, deterministic kernels, several GPUs. Every choice that depends on the back end is made
here; the models, losses and loaders use ``keras.ops`` only. Keras itself is imported inside
the functions that need it, so :func:`resolve_backend` can run before it loads.

TensorFlow, PyTorch and JAX size their compute pools from the CPUs the process may run on. Where
nothing pins a job to its share (a local Snakemake run; a SLURM cluster without CPU binding,
``TaskPlugin=task/none`` and no cgroup core limits), that is every core of the machine: two
local jobs would each take all of them, and a job given 4 CPUs on a 64-core node would run 64
threads. The workflow's ``threads:`` is the job's share; :func:`limit_threads` holds the back
end to it. Keras' loader workers (``training.loader_workers``) are threads of their own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

#: The Keras back ends the pipeline trains and predicts with; ``auto`` picks one per job.
BACKENDS = ("tensorflow", "torch", "jax")
#: Keras dtype policies a job may train with; ``auto`` picks one from the hardware.
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
#: CPU flags that decide which kernels the back ends run (oneDNN's ISA, TensorFlow's defaults).
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
#: Why ``auto`` takes TensorFlow on a CPU: what the benchmarks measured (BENCHMARKS.md).
CPU_EVIDENCE = ("on a CPU, Keras on TensorFlow (oneDNN kernels on) trained every model fastest "
                "of the Keras back ends on each CPU kind measured (AMD EPYC Zen 3, AVX2; "
                "Intel Xeon, AVX-512)")


@dataclass(frozen=True)
class BackendChoice:
    """The back end a job runs on and why, as recorded in its summary."""

    backend: str
    reason: str


def choose_backend(setting: str, *, nvidia_gpu: bool,
                   sees_gpu: dict[str, bool | None]) -> BackendChoice:
    """The back end for ``setting`` (``auto`` or one of :data:`BACKENDS`) on this machine.

    ``nvidia_gpu``: the machine has an NVIDIA GPU this process may use. ``sees_gpu``: per
    back end, whether it can compute on it (None: not installed). ``auto`` takes TensorFlow
    (:data:`CPU_EVIDENCE`; on a GPU, XLA and mixed precision), unless a GPU is there that
    TensorFlow cannot use: TensorFlow without its CUDA libraries silently trains on the CPU.
    Then PyTorch, else JAX, whichever sees the GPU (no GPU figure ranks them yet:
    BENCHMARKS.md).
    """
    if setting in BACKENDS:
        return BackendChoice(setting, "set in the config")
    if setting != "auto":
        raise ValueError(f"backend must be auto or one of {BACKENDS}, got {setting!r}")
    if not nvidia_gpu:
        return BackendChoice("tensorflow", f"auto: no GPU; {CPU_EVIDENCE}")
    if sees_gpu.get("tensorflow"):
        return BackendChoice("tensorflow", "auto: TensorFlow sees the GPU")
    for backend, name in (("torch", "PyTorch"), ("jax", "JAX")):
        if sees_gpu.get(backend):
            return BackendChoice(backend, "auto: TensorFlow sees no GPU (no CUDA libraries it "
                                          f"can load), {name} does")
    return BackendChoice("tensorflow", "auto: a GPU is there but no installed back end can use "
                                       "it; training on the CPU")


def nvidia_gpu_present() -> bool:
    """An NVIDIA GPU is installed and ``CUDA_VISIBLE_DEVICES`` does not hide every GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def _sees_gpu(backend: str) -> bool | None:
    if importlib.util.find_spec(backend) is None:
        return None
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    import torch

    return torch.cuda.is_available()


def resolve_backend(setting: str) -> BackendChoice:
    """Choose the back end (:func:`choose_backend`) and set ``KERAS_BACKEND`` to it.

    Call it before Keras is imported. Only where a GPU is present does it load the back ends
    to ask them (a few seconds); on a CPU it decides without loading anything.
    """
    gpu = nvidia_gpu_present()
    sees = {b: _sees_gpu(b) for b in BACKENDS} if gpu else {}
    choice = choose_backend(setting, nvidia_gpu=gpu, sees_gpu=sees)
    os.environ["KERAS_BACKEND"] = choice.backend
    return choice


def cpu_description() -> str:
    """The CPU's model name, CPU count and vector flags, e.g. for a figure or a model summary."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    model = next((line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("model name")), "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    shown = " ".join(f for f in VECTOR_FLAGS if f in flags) or "none of " + "/".join(VECTOR_FLAGS)
    return f"{model}, {len(os.sched_getaffinity(0))} CPUs usable, {shown}"


#: Thread pools of numerical libraries, read when each library loads (numpy is loaded before
#: :func:`limit_threads` runs: these reach libraries loaded later and child processes).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(n: int, backend: str | None = None) -> None:
    """Use at most ``n`` CPU threads for tensor computation in this process.

    Call it before the first tensor operation (TensorFlow fixes its pools then). ``backend``:
    the Keras back end, by default ``KERAS_BACKEND`` (or Keras' own default, TensorFlow).
    TensorFlow's inter-op pool, which schedules independent operations rather than computing,
    keeps at least 2 threads: with 1, some graphs wait on themselves.

    Raises:
        ValueError: ``n`` below 1.
        RuntimeError: TensorFlow already runs with other pool sizes.
    """
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(n)
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        threading = tf.config.threading
        wanted = (n, max(2, n))
        if (threading.get_intra_op_parallelism_threads(),
                threading.get_inter_op_parallelism_threads()) == wanted:
            return
        try:
            threading.set_intra_op_parallelism_threads(wanted[0])
            threading.set_inter_op_parallelism_threads(wanted[1])
        except RuntimeError as err:  # TensorFlow's context already made
            raise RuntimeError(f"cannot limit TensorFlow to {n} threads: limit_threads must "
                               f"run before the first TensorFlow operation ({err})") from None
    elif backend == "torch":
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(max(2, n))
        except RuntimeError:  # settable once, before any parallel work: the compute pool counts
            pass
    elif backend == "jax":
        _pin_to_cpus(n)


def _pin_to_cpus(n: int) -> None:
    """Run this process on ``n`` of the CPUs it may use (all of them if fewer).

    XLA's CPU client has no thread-count setting: it sizes its pool from the process's CPU
    affinity when the JAX back end starts (jax-ml/jax#1539), so this must run before the
    first JAX operation. Which ``n`` depends on the process id, so that jobs started side by
    side mostly land on different CPUs.
    """
    usable = sorted(os.sched_getaffinity(0))
    if n >= len(usable):
        return
    start = os.getpid() % len(usable)
    os.sched_setaffinity(0, [usable[(start + i) % len(usable)] for i in range(n)])


def cpu_threads(backend: str | None = None) -> int:
    """The CPU threads the back end computes with in this process (its intra-op pool)."""
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        configured = tf.config.threading.get_intra_op_parallelism_threads()
        if configured:
            return configured
    elif backend == "torch":
        import torch

        return torch.get_num_threads()
    return len(os.sched_getaffinity(0))  # TensorFlow's default (0): one per usable CPU


def gpu_count() -> int:
    """GPUs the current Keras back end can use."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    if backend == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.devices())
    return 0


def resolve_precision(precision: str, n_gpus: int) -> str:
    """``auto``: mixed_float16 on a GPU, float32 on a CPU (half precision is slower there)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "mixed_float16" if n_gpus > 0 else "float32"
    return precision


def resolve_jit(jit_compile: str | bool, n_gpus: int, backend: str = "tensorflow") -> bool:
    """``auto``: XLA on a GPU with TensorFlow, always with JAX.

    Measured: XLA slows TensorFlow's 3D training and inference on a CPU; on the torch
    back end ``jit_compile`` means ``torch.compile``, which Keras marks experimental. JAX
    without ``jit`` runs every operation on its own from Python: XLA is how it computes.
    """
    if jit_compile == "auto":
        return backend == "jax" or (n_gpus > 0 and backend == "tensorflow")
    if isinstance(jit_compile, bool):
        return jit_compile
    raise ValueError(f"jit_compile must be auto, true or false, got {jit_compile!r}")


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and the back end, and ask for deterministic kernels."""
    import keras

    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
    elif backend == "jax":  # XLA on a CPU is deterministic; on a GPU, read when JAX starts it
        flag = "--xla_gpu_deterministic_ops=true"
        if flag not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def replica_scope(n_gpus: int) -> contextlib.AbstractContextManager:
    """Where to build and compile a model: a mirrored strategy's scope over several GPUs on
    the TensorFlow back end, else a scope that changes nothing."""
    import keras

    if n_gpus > 1 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()
