"""How many CPU threads a job's back end may use.

TensorFlow and PyTorch size their compute pools from the CPUs the process may run on. Where
nothing pins a job to its share (a local Snakemake run; a SLURM cluster without CPU binding,
``TaskPlugin=task/none`` and no cgroup core limits), that is every core of the machine: two
local jobs would each take all of them, and a job given 4 CPUs on a 64-core node would run 64
threads. The workflow's ``threads:`` is the job's share; :func:`limit_threads` holds the back
end to it. Keras' loader workers (``training.loader_workers``) are threads of their own.
"""

from __future__ import annotations

import os

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
