"""Shared fixtures."""

import os
from pathlib import Path

import pytest

# Keras' back end from the environment, never from a ~/.keras/keras.json left on the machine
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root
