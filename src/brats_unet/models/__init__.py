"""Stage 3, the networks (Keras only, so every Keras back end runs them).

- ``unets``: the 2D, 3D and residual 3D U-Nets, one class, and the variant table.
- ``windows``: how a model sees a whole case (3D sliding windows, 2D slices, mirroring),
  for validation and prediction alike.
"""
