"""The browser check itself, on a page whose content is known."""

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from browser import find_chromium, ink_fraction, rendered_dom, screenshot  # noqa: E402

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")


def _page(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "page.html"
    path.write_text(f"<!doctype html><html><body style='background:#fff'>{body}</body></html>")
    return path


def test_a_blank_page_has_no_ink_and_a_figure_has(tmp_path: Path):
    blank = screenshot(_page(tmp_path, ""), tmp_path / "blank.png", width=400, height=300)
    assert ink_fraction(blank) == 0.0
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(["a", "b"], [1, 2], color=["tab:red", "tab:blue"])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    page = _page(tmp_path, f"<table><tr><td>x</td></tr></table><img src='data:image/png;base64,{data}'>")
    shot = screenshot(page, tmp_path / "shot.png", width=600, height=500)
    assert ink_fraction(shot) > 0.05
    dom = rendered_dom(page)
    assert "<table>" in dom and "data:image/png;base64," in dom
