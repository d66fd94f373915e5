"""The training job's callbacks: the progress line of the job's log."""

from __future__ import annotations

from brats_unet.training.callbacks import progress_line


def test_progress_line_gives_loss_dice_seconds_and_time_left():
    logs = {"loss": 0.41234, "val_dice_wt": 0.9123, "val_dice_tc": 0.85, "val_dice_et": 0.8,
            "val_dice_mean": 0.8541, "epoch_seconds": 12.04, "validation_seconds": 2.26}
    # median of 10, 12, 11 s = 11 s, times 7 epochs to go = 77 s
    assert progress_line("unet3d", 3, 10, logs, [10.0, 12.0, 11.0]) == (
        "unet3d: epoch 3/10, loss 0.4123, validation Dice WT 0.912 TC 0.850 ET 0.800 "
        "(mean 0.854), 11.0 s (2.3 s validating), about 1 min 17 s left")
    assert progress_line("unet2d", 10, 10, {"loss": 1.0}, [3600.0]) == (
        "unet2d: epoch 10/10, loss 1.0000, 3600.0 s, about 0 s left")
    assert progress_line("unet2d", 1, 40, {}, [3600.0]).endswith("about 39 h 0 min left")
