"""Stage 4, training.

- ``losses``: the Dice + BCE loss and the per-epoch Dice metrics on the BraTS regions.
- ``patches``: zero-padded boxes of a labelled case, their region masks, augmentation.
- ``loaders``: training patches or slices, as Keras PyDatasets.
- ``validation``: whole validation cases through the model each epoch, in a training step's memory.
- ``settings``: TrainingSettings, how one model is trained, from the config's blocks.
- ``callbacks``: mean validation Dice, the best checkpoint, epoch times and progress lines.
- ``resume``: the state folder a killed training job resumes from.
- ``train``: one model's training job: precision, checkpoint on validation Dice, resumable.
- ``summary``: ``<model>.json``, the TrainingSummary record, its one writer and one reader.
- ``weights``: trained weights shared through DVC, and the guard that they never saw the test set.
"""
