"""The models, loss, loaders and training on Keras' other back ends: PyTorch, and JAX (XLA).

Keras picks its back end once per process, so each back end reruns those tests in a fresh
one. Each back end is a class of its own, so that pytest-xdist's two workers (pyproject's
``--dist loadscope``) take one each.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

TESTS = Path(__file__).parent
COMMON = ["models/test_unets.py", "training/test_losses.py",
          # The other loader tests are numpy only.
          "training/test_loaders.py::test_keras_fit_with_sync_epoch"]


def _rerun_on(backend: str, files: list[str], deselect: str | None = None) -> None:
    if keras.backend.backend() == backend:
        pytest.skip(f"already on the {backend} back end")
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        # -n 0: in this one process, not in pyproject's two xdist workers
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         *(["-k", deselect] if deselect else []), *(str(TESTS / f) for f in files)],
        env=env, cwd=TESTS.parent, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]


# Training too: a killed job resuming, and the same weights bit for bit from the same seed,
# channels first (PyTorch's auto layout) or last. The 3D toy-learning runs are left out (on
# JAX over a minute each on 2 CPUs, most of it compiling); the 2D one and every other test run.
TRAINING = ["training/test_train.py"]
NOT_3D_LEARNING = "not (test_model_learns_toy_regions and 3d)"


class TestTorch:
    def test_models_losses_loaders_and_training(self):
        _rerun_on("torch", [*COMMON, *TRAINING], deselect=NOT_3D_LEARNING)


class TestJax:
    def test_models_losses_loaders_and_training(self):
        _rerun_on("jax", [*COMMON, *TRAINING], deselect=NOT_3D_LEARNING)
