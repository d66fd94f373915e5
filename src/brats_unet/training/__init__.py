"""Stage 4, training.

- ``losses``: the Dice + BCE loss and the per-epoch Dice metrics on the BraTS regions.
- ``loaders``: training patches or slices and whole-case validation, as Keras PyDatasets.
- ``train``: one model's training job: precision, checkpoint on validation Dice, resumable.
- ``summary``: ``<model>.json``, the TrainingSummary record, its one writer and one reader.
- ``weights``: trained weights shared through DVC, and the guard that they never saw the test set.
"""
