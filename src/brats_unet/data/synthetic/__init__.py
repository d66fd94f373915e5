"""Synthetic BraTS-format cases, in any dataset layout: a skull-stripped brain with a glioma,
four contrasts, labels.

The anatomy is defined in millimetres in a frame centred on the brain, so one
``(seed, index)`` gives the same brain and tumour at any voxel size: a case of
``(96, 96, 64)`` voxels of ``(2, 2, 2.4)`` mm is a downsampled version of the same
case at ``(240, 240, 155)`` x 1 mm. Only the per-voxel noise depends on the grid.
The brain is about 130 x 160 x 120 mm; a field of view too small for it (below
about 160 x 190 x 148 mm) shrinks the whole anatomy uniformly so that it fits.

Each case draws from ``np.random.default_rng([seed, index])``, so cases are
independent of one another (one Snakemake job per case) and equal arguments give
equal arrays and byte-identical files (on one software stack: vectorised
``exp``/``tanh`` and BLAS may round differently on another CPU, which can move a
boundary voxel).

Axis order is the files' ``(i, j, k)``: i left-right, j anterior-posterior, k
inferior-superior (axial slices along k). The affine is BraTS-like,
``diag(-si, -sj, sk)`` (LPS voxel axes).

- ``anatomy``: the brain, its tumour and their contrasts, drawn in mm and rendered on a grid.
- ``template``: the healthy brain taken from the MNI152 template instead (``anatomy="mni152"``),
  the tumour centred in its deep white matter.
- ``generate``: :class:`SyntheticCase`, :func:`generate_case`, and the cases written as BraTS
  subject folders (:func:`write_raw_case`, :func:`generate_dataset`).
"""

from brats_unet.data.subjects import CONTRASTS
from brats_unet.data.synthetic.anatomy import RELATIVE_INTENSITY, TISSUES
from brats_unet.data.synthetic.generate import (
    ANATOMIES,
    BRATS_SHAPE,
    WORLD_CENTRE_MM,
    SyntheticCase,
    brats_affine,
    generate_case,
    generate_dataset,
    subject_index,
    subject_name,
    write_raw_case,
)

__all__ = [
    "ANATOMIES", "BRATS_SHAPE", "CONTRASTS", "RELATIVE_INTENSITY", "TISSUES", "WORLD_CENTRE_MM",
    "SyntheticCase", "brats_affine", "generate_case", "generate_dataset", "subject_index",
    "subject_name", "write_raw_case",
]
