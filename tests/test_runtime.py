"""Thread limits, each in a fresh interpreter: the back ends fix their pools once per process."""

import os
import subprocess
import sys

import pytest

# what scripts/train.py and scripts/predict.py import before they call limit_threads
LIMIT = """
import sys
import brats_unet.segment, brats_unet.training
from brats_unet.runtime import cpu_threads, limit_threads
limit_threads(int(sys.argv[1]), sys.argv[2])
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if len(args) > 1:
        env["KERAS_BACKEND"] = args[1]
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_tensorflow_pools_get_the_jobs_threads():
    done = _run(LIMIT + """
import os, tensorflow as tf
tf.constant(1.0) + 1.0  # the first operation makes the context with the limits
t = tf.config.threading
print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads(),
      os.environ["OMP_NUM_THREADS"], cpu_threads())
limit_threads(3, "tensorflow")  # the same limit again: nothing to do
""", "3", "tensorflow")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "3", "3", "3"]


def test_tensorflow_keeps_two_scheduling_threads_for_one_computing():
    done = _run(LIMIT + """
import tensorflow as tf
t = tf.config.threading
print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())
""", "1", "tensorflow")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "2"]


def test_tensorflow_already_running_is_a_clear_error():
    done = _run("""
import tensorflow as tf
tf.constant(1.0) + 1.0
from brats_unet.runtime import limit_threads
limit_threads(1, "tensorflow")
""")
    assert done.returncode != 0
    assert "cannot limit TensorFlow to 1 threads: limit_threads must run before" in done.stderr


def test_torch_pools_get_the_jobs_threads():
    pytest.importorskip("torch")
    done = _run(LIMIT + """
import torch
print(torch.get_num_threads(), torch.get_num_interop_threads(), cpu_threads())
""", "3", "torch")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "3", "3"]


def test_fewer_than_one_thread_is_refused():
    from brats_unet.runtime import limit_threads

    with pytest.raises(ValueError, match="at least 1, got 0"):
        limit_threads(0, "tensorflow")
