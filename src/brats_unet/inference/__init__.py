"""Stage 5, prediction.

- ``predict``: whole-case prediction (the probabilities from :mod:`brats_unet.models.windows`),
  thresholds to labels, and the segmentation written in the input's geometry.
- ``batches``: a prediction job's folder of several subjects, and each subject's files taken
  from it.
"""
