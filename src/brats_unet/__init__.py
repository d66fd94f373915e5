"""brats_unet: an open, reproducible benchmark of 2D and 3D U-Nets on BraTS-format MRI.

Modules (one per stage): ``io`` and ``subjects`` (reading), ``validation``,
``preprocessing``, ``split``, ``synthetic`` (generated BraTS-format cases),
``models``, ``losses``, ``loaders``. Importing the package imports none of the
heavy frameworks; Keras is loaded only by the modules that need it.
"""

__version__ = "0.1.0"
