"""Stage 2, preprocessing.

- ``cases``: brain mask, crop to the brain, z-score, the preprocessed case's files and the way
  back to the input's geometry.
"""
