"""Looking at the HTML report as a person would: headless Chromium, a screenshot, the DOM."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

#: No network, no first-run work: the machines this runs on reach no outside host.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def screenshot(html_path: str | os.PathLike, png_path: str | os.PathLike, *,
               width: int = 1400, height: int = 3000, timeout: float = 120) -> Path:
    """Render ``html_path`` headless and save a ``width`` x ``height`` screenshot."""
    png_path = Path(png_path).resolve()
    result = _run([f"--screenshot={png_path}", f"--window-size={width},{height}",
                   Path(html_path).resolve().as_uri()], timeout)
    if not png_path.exists():
        raise RuntimeError(f"chromium wrote no screenshot: {result.stderr[-2000:]}")
    return png_path


def rendered_dom(html_path: str | os.PathLike, *, timeout: float = 120) -> str:
    """The page's DOM after Chromium has loaded it."""
    result = _run(["--dump-dom", Path(html_path).resolve().as_uri()], timeout)
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed: {result.stderr[-2000:]}")
    return result.stdout


def ink_fraction(png_path: str | os.PathLike, *, background_tolerance: float = 0.02) -> float:
    """Share of pixels that differ from the most common (background) colour: 0 for a blank page."""
    from matplotlib.image import imread  # Pillow through matplotlib, already a dependency

    pixels = imread(png_path)[..., :3].reshape(-1, 3)
    colours, counts = np.unique(np.round(pixels, 2), axis=0, return_counts=True)
    background = colours[np.argmax(counts)]
    differs = np.abs(pixels - background).max(axis=1) > background_tolerance
    return float(differs.mean())
