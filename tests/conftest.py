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


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: opt-in with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
