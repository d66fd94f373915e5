"""The report's HTML: escaping, number cells, tables and figures as base64 PNGs in one page."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left;vertical-align:top}
th{background:#eee}tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444}pre{margin:0;white-space:pre-wrap;font-size:0.85em}
"""


def escape(value: Any) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value))


def number(value: Any, digits: int = 3) -> str:
    """A number cell with ``digits`` decimals; a dash for None, NaN or infinity."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return escape(value) if value is not None else "–"
    return "–" if not np.isfinite(x) else f"{x:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; ``rows`` hold already escaped / formatted cell HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png_base64(fig: Figure, path: Path) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = buffer.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


def figure(name: str, fig: Figure, caption: str, figures_dir: Path) -> str:
    """Save ``fig`` as ``<figures_dir>/<name>.png``, close it, and return it as an HTML figure
    with the PNG inline (a data URI)."""
    encoded = _png_base64(fig, figures_dir / f"{name}.png")
    return (f'<figure id="{escape(name)}"><img alt="{escape(name)}" '
            f'src="data:image/png;base64,{encoded}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def document(title: str, body: Sequence[str]) -> str:
    """The whole page: head with inline CSS, ``body`` parts in order, no scripts, no links."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *body,
        "</body></html>",
    ])
