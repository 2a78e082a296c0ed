"""Channel attention as layers of a block's branch: squeeze-excitation, efficient channel
attention, global context and bilinear attention, each with the convolutions (and norms) inside
it as layers of their own, named inside the block, so that weight porting and the reports see
through them."""

from __future__ import annotations

import math
from typing import Literal

from resdsl.ir.layers import ConvLayer, Cost, Layer, NormLayer, Shape, Width
from resdsl.ir.spec import Activation, Gate


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
    # the width its reduced width is a ratio of: the attended one, or the block's input
    # (RegNetY's); and the activation between its convolutions (timm's RegNets: the network's)
    basis: Width | None = None  # None: `width`
    activation: Activation = "relu"

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
        act = "" if self.activation == "relu" else f" {self.activation}"
        return f"se {conv.in_channels}->{conv.out_channels}->{conv.in_channels}{act}, {self.gate}"


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
