"""Stage 7, the report (no Keras).

- ``report``: figures, overlays, the data-driven discussion and one self-contained HTML file.
"""
