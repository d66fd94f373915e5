"""Stage 5, prediction.

- ``predict``: whole-case prediction (3D sliding windows, 2D slice by slice, mirroring),
  thresholds to labels, and the segmentation written in the input's geometry.
"""
