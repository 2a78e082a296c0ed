"""The layers of the elaborated network: a stem, every block and the head are ordered lists of
them."""

from __future__ import annotations

import math
import typing
from typing import Annotated, Literal, NamedTuple

from resdsl.ir.node import Discriminator, Node
from resdsl.ir.spec import Gate, NormKind


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
        return Cost(params=2 * self.channels, norm_stats=statistics)

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        names = ("weight", "bias") + (
            ("running_mean", "running_var") if self.kind == "batch" else ()
        )
        out: dict[str, tuple[int, ...]] = {name: (self.channels,) for name in names}
        if self.kind == "batch":
            out["num_batches_tracked"] = ()
        return out

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        # gamma, beta and (batch norm) the moving mean and variance; PyTorch's step counter
        # has no Keras counterpart
        names = ("weight", "bias", "running_mean", "running_var")
        return tuple((name, None) for name in names[: 4 if self.kind == "batch" else 2])

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


class SqueezeExciteLayer(Layer):
    """Squeeze-and-excitation (Hu et al.; timm's SEModule): the channels' means, `reduce` (a
    1x1 convolution with bias) and a ReLU, `expand` back to the channels and the `gate`, which
    scales the input's channels. `reduce` and `expand` carry their own names, inside the block
    (`se.fc1`, `se_reduce`); `ratio` and `divisor` say how the reduced width was computed
    (None: a fixed width)."""

    op: Literal["se"] = "se"
    reduce: ConvLayer
    expand: ConvLayer
    gate: Gate
    ratio: float | None
    divisor: int
    width: Width = "out"

    def cost(self, shape: Shape) -> Cost:
        convs = (self.reduce.conv, self.expand.conv)  # on the channels' means: one pixel
        return Cost(
            macs=sum(c.in_channels * c.out_channels for c in convs),
            params=sum(c.params for c in convs),
        )

    def weighted(self) -> tuple[Layer, ...]:
        return (self.reduce, self.expand)

    def words(self, activation: str = "relu") -> str:
        conv = self.reduce.conv
        return f"se {conv.in_channels}->{conv.out_channels}->{conv.in_channels}, {self.gate}"


class ChannelConvLayer(Layer):
    """ECA's convolution: 1-d, across the channels, of odd `kernel`, no bias. Its PyTorch
    weight is (1, 1, kernel), its Keras Conv1D kernel (kernel, 1, 1)."""

    op: Literal["channel_conv"] = "channel_conv"
    kernel: int

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        return {"weight": (1, 1, self.kernel)}

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        return (("weight", (2, 1, 0)),)  # (1, 1, k) Conv1d is Keras' (k, 1, 1) Conv1D kernel


class EcaLayer(Layer):
    """Efficient channel attention (Wang et al.; timm's EcaModule): the channels' means, `conv`
    across them, a sigmoid that scales the input's channels. `conv` carries its own names inside
    the block (`se.conv`, `eca_conv`); `gamma` and `beta` say how its kernel followed from the
    channels (None: a fixed kernel)."""

    op: Literal["eca"] = "eca"
    channels: int
    conv: ChannelConvLayer
    gamma: float | None
    beta: float | None
    width: Width = "out"

    def cost(self, shape: Shape) -> Cost:
        return Cost(macs=self.channels * self.conv.kernel, params=self.conv.kernel)

    def weighted(self) -> tuple[Layer, ...]:
        return (self.conv,)

    def words(self, activation: str = "relu") -> str:
        return f"eca kernel {self.conv.kernel}"


class GlobalContextLayer(Layer):
    """Global context attention (Cao et al., 2019; timm's GlobalContext): `attend` (a 1x1
    convolution with bias to one map) and a softmax over the positions weight the input's
    pixels into one context vector per channel; `fc1` (1x1, bias) to the reduced width, a
    layer norm over the channels (`norm`, eps 1e-6), a ReLU and `fc2` back to the channels
    turn it into a term that `fuse` adds to every position ("add", timm's `gca`) or, through a
    sigmoid, scales the channels by ("scale", timm's `gc`). `ratio` and `divisor` say how the
    reduced width was computed (None: a fixed width)."""

    op: Literal["gc"] = "gc"
    channels: int
    attend: ConvLayer
    fc1: ConvLayer
    norm: NormLayer
    fc2: ConvLayer
    fuse: Literal["add", "scale"]
    ratio: float | None
    divisor: int
    width: Width = "out"

    def cost(self, shape: Shape) -> Cost:
        # The map and the weighted sum touch every pixel; the MLP runs on one.
        pixels = shape.height * shape.width
        mlp = (self.fc1.conv, self.fc2.conv)
        macs = 2 * self.channels * pixels + sum(c.in_channels * c.out_channels for c in mlp)
        params = self.attend.conv.params + sum(c.params for c in mlp) + 2 * self.norm.channels
        return Cost(macs=macs, params=params)

    def weighted(self) -> tuple[Layer, ...]:
        return (self.attend, self.fc1, self.norm, self.fc2)

    def words(self, activation: str = "relu") -> str:
        wide, narrow = self.channels, self.fc1.conv.out_channels
        return f"global context {wide}->{narrow}->{wide}, {self.fuse}"


class LineConvLayer(Layer):
    """A convolution with bias whose kernel spans `kernel` (rows, columns): bilinear attention's
    `conv_p` (block_size, 1) and `conv_q` (1, block_size), on a map of that size, so one
    output pixel."""

    op: Literal["line_conv"] = "line_conv"
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        weight = (self.out_channels, self.in_channels, *self.kernel)
        return {"weight": weight, "bias": (self.out_channels,)}

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        return (("weight", (2, 3, 1, 0)), ("bias", None))

    @property
    def macs(self) -> int:
        return self.out_channels * self.in_channels * self.kernel[0] * self.kernel[1]


class BilinearAttentionLayer(Layer):
    """Bilinear attention transform (BAT; Chi et al., 2020; timm's BatNonLocalAttn, as
    byobnet's bat_resnext26ts uses it): `reduce` (a 1x1, its norm and a ReLU) to the reduced
    width; `to_groups` (1x1, norm, ReLU) to `groups` maps whose rows' and columns' maxima over
    `block_size` bands `rows` and `columns` turn into one `block_size` x `block_size` matrix
    per group and axis (a sigmoid, each row or column summing to 1); each group's channels are
    mixed along the rows and columns by these, widened to the map by a Kronecker product with
    the identity (P x Q); `mix` (1x1, norm, ReLU), `expand` (1x1, norm, ReLU) back to the
    channels, dropped out by channel at `dropout` in training, added to the input. The map's
    sides must be multiples of `block_size`. `ratio` and `divisor` say how the reduced width
    was computed (None: a fixed width), with timm's default round limit (`ROUND_LIMIT`)."""

    ROUND_LIMIT = 0.9  # a class constant, not a field: timm's make_divisible default

    op: Literal["bat"] = "bat"
    channels: int
    reduced: int
    block_size: int
    groups: int
    dropout: float
    reduce: ConvLayer
    reduce_norm: NormLayer
    to_groups: ConvLayer
    groups_norm: NormLayer
    rows: LineConvLayer
    columns: LineConvLayer
    mix: ConvLayer
    mix_norm: NormLayer
    expand: ConvLayer
    expand_norm: NormLayer
    ratio: float | None
    divisor: int
    width: Width = "out"

    def cost(self, shape: Shape) -> Cost:
        pixels = shape.height * shape.width
        convs = (self.reduce, self.to_groups, self.mix, self.expand)
        macs = sum(c.conv.in_channels * c.conv.out_channels for c in convs) * pixels
        macs += self.rows.macs + self.columns.macs
        # P (h x h) times the map, times Q (w x w), for every reduced channel
        macs += self.reduced * pixels * (shape.height + shape.width)
        norms = (self.reduce_norm, self.groups_norm, self.mix_norm, self.expand_norm)
        params = sum(c.conv.params for c in convs) + sum(
            sum(math.prod(t) for t in x.tensors().values()) for x in (self.rows, self.columns)
        )
        params += sum(n.cost(shape).params for n in norms)
        return Cost(
            macs=macs, params=params, norm_stats=sum(n.cost(shape).norm_stats for n in norms)
        )

    def weighted(self) -> tuple[Layer, ...]:
        return (
            self.reduce, self.reduce_norm, self.to_groups, self.groups_norm, self.rows,
            self.columns, self.mix, self.mix_norm, self.expand, self.expand_norm,
        )  # fmt: skip

    def words(self, activation: str = "relu") -> str:
        return (
            f"bilinear attention {self.channels}->{self.reduced}, {self.groups} groups of "
            f"{self.block_size}x{self.block_size}"
        )


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
    op: Literal["linear"] = "linear"
    in_features: int
    out_features: int
    bias: bool = True

    def out_shape(self, shape: Shape) -> Shape:
        return Shape(channels=self.out_features, height=1, width=1)

    def cost(self, shape: Shape) -> Cost:
        weights = self.in_features * self.out_features
        return Cost(macs=weights, params=weights + self.out_features * self.bias)

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        rows = self.out_features if rows is None else rows
        return {"weight": (rows, self.in_features)} | ({"bias": (rows,)} if self.bias else {})

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        return (("weight", (1, 0)),) + ((("bias", None),) if self.bias else ())  # (out, in)

    def words(self, activation: str = "relu") -> str:
        return f"fc {self.in_features}->{self.out_features}"


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


# --------------------------------------------------------------------------- composite layers
# A block's branch need not be a chain: a composite layer runs paths in parallel and merges
# them. Each path is an ordered list of layers like a block's, named inside the block (Res2Net's
# `convs.0`, `bns.0`), so weight porting and the reports see through it.


class BranchPath(Node):
    """One path of a composite layer: its layers in order (none: the input passes through),
    and whether its input also adds the previous path's output (Res2Net's hierarchy, where
    each 3x3 sees its own split plus what the 3x3 before it made)."""

    layers: tuple[AnyLayer, ...] = ()
    adds_previous: bool = False
    add: str = ""  # the Keras name of that addition


def _path_window(layers) -> tuple[int, int] | None:
    """(reach, stride) of layers in sequence: each layer's reach counts in the input pixels of
    the strides before it."""
    reach, stride, slides = 0, 1, False
    for layer in layers:
        window = layer.window()
        if window is not None:
            slides = True
            reach += window[0] * stride
            stride *= window[1]
    return (reach, stride) if slides else None


def make_divisible(
    value: float, divisor: int, round_limit: float = 0.0, minimum: int | None = None
) -> int:
    """`value` rounded to the nearest multiple of `divisor`, at least `minimum` (by default
    `divisor`), and one multiple more where that falls below `round_limit` times `value`: timm's
    rounding of attention widths (squeeze-excitation's with round limit 0, the selective
    kernel's with 0.9, split attention's at least 32). The generated code's `make_divisible` is
    this function."""
    rounded = max(minimum or divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


class SelectAttention(Node):
    """How a "select" merge weighs its paths (Li et al., 2019, timm's SelectiveKernelAttn; Zhang
    et al., 2020, timm's SplitAttn): the paths' outputs summed, the channels' means, `reduce` (a
    1x1 convolution) and its norm (the network's kind; none for `norm none`), the activation
    (`act`: ReLU, or the network's), `select` (a 1x1 convolution to one weight per path and
    channel), then across the paths a softmax (or, for one path, a sigmoid: `gate`).

    The weights are ordered by `groups` (ResNeSt's cardinality), then path, then channel within
    the group: weight (g, p, c) of group width G is `select`'s output g * paths * G + p * G + c
    (with one group, path-major). `ratio`, `divisor`, `round_limit` and `minimum` say how the
    reduced width was computed from the channels (timm's `make_divisible`; None: a fixed
    width)."""

    reduce: ConvLayer
    norm: tuple[NormLayer, ...] = ()
    select: ConvLayer
    act: Literal["relu", "network"] = "relu"
    gate: Literal["softmax", "sigmoid"] = "softmax"
    groups: int = 1
    ratio: float | None = None
    divisor: int = 8
    round_limit: float = 0.0
    minimum: int | None = None

    def layers(self) -> tuple[Layer, ...]:
        return (self.reduce, *self.norm, self.select)

    def cost(self) -> Cost:
        """On the channels' means: one pixel."""
        convs = (self.reduce.conv, self.select.conv)
        norms = [x.cost(Shape(channels=x.channels, height=1, width=1)) for x in self.norm]
        return Cost(
            macs=sum(c.in_channels // c.groups * c.out_channels for c in convs),
            params=sum(c.params for c in convs) + sum(x.params for x in norms),
            norm_stats=sum(x.norm_stats for x in norms),
        )


class BranchLayer(Layer):
    """Paths in parallel, merged: a composite layer. With `split`, path k reads the k-th of
    equal slices of the input's channels, in order (Res2Net's scales, SKNet's split input);
    otherwise every path reads the whole input. `merge` says how their outputs join:
    "concat" along the channels, "sum" (ResNeXt's aggregated transformations, Fig. 3a), or
    "select": summed, each path's channels weighted by the `attention` computed from that sum
    (SKNet's selective kernel)."""

    op: Literal["branches"] = "branches"
    channels: int  # the input's
    split: bool
    paths: tuple[BranchPath, ...]
    # Layers before the split that make every path's input at once (ResNeSt's one grouped
    # convolution for all its paths, its norm and activation), named inside the composite.
    shared: tuple[AnyLayer, ...] = ()
    merge: Literal["concat", "sum", "select"] = "concat"
    attention: SelectAttention | None = None  # a "select" merge's
    width: Width = "wide"

    def inputs(self, shape: Shape) -> Shape:
        """The shape each path reads."""
        for layer in self.shared:
            shape = layer.out_shape(shape)
        if not self.split:
            return shape
        return shape.model_copy(update={"channels": shape.channels // len(self.paths)})

    def path_shapes(self, shape: Shape) -> list[Shape]:
        """Each path's output shape, on an input of `shape`."""
        out = []
        for path in self.paths:
            current = self.inputs(shape)
            for layer in path.layers:
                current = layer.out_shape(current)
            out.append(current)
        return out

    def out_shape(self, shape: Shape) -> Shape:
        shapes = self.path_shapes(shape)
        if self.merge != "concat":  # the paths' outputs, summed
            return shapes[0]
        return shapes[0].model_copy(update={"channels": sum(s.channels for s in shapes)})

    def cost(self, shape: Shape) -> Cost:
        costs = [self.attention.cost()] if self.attention is not None else []
        current = shape
        for layer in self.shared:
            costs.append(layer.cost(current))
            current = layer.out_shape(current)
        for path in self.paths:
            current = self.inputs(shape)
            for layer in path.layers:
                costs.append(layer.cost(current))
                current = layer.out_shape(current)
        return Cost(*(sum(column) for column in zip(*costs, strict=True))) if costs else Cost()

    def window(self) -> tuple[int, int] | None:
        """The widest path's reach, and the paths' stride (the paths agree on it: their outputs
        are joined pixel by pixel)."""
        windows = [
            w
            for w in (_path_window((*self.shared, *p.layers)) for p in self.paths)
            if w is not None
        ]
        if not windows:
            return None
        return max(w[0] for w in windows), windows[0][1]

    def parts(self) -> tuple[Layer, ...]:
        attention = self.attention.layers() if self.attention is not None else ()
        inner = (layer for path in self.paths for layer in path.layers)
        return (*self.shared, *inner, *attention)

    def weighted(self) -> tuple[Layer, ...]:
        """The paths' layers with weights in PyTorch's registration order: grouped by the
        attribute that holds them (`convs.0`, `convs.1`, ..., then `bns.0`, ...: Res2Net's
        ModuleLists; `paths.0.conv`, `paths.0.bn`, `paths.1.conv`: a list of paths), each
        group in the order its first member appears; then the attention's."""
        inner = [x for path in self.paths for layer in path.layers for x in layer.weighted()]
        heads = list(dict.fromkeys(x.torch.partition(".")[0] for x in inner))
        ordered = sorted(inner, key=lambda x: heads.index(x.torch.partition(".")[0]))
        attention = self.attention.layers() if self.attention is not None else ()
        return (*(x for layer in self.shared for x in layer.weighted()), *ordered, *attention)

    def words(self, activation: str = "relu") -> str:
        steps = []
        for path in self.paths:
            text = ", ".join(x.words(activation) for x in path.layers) or "pass"
            steps.append(("+previous: " if path.adds_previous else "") + text)
        how = "split" if self.split else "copied"
        merge = self.merge
        if self.attention is not None:
            merge += f" by attention {self.attention.reduce.conv.out_channels}"
        shared = ", ".join(x.words(activation) for x in self.shared)
        text = f"{len(self.paths)} paths ({how}) -> {merge}: " + " | ".join(steps)
        return f"{shared}, then {text}" if shared else text


AnyLayer = Annotated[
    ConvLayer
    | NormLayer
    | ActLayer
    | PoolLayer
    | BlurPoolLayer
    | SqueezeExciteLayer
    | EcaLayer
    | GlobalContextLayer
    | BilinearAttentionLayer
    | LineConvLayer
    | ChannelConvLayer
    | IdentityLayer
    | PadChannelsLayer
    | LinearLayer
    | DropoutLayer
    | GlobalPoolLayer
    | BranchLayer,
    Discriminator("op"),
]
_BUILT_IN = typing.get_args(typing.get_args(AnyLayer)[0])


# Layer types that packages add (resdsl.blocks' plugins), each a subclass of `Layer` with its
# own `op`. They join `AnyLayer` in the IR's pydantic models (resdsl.ir.models).
PLUGIN_LAYERS: list[type[Layer]] = []


def register_layer(layer_type: type[Layer]) -> None:
    """Add a layer type: elaboration may then put it in a block, and the IR's models (dumps,
    the JSON Schema) know it by its `op`."""
    if not (isinstance(layer_type, type) and issubclass(layer_type, Layer)):
        raise TypeError(f"{layer_type!r} is not a subclass of resdsl.ir.Layer")
    op = layer_type._defaults.get("op")
    taken = {cls._defaults.get("op") for cls in PLUGIN_LAYERS if cls is not layer_type}
    taken |= {cls._defaults.get("op") for cls in _BUILT_IN}
    if not isinstance(op, str) or op in taken:
        raise ValueError(f"layer type {layer_type.__name__} needs an `op` of its own, not {op!r}")
    if layer_type not in PLUGIN_LAYERS:
        PLUGIN_LAYERS.append(layer_type)  # the IR's models are built again on next use


def weighted(layers) -> list:
    """The layers of `layers` that hold weights (convolutions, norms, linear layers); channel
    attention as the convolutions inside it."""
    return [inner for layer in layers for inner in layer.weighted()]


def layer_stride(layer) -> int | None:
    """A layer's stride, None for layers without one."""
    window = layer.window()
    return None if window is None else window[1]


def flatten(layers):
    """`layers` with the layers inside each composite one after it, depth first."""
    for layer in layers:
        yield layer
        yield from flatten(layer.parts())
