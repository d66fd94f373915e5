"""Stage 6, evaluation (no Keras: numpy, scipy and pandas only).

- ``metrics``: per-case Dice, HD95, sensitivity, specificity on the original grid.
- ``volumetry``: tumour volumes in ml from the NIfTI header, and shape consistency.
- ``dialects``: the three official BraTS evaluations and their constants; ``lesionwise``
  (2023-2024), ``instances`` (panoptica, 2025+) and ``surfaces`` (DeepMind's surfel HD95)
  compute them, ``dialect_scores`` gathers them per region.
- ``comparison``: the paired comparison of models on the same test cases.
- ``scoring``: scoring every prediction of a model, and the benchmark tables.
- ``longitudinal``: the change of each region's volume between two scans of a patient.
"""
