"""The layers of the elaborated network: a stem, every block and the head are ordered lists of
them."""

from __future__ import annotations

from typing import Literal, NamedTuple

from resdsl.ir.node import Node
from resdsl.ir.spec import NormKind


class Shape(Node):
    channels: int
    height: int
    width: int

    def __str__(self) -> str:
        return f"{self.channels}x{self.height}x{self.width}"


class Conv(Node):
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = False
    # weight-standardized (BiT's StdConv2d; the network's `conv standardized` eps)
    standardized: bool = False

    @property
    def params(self) -> int:
        weight = self.out_channels * (self.in_channels // self.groups) * self.kernel * self.kernel
        return weight + (self.out_channels if self.bias else 0)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """PyTorch's layout: (out, in / groups, kernel, kernel)."""
        return (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel)

    def out_size(self, size: int) -> int:
        reach = self.dilation * (self.kernel - 1) + 1
        return (size + 2 * self.padding - reach) // self.stride + 1

    def words(self) -> str:
        """`conv3x3/2 64 g32 d2`: kernel, stride, width, groups, dilation."""
        text = f"conv{self.kernel}x{self.kernel}"
        if self.stride > 1:
            text += f"/{self.stride}"
        text += f" {self.out_channels}"
        if self.groups > 1:
            text += f" g{self.groups}"
        if self.dilation > 1:
            text += f" d{self.dilation}"
        return text


class Pool(Node):
    kind: Literal["max", "avg"]
    kernel: int
    stride: int
    padding: int
    # A max pool pads with -inf (torchvision) or zeros (keras.applications). The two agree after
    # a ReLU; a stem without norm and activation feeds the pool negative values, and there
    # keras.applications' V2 nets, the reference for such stems, pad with zeros.
    zero_padded: bool = False
    # Round the output size up and average over the pixels inside only (timm's ResNet-D
    # shortcut pool: ceil_mode=True, count_include_pad=False).
    ceil: bool = False
    # Rows and columns of zeros after the input (bottom and right), which the average counts:
    # timm's AvgPool2dSame, a 2x2 window at stride 1 padded "same" as TensorFlow pads (the
    # ResNet-D shortcut's pool in a dilated stage, which keeps the size).
    pad_after: int = 0

    def out_size(self, size: int) -> int:
        padded = size + 2 * self.padding + self.pad_after
        if self.ceil:
            return -(-(padded - self.kernel) // self.stride) + 1
        return (padded - self.kernel) // self.stride + 1

    def words(self) -> str:
        return f"{self.kind}pool{self.kernel}x{self.kernel}/{self.stride}"


def _sized(shape: Shape, out_size, channels: int | None = None) -> Shape:
    """`shape` with each side `out_size(side)` (never below 0), and `channels` if given."""
    return Shape(
        channels=shape.channels if channels is None else channels,
        height=max(0, out_size(shape.height)),
        width=max(0, out_size(shape.width)),
    )


# --------------------------------------------------------------------------- network: layers
# The stem, every block and the head are ordered lists of typed layers. Each layer carries its
# name in both frameworks, chosen once, in elaboration: `torch` is its attribute path inside its
# owner (the model for the stem and head, the block for a block's layers: `conv1`,
# `downsample.1`); `keras` is its Keras layer name (inside a block, the part after the block's
# prefix: `1_conv` of `conv2_block1_1_conv`). Backends, weight porting and the reports read
# these lists; none of them decides anything from a block type's name.
#
# Inside a block, layers also say which of the block's widths they have (`in`, `mid`, `out`)
# and whether they take the block's stride, so a backend can write one parameterised block
# class for every block of the same structure.

# "first": the first convolution's output, the inner width over the block's `reduce_first`;
# "reduced": a squeeze-excitation's inner width; "wide": the input of a composite layer that
# splits its channels into paths of the inner width each (Res2Net's `width * scale`); "path":
# one of a composite's parallel paths, the inner width over their number (ResNeXt's Fig. 3a).
Width = Literal["in", "first", "mid", "out", "reduced", "wide", "path"]


class Cost(NamedTuple):
    """What a layer costs: multiply-accumulates (what PyTorch's FlopCounterMode counts, halved:
    convolutions, the blur pool's fixed filter, attention's and linear layers; not pools, norms,
    activations or additions), trainable parameters and norms' running statistics."""

    macs: int = 0
    params: int = 0
    norm_stats: int = 0


class Layer(Node):
    """A layer of the elaborated network. Each layer type answers for itself: its output shape,
    its cost, the layers inside it that hold weights and their tensors, its window (for the
    receptive field and the stride) and its words in `summary` and `graph`. Elaboration, the
    reports, weight porting and the importers ask the layer; none of them dispatches on its
    type. The answers here are those of a layer that passes its input on and holds nothing."""

    torch: str
    keras: str
    # What the layer does, in a phrase for generated docstrings ("a learned scale per
    # channel"); the built-in types are described by the planner, a plugin's by this.
    summary = ""  # a class attribute (not annotated: the IR's fields are its annotations)

    def out_shape(self, shape: Shape) -> Shape:
        return shape

    def cost(self, shape: Shape) -> Cost:
        """The layer's cost on an input of `shape`."""
        return Cost()

    def window(self) -> tuple[int, int] | None:
        """(reach, stride) of a layer that slides a window: how many input pixels past the first
        one output pixel sees, and its step. None for the others."""
        return None

    def weighted(self) -> tuple[Layer, ...]:
        """The layers that hold weights, in registration order: the layer itself, or those
        inside it (channel attention's convolutions)."""
        return ()

    def parts(self) -> tuple[Layer, ...]:
        """The layers a composite layer is made of (its paths'), in order; none for others."""
        return ()

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        """A layer with weights' PyTorch tensors (`weight`, `bias`, ...) and their shapes;
        `rows` resizes a linear layer's output (a classifier sized by trained weights)."""
        return {}

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        """The layer's Keras weights in Keras' order, each as the PyTorch tensor it holds (a
        name of :meth:`tensors`) and the axes that take that tensor to Keras' layout (None:
        the same layout). Weight porting reads this in both directions."""
        return ()

    def misfit(self, names: set[str]) -> str | None:
        """Why PyTorch tensors `names` (under the layer's prefix) cannot be this layer's,
        where the layer can say it better than "missing" or "unexpected"; None otherwise."""
        return None

    def words(self, activation: str = "relu") -> str:
        """The layer in a few words: `conv3x3/2 64 g32`, `batchnorm`, `se 256->16->256`."""
        return self.op


class ConvLayer(Layer):
    op: Literal["conv"] = "conv"
    conv: Conv
    source: Width = "in"
    target: Width = "out"
    strided: bool = False  # takes the block's stride (also in blocks whose stride is 1)
    zero_init: bool = False  # starts at zero (`zero_last_norm` in a pre-activation block)
    # Dilated by the stage's dilation in every block, the first of a dilated stage included (a
    # basic block's second 3x3, timm's `dilation`); other dilated convolutions take the block's
    # own (`Block.dilation`, timm's `first_dilation`).
    stage_dilated: bool = False

    def out_shape(self, shape: Shape) -> Shape:
        return _sized(shape, self.conv.out_size, self.conv.out_channels)

    def cost(self, shape: Shape) -> Cost:
        conv, out = self.conv, self.out_shape(shape)
        per_pixel = (conv.in_channels // conv.groups) * conv.kernel * conv.kernel
        macs = conv.out_channels * out.height * out.width * per_pixel
        return Cost(macs=macs, params=conv.params)

    def window(self) -> tuple[int, int]:
        return self.conv.dilation * (self.conv.kernel - 1), self.conv.stride

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        out = {"weight": self.conv.weight_shape}
        if self.conv.bias:
            out["bias"] = (self.conv.out_channels,)
        return out

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        # (out, in / groups, kh, kw) is Keras' (kh, kw, in / groups, out): grouped kernels
        # need nothing more, both frameworks keep each group's output channels together
        return (("weight", (2, 3, 1, 0)),) + ((("bias", None),) if self.conv.bias else ())

    def words(self, activation: str = "relu") -> str:
        return self.conv.words()


class NormLayer(Layer):
    op: Literal["norm"] = "norm"
    channels: int
    width: Width = "out"
    zero_init: bool = False  # scale starts at zero (`zero_last_norm`)
    # The network's (see Conventions), or "layer": a layer norm over the channels that a module
    # fixes whatever the network's (global context's). Only batch norm keeps statistics.
    kind: NormKind | Literal["layer"] = "batch"

    def cost(self, shape: Shape) -> Cost:
        statistics = 2 * self.channels if self.kind == "batch" else 0
        return Cost(params=len(self._learnt()) * self.channels, norm_stats=statistics)

    def _learnt(self) -> tuple[str, ...]:
        """Its learnt tensors: the scale and shift, and EvoNorm-S0's `v` or FRN's `tau`."""
        extra = {"evonorm_s0": ("v",), "frn": ("tau",)}.get(self.kind, ())
        return ("weight", "bias", *extra)

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        names = self._learnt() + (("running_mean", "running_var") if self.kind == "batch" else ())
        out: dict[str, tuple[int, ...]] = {name: (self.channels,) for name in names}
        if self.kind == "batch":
            out["num_batches_tracked"] = ()
        return out

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        # gamma, beta and (batch norm) the moving mean and variance; PyTorch's step counter
        # has no Keras counterpart
        names = self._learnt() + (("running_mean", "running_var") if self.kind == "batch" else ())
        return tuple((name, None) for name in names)

    def misfit(self, names: set[str]) -> str | None:
        if self.kind != "batch" and "running_mean" in names:
            return f"a batch norm, where the network has a {self.kind} norm"
        if self.kind == "batch" and names and "running_mean" not in names:
            return "a norm without running statistics, where the network has a batch norm"
        return None

    def words(self, activation: str = "relu") -> str:
        return f"{self.kind}norm"


class ActLayer(Layer):
    """The network's activation, or ReLU where the reference fixes it whatever the network's
    (`kind`: timm's split attention). In PyTorch one module serves a whole block (or the
    model), so every activation of an owner has the same `torch` name; Keras names each use."""

    op: Literal["act"] = "act"
    kind: Literal["network", "relu"] = "network"

    def words(self, activation: str = "relu") -> str:
        return activation if self.kind == "network" else self.kind


class PoolLayer(Layer):
    op: Literal["pool"] = "pool"
    pool: Pool
    strided: bool = False  # window and stride are the block's stride (a shortcut's pool)
    # In a block, it applies the stride of the convolution after it (ResNeSt's `avd_first`),
    # not of the one before it (anti-aliasing, `avd_last`).
    before: bool = False

    def out_shape(self, shape: Shape) -> Shape:
        return _sized(shape, self.pool.out_size)

    def window(self) -> tuple[int, int]:
        return self.pool.kernel - 1, self.pool.stride

    def words(self, activation: str = "relu") -> str:
        return self.pool.words()


class BlurPoolLayer(Layer):
    """Anti-aliased downsampling (Zhang, 2019; timm's BlurPool2d): reflect-pad, then a fixed
    depthwise binomial filter of `size` at `stride`. Holds no weights (timm's filter is a
    buffer outside the state dict)."""

    op: Literal["blur"] = "blur"
    channels: int
    size: int
    stride: int
    # Before and after on each axis, (size - 1) // 2 and size // 2 (Zhang's): timm's
    # ((stride - 1) + (size - 1)) // 2 on every side where they agree, odd sizes at stride 2.
    padding: tuple[int, int]
    width: Width = "mid"
    strided: bool = False  # applies the block's stride

    def out_shape(self, shape: Shape) -> Shape:
        before, after = self.padding
        return _sized(shape, lambda size: (size + before + after - self.size) // self.stride + 1)

    def cost(self, shape: Shape) -> Cost:
        out = self.out_shape(shape)
        return Cost(macs=self.channels * out.height * out.width * self.size * self.size)

    def window(self) -> tuple[int, int]:
        return self.size - 1, self.stride

    def words(self, activation: str = "relu") -> str:
        return f"blur{self.size}x{self.size}/{self.stride}"


class IdentityLayer(Layer):
    """Passes its input on. Holds an index in a PyTorch Sequential so that the layers after it
    keep the names of the reference (timm's ResNet-D shortcut at stride 1: `downsample.0` is
    an identity, its convolution `downsample.1`); Keras has no layer for it (`keras` is "")."""

    op: Literal["identity"] = "identity"


class PadChannelsLayer(Layer):
    """Zero channels before and after the input's (the parameter-free shortcut, option A)."""

    op: Literal["pad_channels"] = "pad_channels"
    before: int
    after: int

    def out_shape(self, shape: Shape) -> Shape:
        return shape.model_copy(update={"channels": shape.channels + self.before + self.after})

    def words(self, activation: str = "relu") -> str:
        return f"pad channels +{self.before + self.after}"


class LinearLayer(Layer):
    """The classifier: a Linear, or (`conv`) a 1x1 convolution on the pooled features, whose
    weight is (out, in, 1, 1) (timm's ResNetV2 head); Keras holds either as a Dense."""

    op: Literal["linear"] = "linear"
    in_features: int
    out_features: int
    bias: bool = True
    conv: bool = False

    def out_shape(self, shape: Shape) -> Shape:
        return Shape(channels=self.out_features, height=1, width=1)

    def cost(self, shape: Shape) -> Cost:
        weights = self.in_features * self.out_features
        return Cost(macs=weights, params=weights + self.out_features * self.bias)

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        rows = self.out_features if rows is None else rows
        weight = (rows, self.in_features) + (1, 1) * self.conv
        return {"weight": weight} | ({"bias": (rows,)} if self.bias else {})

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        # (out, in) to Dense's (in, out); a 1x1 convolution's trailing unit axes go
        axes = (1, 0, 2, 3) if self.conv else (1, 0)
        return (("weight", axes),) + ((("bias", None),) if self.bias else ())

    def words(self, activation: str = "relu") -> str:
        kind = "conv1x1" if self.conv else "fc"
        return f"{kind} {self.in_features}->{self.out_features}"


class DropoutLayer(Layer):
    op: Literal["dropout"] = "dropout"
    rate: float

    def words(self, activation: str = "relu") -> str:
        return f"dropout {self.rate:g}"


class GlobalPoolLayer(Layer):
    """Average over height and width, to a vector of features."""

    op: Literal["global_pool"] = "global_pool"

    def out_shape(self, shape: Shape) -> Shape:
        return Shape(channels=shape.channels, height=1, width=1)

    def words(self, activation: str = "relu") -> str:
        return "avgpool"
