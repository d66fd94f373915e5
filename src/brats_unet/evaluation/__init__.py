"""Stage 6, evaluation (no Keras: numpy, scipy and pandas only).

- ``metrics``: per-case Dice, HD95, sensitivity, specificity on the original grid.
- ``volumetry``: tumour volumes in ml from the NIfTI header, and shape consistency.
- ``comparison``: the paired comparison of models on the same test cases.
- ``scoring``: scoring every prediction of a model, and the benchmark tables.
"""
