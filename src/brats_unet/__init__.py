"""brats_unet: an open, reproducible benchmark of 2D and 3D U-Nets on BraTS-format MRI.

Modules (one per stage): ``io`` and ``subjects`` (reading), ``validation``,
``preprocessing``, ``split``, ``synthetic`` (generated BraTS-format cases),
``models``, ``losses``, ``loaders``. Importing the package imports none of the
heavy frameworks; Keras is loaded only by the modules that need it.

Importing it does set one variable, before any module can load TensorFlow:
``TF_ENABLE_ONEDNN_OPTS=1`` unless the environment already sets it. TensorFlow turns its
oneDNN kernels on by itself only on CPUs with AVX512_VNNI, AVX512_BF16 or AMX; elsewhere
(AVX2 CPUs such as AMD EPYC Zen 3) its convolutions run through im2col and matrix products,
4 to 6x slower on a 3D training job and faulting in about 2.5 GB of fresh pages per step
(``BENCHMARKS.md``, "What was wrong: TensorFlow's convolutions without oneDNN").
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
