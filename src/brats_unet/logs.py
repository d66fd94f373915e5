"""Logging for the workflow's jobs: one log file per job."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def job_log(path: str | os.PathLike, name: str = "brats_unet") -> Iterator[logging.Logger]:
    """Send the package's log records to ``path``; an uncaught error is logged before it propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logger = logging.getLogger(name)
    try:
        yield logger
    except BaseException:
        logger.exception("job failed")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
