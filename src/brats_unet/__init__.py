"""brats_unet: an open, reproducible benchmark of 2D and 3D U-Nets on BraTS-format MRI.

The subpackages are the pipeline's stages, in order; a stage imports only from earlier ones
and from the shared modules (``tests/test_layout.py`` holds this):

- ``data``: ``datasets`` (each BraTS release's and the Decathlon's layout, names and labels;
  ``auto``), ``subjects`` (finding subjects), ``validation`` (checking them), ``qc`` (the QC
  table), ``split`` (patient-level split), ``pairs`` (the longitudinal pairs table),
  ``synthetic`` (generated BraTS-format cases: ``anatomy``, the brain, tumour and contrasts;
  ``template``, the same on the MNI152 brain; ``generate``, the cases and their files;
  ``longitudinal``, a patient's second scan: the tumour scaled, the head moved).
- ``preprocessing``: ``cases`` (brain mask, crop, z-score, the preprocessed case's files),
  ``properties`` (``properties.json``, the case's typed record).
- ``models``: ``unets`` (the three U-Net variants), ``windows`` (how a model sees a whole case:
  sliding windows, slices, mirroring; for validation and prediction alike).
- ``training``: ``losses``, ``patches``, ``loaders``, ``validation`` (whole cases each epoch, in
  a training step's memory), ``settings``, ``callbacks``, ``resume``
  (what a killed job resumes from), ``train`` (one model's training job), ``summary``
  (``<model>.json``, the typed record later stages read), ``weights`` (weights through DVC,
  the held-out guard).
- ``inference``: ``predict`` (whole-case prediction into the input's geometry), ``batches``
  (a prediction job's folder of several subjects).
- ``evaluation``: ``metrics`` (the legacy dialect), ``volumetry``, ``dialects`` (the three
  official BraTS evaluations' constants), ``lesionwise`` (2023-2024), ``instances`` (panoptica,
  2025+), ``surfaces`` and ``surfels`` (DeepMind's surfel HD95), ``dialect_scores`` (the
  dialects' columns and lesion rows), ``comparison`` (paired tests and the verdicts drawn from
  them), ``intervals`` (split-conformal volume intervals), ``cross_validation`` (the
  predictors' tables: folds, fold ensemble, out of fold), ``scoring`` (per-case scores and the
  benchmark tables), ``longitudinal`` (the change between two scans of a patient, its
  intervals and its call); no Keras.
- ``reporting``: ``figures``, ``overlays`` (three-plane example cases), ``discussion`` (the
  prose, phrasing ``comparison``'s verdicts), ``provenance``, ``page`` (HTML), ``dialect_section``
  (the dialects side by side, lesion detection), ``cv_section`` (cross-validation and volume
  intervals), ``longitudinal_section`` (each followed patient's change), ``report`` (the
  page's sections); no Keras.

Shared modules: ``io`` (NIfTI and atomic files), ``labels`` (label conventions, regions),
``runtime`` (back end, threads, GPUs, precision, XLA, determinism), ``logs`` (job logs),
``voxels`` (which plane each axis is, bounding boxes). On top of the stages: ``config`` (the
workflow's config checked against its schema), ``segment`` (a trained model applied file to
file, for the workflow and the command line), ``doctor`` (what a machine gives the pipeline)
and ``cli`` (the ``brats-unet`` command).
Importing the package imports none of the heavy frameworks; Keras is loaded only by the
modules that need it.

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
