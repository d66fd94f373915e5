"""Reading a training job's resumable state while it runs (shared by the kill and requeue tests)."""

from __future__ import annotations

import json
from pathlib import Path


def backed_up_epoch(metadata: Path) -> int | None:
    """The epoch of a complete backup record (Keras writes it in place: it may be half there)."""
    try:
        return json.loads(metadata.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return None
