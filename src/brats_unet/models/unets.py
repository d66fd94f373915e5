"""U-Nets for BraTS region segmentation, 2D and 3D from one class.

Inputs and outputs are channels last: ``(batch, [z,] y, x, channel)``. Inputs carry the
four modalities (flair, t1, t1ce, t2); outputs carry one sigmoid probability
per region in the order of :data:`brats_unet.labels.REGIONS` (WT, TC, ET).
Regions overlap (ET within TC within WT), hence sigmoid rather than softmax.

Inside, ``data_format="channels_first"`` computes on ``(batch, channel, [z,] y, x)``
(PyTorch's own layout: Keras' PyTorch convolutions then copy nothing around each call),
with one transpose in and one out, so loaders, losses and windows see the same tensors;
files are saved channels last (:func:`with_data_format`), which every back end runs.

Only ``keras``, ``keras.layers`` and ``keras.ops`` are used, so the models run
on Keras' TensorFlow, PyTorch and JAX back ends alike.
"""

from __future__ import annotations

import math
from functools import partial

import keras
from keras import layers

NORMS = ("batch", "instance", "none")
DATA_FORMATS = ("channels_last", "channels_first")
#: The layer whose output is the region logits (the model's output is their sigmoid).
LOGITS_LAYER = "logits"
#: Initial bias of the logits: the prior probability of a tumour voxel, about 2 %.
INITIAL_LOGIT = -4.0
#: Names accepted by :func:`build_model`.
MODEL_NAMES = ("unet2d", "unet3d", "resunet3d")
# Each variant is a delta on UNet's defaults.
_VARIANTS: dict[str, dict] = {
    "unet2d": {"spatial_dims": 2},
    "unet3d": {"spatial_dims": 3},
    "resunet3d": {"spatial_dims": 3, "residual": True},
}


class _ConvBlock:
    """Two 3x3(x3) convolutions, each followed by norm and LeakyReLU.

    The first convolution has stride ``strides``; 2 halves the resolution
    (strided convolution rather than max-pooling: TensorFlow has no float16
    MaxPool3D kernel on CPU, and nnU-Net downsamples this way too). With
    ``residual`` the input is added back before the last activation, through
    a strided 1x1 projection when the shape changes. A plain holder
    of Keras layers (not a Layer) so the saved graph uses built-in layers only.
    """

    def __init__(self, spatial_dims, in_channels, filters, *, strides=1, residual, norm,
                 norm_momentum, dropout, data_format, name):
        conv = partial((layers.Conv2D, layers.Conv3D)[spatial_dims - 2], data_format=data_format)
        axis = _channel_axis(data_format)
        # A bias before a normalisation's own shift is redundant.
        use_bias = norm == "none"
        self.residual = residual
        self.convs = [
            conv(filters, 3, strides=s, padding="same", use_bias=use_bias, name=f"{name}_conv{i}")
            for i, s in ((1, strides), (2, 1))
        ]
        self.norms = [_norm(norm, f"{name}_norm{i}", norm_momentum, axis) for i in (1, 2)]
        self.acts = [layers.LeakyReLU(0.01, name=f"{name}_act{i}") for i in (1, 2)]
        self.dropout = None
        if dropout > 0:
            dropout_cls = (layers.SpatialDropout2D, layers.SpatialDropout3D)[spatial_dims - 2]
            self.dropout = dropout_cls(dropout, data_format=data_format, name=f"{name}_dropout")
        self.projection = None
        if residual:
            if in_channels != filters or strides != 1:
                self.projection = [
                    conv(filters, 1, strides=strides, use_bias=use_bias, name=f"{name}_proj"),
                    _norm(norm, f"{name}_proj_norm", norm_momentum, axis),
                ]
            self.add = layers.Add(name=f"{name}_add")

    def __call__(self, x):
        shortcut = x
        x = self.acts[0](self.norms[0](self.convs[0](x)))
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.norms[1](self.convs[1](x))
        if self.residual:
            for layer in self.projection or ():
                shortcut = layer(shortcut)
            x = self.add([x, shortcut])
        return self.acts[1](x)


def _channel_axis(data_format: str) -> int:
    return 1 if data_format == "channels_first" else -1


def _norm(norm: str, name: str, momentum: float, axis: int):
    if norm == "batch":
        return layers.BatchNormalization(axis=axis, momentum=momentum, name=name)
    if norm == "instance":
        # One group per channel is instance normalisation.
        return layers.GroupNormalization(groups=-1, axis=axis, name=name)
    return layers.Identity(name=name)


def _check_arguments(spatial_dims: int, norm: str, depth: int, data_format: str) -> None:
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")


def _u_layers(spatial_dims, in_channels, base_filters, depth, **block_options):
    """``(encoder, ups, concats, decoder)``: the U-path's blocks and layers, per level."""
    data_format = block_options["data_format"]
    up_conv = partial((layers.Conv2DTranspose, layers.Conv3DTranspose)[spatial_dims - 2],
                      data_format=data_format)
    filters = [base_filters * 2**level for level in range(depth)]
    encoder = [  # every level but the first starts by halving the resolution
        _ConvBlock(spatial_dims, c_in, c_out, strides=1 if level == 0 else 2,
                   name=f"enc{level}", **block_options)
        for level, (c_in, c_out) in enumerate(zip([in_channels] + filters, filters))
    ]
    ups = [up_conv(filters[level], 2, strides=2, name=f"up{level}") for level in range(depth - 1)]
    concats = [layers.Concatenate(axis=_channel_axis(data_format), name=f"skip{level}")
               for level in range(depth - 1)]
    decoder = [  # input: upsampled features concatenated with the skip
        _ConvBlock(spatial_dims, 2 * f, f, name=f"dec{level}", **block_options)
        for level, f in enumerate(filters[:-1])
    ]
    return encoder, ups, concats, decoder


def _u_path(image, encoder, ups, concats, decoder):
    """Down through ``encoder``, keeping each level's output as a skip, then up through
    ``ups`` and ``decoder``, each level concatenating the upsampled features with its skip."""
    x = image
    skips = []
    for block in encoder:
        x = block(x)
        skips.append(x)
    x = skips.pop()  # the bottleneck is no skip
    for level in reversed(range(len(decoder))):
        x = concats[level]([ups[level](x), skips[level]])
        x = decoder[level](x)
    return x


@keras.saving.register_keras_serializable(package="brats_unet")
class UNet(keras.Model):
    """U-Net for ``spatial_dims`` 2 or 3, optionally with residual blocks.

    Args:
        spatial_dims: 2 (axial slices ``(B, Y, X, C)``) or 3 (volumes ``(B, Z, Y, X, C)``).
        in_channels: input modalities.
        n_regions: output channels (sigmoid probabilities), WT, TC, ET by default.
        base_filters: filters of the first level; they double per level.
        depth: number of resolution levels; spatial sizes must be divisible
            by ``2 ** (depth - 1)`` (see :attr:`size_divisor`).
        residual: residual blocks instead of plain double convolutions.
        norm: "batch", "instance" (GroupNormalization with one group per
            channel) or "none".
        norm_momentum: batch norm's running statistics keep this share of their value
            at each step (Keras' ``momentum``; PyTorch's ``momentum`` is 1 minus it).
        dropout: spatial dropout rate inside every block; 0 adds no layer.
        data_format: the layout the layers compute in (module docstring); the model's
            inputs and outputs are channels last either way.
        name: model name.

    The output layer computes in float32 whatever the global dtype policy,
    so a ``mixed_float16`` model still returns float32 probabilities.
    """

    def __init__(
        self,
        *,
        spatial_dims: int,
        in_channels: int = 4,
        n_regions: int = 3,
        base_filters: int = 16,
        depth: int = 4,
        residual: bool = False,
        norm: str = "batch",
        norm_momentum: float = 0.99,
        dropout: float = 0.0,
        data_format: str = "channels_last",
        name: str = "unet",
        **kwargs,
    ):
        _check_arguments(spatial_dims, norm, depth, data_format)
        # === Layers ===
        conv = partial((layers.Conv2D, layers.Conv3D)[spatial_dims - 2], data_format=data_format)
        encoder, ups, concats, decoder = _u_layers(
            spatial_dims, in_channels, base_filters, depth, residual=residual, norm=norm,
            norm_momentum=norm_momentum, dropout=dropout, data_format=data_format)
        # Logits and sigmoid apart, so training can use the stable loss on logits.
        # Tumour is a few percent of a volume: starting every voxel at that
        # prior (sigmoid(-4) ~ 0.02) instead of 0.5 keeps the first steps from
        # locking a region channel into predicting the whole brain.
        # Channels first: the head's output is transposed back, and that layer is the logits.
        last = data_format == "channels_last"
        head = conv(n_regions, 1, dtype="float32", name=LOGITS_LAYER if last else "head",
                    bias_initializer=keras.initializers.Constant(INITIAL_LOGIT))
        sigmoid = layers.Activation("sigmoid", dtype="float32", name="regions")

        # === Functional graph ===
        image = keras.Input(shape=(None,) * spatial_dims + (in_channels,), name="image")
        n = spatial_dims + 1  # Permute's axes leave the batch out
        x = image if last else layers.Permute((n, *range(1, n)), name="to_channels_first")(image)
        logits = head(_u_path(x, encoder, ups, concats, decoder))
        if not last:
            logits = layers.Permute((*range(2, n + 1), 1), dtype="float32",
                                    name=LOGITS_LAYER)(logits)
        super().__init__(inputs=image, outputs=sigmoid(logits), name=name, **kwargs)

        # === Config ===
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.n_regions = n_regions
        self.base_filters = base_filters
        self.depth = depth
        self.residual = residual
        self.norm, self.norm_momentum, self.dropout = norm, norm_momentum, dropout
        self.data_format = data_format

    @property
    def size_divisor(self) -> int:
        """Every spatial input size must be a multiple of this."""
        return 2 ** (self.depth - 1)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "spatial_dims": self.spatial_dims,
            "in_channels": self.in_channels,
            "n_regions": self.n_regions,
            "base_filters": self.base_filters,
            "depth": self.depth,
            "residual": self.residual,
            "norm": self.norm,
            "norm_momentum": self.norm_momentum,
            "dropout": self.dropout,
            "data_format": self.data_format,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def spatial_dims_of(name: str) -> int:
    """2 or 3: the spatial dimensions of the variant ``name``, from the variant table."""
    if name not in _VARIANTS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODEL_NAMES}")
    return _VARIANTS[name]["spatial_dims"]


def build_model(name: str, **options) -> keras.Model:
    """Build the model registered as ``name`` (one of :data:`MODEL_NAMES`).

    ``options`` are :class:`UNet` keyword arguments other than those the
    variant fixes (``spatial_dims``, and ``residual`` for ``resunet3d``); the
    model is named ``name`` unless ``options`` give another.
    """
    if name not in _VARIANTS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODEL_NAMES}")
    fixed = _VARIANTS[name]
    clashes = sorted(k for k in options if k in fixed and options[k] != fixed[k])
    if clashes:
        raise ValueError(f"model {name!r} fixes {clashes}; do not pass other values")
    return UNet(**{"name": name, **options, **fixed})


def resolve_data_format(data_format: str, backend: str) -> str:
    """``auto``: channels first on Keras' PyTorch back end, channels last on the others;
    else ``data_format``, one of :data:`DATA_FORMATS`.

    Measured on a CPU (BENCHMARKS.md, "Layout and JAX"): PyTorch channels first trains
    7-10 % faster per step than channels last, its convolutions no longer copying their
    tensors around each call. TensorFlow's CPU kernels are channels last; XLA (JAX) picks
    its own layout.
    """
    if data_format == "auto":
        return "channels_first" if backend == "torch" else "channels_last"
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be auto or one of {DATA_FORMATS}, got {data_format!r}")
    return data_format


def with_data_format(model: keras.Model, data_format: str) -> keras.Model:
    """``model`` computing in ``data_format``: itself, or a copy with the same weights (a
    kernel's shape does not depend on the layout; the transposes have no weights)."""
    if getattr(model, "data_format", "channels_last") == data_format:
        return model
    other = UNet(**{**model.get_config(), "data_format": data_format})
    other.set_weights(model.get_weights())
    return other


def logits_model(model: keras.Model) -> keras.Model:
    """A model sharing ``model``'s layers that outputs the region logits, for training."""
    return keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output, name=f"{model.name}_logits")


def count_trainable_parameters(model: keras.Model) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)
