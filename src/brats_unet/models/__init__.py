"""Stage 3, the networks (Keras only, so every Keras back end runs them).

- ``unets``: the 2D, 3D and residual 3D U-Nets, one class, and the variant table.
"""
