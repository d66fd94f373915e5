"""Analytic FLOP and parameter counts of the U-Nets of :mod:`brats_unet.models.unets`.

Convention, used by every benchmark here:

* One multiply-add is 2 FLOPs. Only convolutions count: a convolution with a
  ``K``-voxel kernel (``3**d``, or 1 for the 1x1 projections and the head) from
  ``C_in`` to ``C_out`` channels costs ``2 * K * C_in * C_out`` FLOPs per
  *output* voxel; a transposed convolution (kernel 2, stride 2) costs
  ``2 * 2**d * C_in * C_out`` per *input* voxel, which is ``2 * C_in * C_out``
  per output voxel. Batch norm, LeakyReLU, the additions, the concatenations,
  the sigmoid and the loss are left out (elementwise, a few FLOPs per value).
* A training step is 3x the forward pass: the backward pass computes, for
  every convolution, the gradient with respect to its input and to its
  kernel, each as many FLOPs as the forward convolution. (The first layer's
  input gradient is not needed, so 3x slightly overstates: by 1/3 of the
  first convolution, under 1 % here.)

The layer walk mirrors ``UNet.__init__`` and is checked against the models'
parameter counts: ``python bench/flops.py`` prints both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Conv:
    """One convolution: kernel voxels, channels, and voxels it computes."""

    name: str
    kernel: int  # voxels of the kernel (27, 9, 8, 4 or 1)
    c_in: int
    c_out: int
    voxels: int  # output voxels (convolution) or input voxels (transposed convolution)
    bias: bool
    norm: bool  # followed by a batch norm (2 trainable values per channel)

    @property
    def flops(self) -> int:
        return 2 * self.kernel * self.c_in * self.c_out * self.voxels

    @property
    def parameters(self) -> int:
        return self.kernel * self.c_in * self.c_out + self.bias * self.c_out + 2 * self.norm * self.c_out


def unet_convolutions(*, spatial_dims: int, patch: tuple[int, ...], in_channels: int = 4,
                      n_regions: int = 3, base_filters: int = 16, depth: int = 4,
                      residual: bool = False, norm: str = "batch") -> list[Conv]:
    """Every convolution of one forward pass of a :class:`brats_unet.models.unets.UNet` on one sample."""
    if len(patch) != spatial_dims or any(p % 2 ** (depth - 1) for p in patch):
        raise ValueError(f"patch {patch} must have {spatial_dims} sizes divisible by {2 ** (depth - 1)}")
    k3, up_k = 3**spatial_dims, 2**spatial_dims
    normed = norm != "none"
    filters = [base_filters * 2**level for level in range(depth)]
    voxels = [math.prod(p // 2**level for p in patch) for level in range(depth)]
    convs: list[Conv] = []

    def block(name, level, c_in, c_out):
        convs.append(Conv(f"{name}_conv1", k3, c_in, c_out, voxels[level], not normed, normed))
        convs.append(Conv(f"{name}_conv2", k3, c_out, c_out, voxels[level], not normed, normed))
        strided = name.startswith("enc") and level > 0
        if residual and (c_in != c_out or strided):
            convs.append(Conv(f"{name}_proj", 1, c_in, c_out, voxels[level], not normed, normed))

    for level, (c_in, c_out) in enumerate(zip([in_channels] + filters, filters)):
        block(f"enc{level}", level, c_in, c_out)
    for level in reversed(range(depth - 1)):
        convs.append(Conv(f"up{level}", up_k, filters[level + 1], filters[level],
                          voxels[level + 1], True, False))
        block(f"dec{level}", level, 2 * filters[level], filters[level])
    convs.append(Conv("logits", 1, filters[0], n_regions, voxels[0], True, False))
    return convs


def forward_flops(**architecture) -> int:
    """FLOPs of one forward pass on one sample (see the module's convention)."""
    return sum(c.flops for c in unet_convolutions(**architecture))


def training_flops(**architecture) -> int:
    """FLOPs of one training step on one sample: 3x the forward pass."""
    return 3 * forward_flops(**architecture)


def parameter_count(**architecture) -> int:
    """Trainable parameters implied by the layer walk (kernels, biases, batch-norm scale and shift)."""
    return sum(c.parameters for c in unet_convolutions(**architecture))


def _check() -> None:
    """The walk's parameter count against Keras' and the PyTorch reference's, and a hand-counted case."""
    import torch

    from brats_unet.models.unets import build_model, count_trainable_parameters

    from reference import TorchUNet

    # Hand count: a depth-1 2D U-Net is one block and the head; on a 4 x 4 patch,
    # 2*9*4*8*16 + 2*9*8*8*16 + 2*1*8*3*16 = 9216 + 18432 + 768 = 28416 FLOPs.
    small = forward_flops(spatial_dims=2, patch=(4, 4), base_filters=8, depth=1)
    assert small == 28416, small
    print(f"hand-counted depth-1 2D case: {small} FLOPs (expected 28416)")
    for name, dims, residual in (("unet2d", 2, False), ("unet3d", 3, False), ("resunet3d", 3, True)):
        for base, depth in ((8, 4), (16, 5)):
            keras_count = count_trainable_parameters(build_model(name, base_filters=base, depth=depth))
            ref = TorchUNet(spatial_dims=dims, base_filters=base, depth=depth, residual=residual)
            torch_count = sum(p.numel() for p in ref.parameters() if p.requires_grad)
            walk = parameter_count(spatial_dims=dims, patch=(16,) * dims, base_filters=base,
                                   depth=depth, residual=residual)
            status = "ok" if walk == keras_count == torch_count else "MISMATCH"
            print(f"{name:10} base {base:2} depth {depth}: walk {walk:,}  keras {keras_count:,}  "
                  f"torch reference {torch_count:,}  {status}")
            assert status == "ok"
    # FLOPs against PyTorch's own counter (2 FLOPs per multiply-add, convolutions only).
    from torch.utils.flop_counter import FlopCounterMode

    for dims, residual, patch in ((2, False, (64, 64)), (3, False, (32, 64, 64)), (3, True, (32, 64, 64))):
        ref = TorchUNet(spatial_dims=dims, base_filters=8, depth=4, residual=residual)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            ref(torch.zeros((1, 4) + patch))
        walk = forward_flops(spatial_dims=dims, patch=patch, base_filters=8, depth=4, residual=residual)
        status = "ok" if counter.get_total_flops() == walk else "MISMATCH"
        print(f"{dims}D residual {residual!s:5} patch {patch}: forward FLOPs walk {walk:,}, "
              f"torch FlopCounterMode {counter.get_total_flops():,}  {status}")
        assert status == "ok"


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    _check()
    for name, dims, residual, patch, base, depth in (
        ("unet2d", 2, False, (64, 64), 8, 4), ("unet3d", 3, False, (32, 64, 64), 8, 4),
        ("resunet3d", 3, True, (32, 64, 64), 8, 4), ("unet3d", 3, False, (64, 128, 128), 16, 5),
    ):
        f = forward_flops(spatial_dims=dims, patch=patch, base_filters=base, depth=depth,
                          residual=residual)
        print(f"{name:10} patch {str(patch):15} base {base:2} depth {depth}: "
              f"forward {f / 1e9:7.3f} GFLOP, training step {3 * f / 1e9:7.3f} GFLOP per sample")
