"""The back end and how it runs: thread limits (each in a fresh interpreter: the back ends fix
their pools once per process), the back end's choice, precision and XLA."""

import os
import subprocess
import sys

import pytest

# what scripts/train.py and scripts/predict.py import before they call limit_threads
LIMIT = """
import sys
import brats_unet.segment, brats_unet.training.train
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


# A 3D convolution's training step in TensorFlow, after the imports of a job script.
CONV_STEP = """
import brats_unet.training.train  # noqa: F401  (the package first, as every job script)
import numpy as np, keras
model = keras.Sequential([keras.Input((8, 8, 8, 4)), keras.layers.Conv3D(8, 3, padding="same")])
model.compile(optimizer="adam", loss="mse")
model.train_on_batch(np.ones((1, 8, 8, 8, 4), "float32"), np.ones((1, 8, 8, 8, 8), "float32"))
"""


def _primitives(onednn: str | None) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow",
           "ONEDNN_VERBOSE": "1"}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    done = subprocess.run([sys.executable, "-c", CONV_STEP], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to leave one out")
def test_jax_runs_on_as_many_cpus_as_the_job_has_threads():
    pytest.importorskip("jax")
    done = _run(LIMIT + """
import os, jax.numpy as jnp
print(float(jnp.ones(3).sum()), len(os.sched_getaffinity(0)), cpu_threads())
""", "1", "jax")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3.0", "1", "1"]


def test_tensorflow_convolutions_run_on_onednn_whatever_the_cpu():
    # TensorFlow's own default keeps oneDNN off on CPUs without AVX512_VNNI/BF16 or AMX; the
    # package turns it on, so the convolution and its kernel gradient are oneDNN primitives
    # (the first layer needs no input gradient).
    convolutions = {line.split(",")[7] for line in _primitives(None).splitlines()
                    if ",exec," in line and line.split(",")[5] == "convolution"}
    assert {"forward_training", "backward_weights"} <= convolutions, convolutions


def test_a_users_tf_enable_onednn_opts_wins():
    executed = [line for line in _primitives("0").splitlines() if ",exec," in line]
    assert not any(",convolution," in line for line in executed)


@pytest.mark.parametrize(("setting", "gpu", "sees", "expected"), [
    ("auto", False, {}, "tensorflow"),
    ("auto", True, {"tensorflow": True, "torch": True}, "tensorflow"),
    ("auto", True, {"tensorflow": False, "torch": True}, "torch"),
    ("auto", True, {"tensorflow": False, "torch": None}, "tensorflow"),
    ("auto", True, {"tensorflow": False, "torch": None, "jax": True}, "jax"),
    ("auto", True, {"tensorflow": False, "torch": True, "jax": True}, "torch"),
    ("torch", False, {}, "torch"),
    ("jax", False, {}, "jax"),
    ("tensorflow", True, {"tensorflow": False, "torch": True}, "tensorflow"),
])
def test_auto_takes_the_measured_fastest_unless_only_pytorch_sees_the_gpu(setting, gpu, sees,
                                                                           expected):
    from brats_unet.runtime import choose_backend

    choice = choose_backend(setting, nvidia_gpu=gpu, sees_gpu=sees)
    assert choice.backend == expected
    assert choice.reason.startswith("auto: " if setting == "auto" else "set in the config")


def test_the_cpu_choice_states_its_evidence_and_no_gpu_one_says_it_trains_on_the_cpu():
    from brats_unet.runtime import choose_backend

    assert "AVX2" in choose_backend("auto", nvidia_gpu=False, sees_gpu={}).reason
    stuck = choose_backend("auto", nvidia_gpu=True, sees_gpu={"tensorflow": False, "torch": False})
    assert "training on the CPU" in stuck.reason


def test_an_unknown_backend_is_refused():
    from brats_unet.runtime import choose_backend

    with pytest.raises(ValueError, match="auto or one of"):
        choose_backend("mxnet", nvidia_gpu=False, sees_gpu={})


def test_resolve_backend_sets_keras_backend_without_loading_a_framework_on_a_cpu(monkeypatch):
    from brats_unet import runtime

    monkeypatch.setattr(runtime, "nvidia_gpu_present", lambda: False)
    monkeypatch.setattr(runtime, "_sees_gpu", lambda backend: pytest.fail("loaded " + backend))
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert runtime.resolve_backend("auto").backend == "tensorflow"
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_hidden_gpus_count_as_none(monkeypatch):
    from brats_unet.runtime import nvidia_gpu_present

    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert not nvidia_gpu_present()


def test_cpu_description_names_the_model_and_the_vector_flags():
    from brats_unet.runtime import VECTOR_FLAGS, cpu_description

    text = cpu_description()
    flags = open("/proc/cpuinfo").read().split()
    assert f"{len(os.sched_getaffinity(0))} CPUs usable" in text
    assert all((f in text.split()) == (f in flags) for f in VECTOR_FLAGS)


def test_precision_follows_the_hardware_unless_forced():
    from brats_unet.runtime import resolve_precision

    assert resolve_precision("auto", n_gpus=0) == "float32"
    assert resolve_precision("auto", n_gpus=1) == "mixed_float16"
    assert resolve_precision("mixed_bfloat16", n_gpus=0) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("half", n_gpus=0)


def test_xla_is_off_on_cpu_by_default():
    from brats_unet.runtime import resolve_jit

    assert resolve_jit("auto", n_gpus=0) is False
    assert resolve_jit("auto", n_gpus=2) is True
    assert resolve_jit("auto", n_gpus=1, backend="torch") is False
    assert resolve_jit("auto", n_gpus=0, backend="jax") is True  # JAX computes through XLA
    assert resolve_jit(False, n_gpus=0, backend="jax") is False
    assert resolve_jit(True, n_gpus=0) is True
