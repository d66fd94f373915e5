"""Shared fixtures."""

import os
from pathlib import Path

import pytest

# Keras' back end from the environment, never from a ~/.keras/keras.json left on the machine
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The package before any test module loads TensorFlow: it turns on TensorFlow's oneDNN kernels
import brats_unet  # noqa: E402, F401


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (each takes several minutes)")


# Modules by their time in CI (pytest --durations, AVX2 EPYC, 2 cores), the heaviest first. With
# two pytest-xdist workers (pyproject's addopts) each module runs whole on one worker, its module
# fixtures once, and a worker takes the next module when it is nearly done: heaviest first, the
# two finish at about the same time. Modules not named here follow in their usual order.
HEAVIEST_FIRST = ("test_workflow", "test_reliability", "test_backends", "test_slurm", "test_dvc",
                  "test_unets",
                  "test_dataset_layouts", "test_train", "test_runtime", "test_bad_inputs")


def _cost_rank(item) -> int:
    module = item.module.__name__ if item.module else ""
    return HEAVIEST_FIRST.index(module) if module in HEAVIEST_FIRST else len(HEAVIEST_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_cost_rank)  # stable: a module's tests keep their order
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: opt-in with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
