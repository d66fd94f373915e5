"""Logging for the workflow's jobs: one log file per job, holding everything the job writes.

Inside :func:`job_log` the process's standard output and error (the file descriptors, so the
back ends' native start-up messages too: TensorFlow's CPU-feature and CUDA lines, Keras'
per-epoch lines) go into the job's log, not the terminal; ``BRATS_UNET_VERBOSE=1`` keeps them on
the terminal as well as the package's own records in the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

#: Set to 1 to see every job's own output on the terminal.
VERBOSE_VARIABLE = "BRATS_UNET_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def output_into(path: str | os.PathLike) -> Iterator[None]:
    """Send file descriptors 1 and 2 to the end of ``path`` for the block, then give them back."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saved = [os.dup(1), os.dup(2)]
    reconfigure = getattr(sys.stdout, "reconfigure", None)  # absent where stdout is replaced
    buffering = getattr(sys.stdout, "line_buffering", False)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        # a line at a time, so a job killed (out of memory, a cluster's limit) loses none
        if reconfigure:
            reconfigure(line_buffering=True)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        if reconfigure:
            reconfigure(line_buffering=buffering)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


@contextlib.contextmanager
def job_log(path: str | os.PathLike, name: str = "brats_unet") -> Iterator[logging.Logger]:
    """Send the package's log records, and (unless :func:`verbose`) the process's own output, to
    ``path``; an uncaught error is logged before it propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")  # a fresh log; every writer below appends (O_APPEND), none overwrites
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logger = logging.getLogger(name)
    output = contextlib.nullcontext() if verbose() else output_into(path)
    try:
        with output:
            try:
                yield logger
            except SystemExit as done:
                if done.code not in (None, 0):
                    logger.exception("job failed")
                raise
            except BaseException:
                logger.exception("job failed")
                raise
    finally:
        root.removeHandler(handler)
        handler.close()
