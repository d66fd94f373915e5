"""How one model is trained: the TrainingSettings record, built from the config's blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brats_unet.models.unets import spatial_dims_of


@dataclass(frozen=True)
class TrainingSettings:
    """How one model is trained. Patch sizes are ``(Z, Y, X)`` voxels, or ``(Y, X)`` in 2D."""

    patch_size: tuple[int, ...]
    batch_size: int
    epochs: int
    steps_per_epoch: int
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"  # or "constant"
    warmup_epochs: int = 0  # linear warm-up from 1% of learning_rate, then the schedule
    early_stopping_patience: int = 0  # 0: off
    tumour_fraction: float = 0.5
    augment: bool = True
    dice_weight: float = 1.0
    bce_weight: float = 1.0
    batch_dice: bool = True
    precision: str = "auto"
    jit_compile: str | bool = "auto"
    data_format: str = "auto"  # the layers' layout: models.unets.resolve_data_format
    seed: int = 0
    loader_workers: int = 1
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs "
                             f"({self.epochs})")


def settings_for(model_name: str, training: dict[str, Any],
                 model_block: dict[str, Any]) -> TrainingSettings:
    """One model's settings: the shared ``training`` block, overridden by the model's own."""
    dims = spatial_dims_of(model_name)
    patch = tuple(int(s) for s in model_block["patch_size"])
    if len(patch) != dims:
        raise ValueError(f"models.{model_name}.patch_size must have {dims} sizes "
                         f"({'Y X' if dims == 2 else 'Z Y X'}), got {list(patch)}")
    divisor = 2 ** (model_block["architecture"]["depth"] - 1)
    if any(p % divisor for p in patch):
        raise ValueError(f"models.{model_name}.patch_size {list(patch)} must be divisible by "
                         f"{divisor} (2 ** (depth - 1))")
    merged = {**training, **(model_block.get("training") or {})}
    return TrainingSettings(patch_size=patch, batch_size=int(model_block["batch_size"]),
                            model_options=dict(model_block["architecture"]), **merged)
