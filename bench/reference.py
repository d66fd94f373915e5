"""A plain-PyTorch reference of :class:`brats_unet.models.unets.UNet`: same layers, same FLOPs.

Only for the benchmarks (never imported by the package). Layer for layer the
Keras model: two 3x3(x3) convolutions per block, no bias before batch norm
(momentum 0.01 = Keras' 0.99, epsilon 1e-3), LeakyReLU(0.01), strided
convolution to downsample, transposed convolution (kernel 2, stride 2) to
upsample, concatenation ``[up, skip]``, a 1x1 head with bias -4; residual
blocks add a strided 1x1 projection when the shape changes. ``bench/flops.py``
checks that its parameter count equals the Keras model's.

Differences that do not change the FLOPs: PyTorch is channels first
(``(B, C, [Z,] Y, X)``), the native layout of its CPU convolutions; a strided
3x3 convolution pads 1 voxel on each side where Keras' ``same`` pads 0 before
and 1 after. The loss is the same soft Dice (pooled over the batch) plus BCE
on logits as :class:`brats_unet.training.losses.SoftDiceBCELoss`; the optimiser is Adam.
"""

from __future__ import annotations

import torch
from torch import nn


class _Block(nn.Module):
    def __init__(self, dims, c_in, c_out, *, stride, residual, norm):
        super().__init__()
        conv = (nn.Conv2d, nn.Conv3d)[dims - 2]
        bn = (nn.BatchNorm2d, nn.BatchNorm3d)[dims - 2]

        def make_norm(c):
            return bn(c, eps=1e-3, momentum=0.01) if norm else nn.Identity()

        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=not norm)
        self.norm1 = make_norm(c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1, bias=not norm)
        self.norm2 = make_norm(c_out)
        self.act = nn.LeakyReLU(0.01)
        self.projection = None
        if residual and (c_in != c_out or stride != 1):
            self.projection = nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=not norm),
                                            make_norm(c_out))
        self.residual = residual

    def forward(self, x):
        shortcut = x
        x = self.act(self.norm1(self.conv1(x)))
        x = self.norm2(self.conv2(x))
        if self.residual:
            x = x + (self.projection(shortcut) if self.projection is not None else shortcut)
        return self.act(x)


class TorchUNet(nn.Module):
    """The reference U-Net; arguments as :class:`brats_unet.models.unets.UNet`. Returns logits."""

    def __init__(self, *, spatial_dims, in_channels=4, n_regions=3, base_filters=16, depth=4,
                 residual=False, norm="batch"):
        super().__init__()
        conv = (nn.Conv2d, nn.Conv3d)[spatial_dims - 2]
        up = (nn.ConvTranspose2d, nn.ConvTranspose3d)[spatial_dims - 2]
        filters = [base_filters * 2**level for level in range(depth)]
        options = {"residual": residual, "norm": norm == "batch"}
        self.encoder = nn.ModuleList(
            _Block(spatial_dims, c_in, c_out, stride=1 if level == 0 else 2, **options)
            for level, (c_in, c_out) in enumerate(zip([in_channels] + filters, filters)))
        self.ups = nn.ModuleList(up(filters[level + 1], filters[level], 2, stride=2)
                                 for level in range(depth - 1))
        self.decoder = nn.ModuleList(_Block(spatial_dims, 2 * f, f, stride=1, **options)
                                     for f in filters[:-1])
        self.head = conv(filters[0], n_regions, 1)
        nn.init.constant_(self.head.bias, -4.0)

    def forward(self, x):
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for level in reversed(range(len(self.ups))):
            x = self.decoder[level](torch.cat([self.ups[level](x), skips[level]], dim=1))
        return self.head(x)


def soft_dice_bce_from_logits(logits, target, smooth=1e-5):
    """:class:`brats_unet.training.losses.SoftDiceBCELoss` (batch Dice, from logits), channels first."""
    probabilities = torch.sigmoid(logits)
    axes = (0,) + tuple(range(2, logits.ndim))
    intersection = (probabilities * target).sum(axes)
    denominator = probabilities.sum(axes) + target.sum(axes)
    dice = (2 * intersection + smooth) / (denominator + smooth)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target)
    return (1 - dice.mean()) + bce


def channels_first(array):
    """A channels-last numpy batch ``(B, ..., C)`` as a contiguous channels-first tensor."""
    t = torch.from_numpy(array)
    return t.permute(0, t.ndim - 1, *range(1, t.ndim - 1)).contiguous()
