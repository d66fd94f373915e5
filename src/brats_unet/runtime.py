"""How many CPU threads a job's back end may use.

TensorFlow and PyTorch start one thread per core of the machine, however many cores the
scheduler gave the job: a SLURM job with ``--cpus-per-task=2`` on a 64-core node would run 64
threads on 2 CPUs, and two local jobs would each take every core. The workflow's ``threads:``
is the job's share; :func:`limit_threads` holds the back end to it.
"""

from __future__ import annotations

import os

#: Thread pools of the numerical libraries, read when each library loads.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(n: int, backend: str | None = None) -> None:
    """Use at most ``n`` CPU threads for computation in this process.

    Call it before the first tensor operation (TensorFlow fixes its pools then). ``backend``:
    the Keras back end, by default ``KERAS_BACKEND`` (or Keras' own default, TensorFlow).

    Raises:
        ValueError: ``n`` below 1.
        RuntimeError: TensorFlow already runs with other pool sizes.
    """
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    for variable in THREAD_VARIABLES:  # for libraries not loaded yet
        os.environ[variable] = str(n)
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        threading = tf.config.threading
        if (threading.get_intra_op_parallelism_threads(),
                threading.get_inter_op_parallelism_threads()) == (n, n):
            return
        try:
            threading.set_intra_op_parallelism_threads(n)
            threading.set_inter_op_parallelism_threads(n)
        except RuntimeError as err:  # TensorFlow's context already made
            raise RuntimeError(f"cannot limit TensorFlow to {n} threads: limit_threads must "
                               f"run before the first TensorFlow operation ({err})") from None
    elif backend == "torch":
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # settable once, before any parallel work: the compute pool counts
            pass
