"""The intermediate representations, from the text as written to the elaborated network.

Three levels, each produced by one phase:

* the syntax tree (:class:`SpecFile`): settings and stages exactly as written, untyped values;
* the spec (:class:`NetworkSpec`): typed, defaults filled in, ``extends`` resolved, every field
  still pointing at the place that set it;
* the network (:class:`Network`): every block with concrete channels, stride, shortcut, shapes,
  parameters and multiply-accumulates. Backends read only this level.

Every model is frozen and forbids unknown fields, so a phase cannot quietly change what an
earlier one decided, and a typo in a field name is a bug caught at construction.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Span(Node):
    """A range of source text: 1-based line and column, end exclusive; offsets in characters."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int


# --------------------------------------------------------------------------- syntax tree


class Name(Node):
    text: str
    span: Span


class Number(Node):
    value: float
    text: str
    span: Span

    @property
    def is_int(self) -> bool:
        if not math.isfinite(self.value):  # `1e999`, or more digits than a float holds
            return False
        return self.value == int(self.value) and not any(c in self.text for c in ".eE")


class Dims(Node):
    """A size written as `3x224x224` or `3x3`."""

    parts: tuple[int, ...]
    text: str
    span: Span


class String(Node):
    text: str
    span: Span


class Arg(Node):
    name: Name
    value: Value
    span: Span


class Call(Node):
    """A preset or kind with arguments: `bottleneck(expansion: 4)`."""

    name: Name
    args: tuple[Arg, ...]
    span: Span


Value = Call | Name | Number | Dims | String


class Setting(Node):
    key: Name
    value: Value
    span: Span


class StageDecl(Node):
    name: Name
    blocks: Number
    width: Number
    stride: Number | None
    settings: tuple[Setting, ...]
    span: Span


class NetworkDecl(Node):
    name: Name
    extends: String | None
    settings: tuple[Setting, ...]
    stages: tuple[StageDecl, ...]
    span: Span


class SpecFile(Node):
    path: str
    network: NetworkDecl


# --------------------------------------------------------------------------- spec

BlockKind = Literal["basic", "bottleneck", "preact_basic", "preact_bottleneck"]
ShortcutPolicy = Literal["identity", "A", "B", "C", "D"]
StemPreset = Literal["imagenet", "cifar", "deep"]
Activation = Literal["relu", "silu", "gelu"]
ConvBias = Literal["off", "on", "unnormalized"]


class StemSpec(Node):
    """The layers before the first stage, from a preset with overrides."""

    preset: StemPreset
    channels: int
    kernel: int
    stride: int
    width: int  # the deep stem's first two convolutions
    pool: Literal["max", "avg", "none"]
    norm: bool
    span: Span | None


class BlockSpec(Node):
    kind: BlockKind
    expansion: float
    groups: int
    group_width: int | None  # ResNeXt's "d" in 32x4d
    width_factor: float  # Wide ResNet's multiplier of the inner width
    stride_on: Literal["1x1", "3x3"] | None  # bottlenecks only; None: the 3x3 (torchvision)
    span: Span | None


class ShortcutSpec(Node):
    policy: ShortcutPolicy
    # "A": how the spatial size is reduced before zero-padding the channels.
    downsample: Literal["subsample", "avgpool"]
    # "B": what a block whose width stays but whose size halves uses (keras' V2 nets subsample).
    stride_only: Literal["project", "subsample"]
    span: Span | None


class NormSpec(Node):
    kind: Literal["batch"]
    eps: float
    momentum: float  # PyTorch's convention: weight of the new batch statistic
    span: Span | None


class InitSpec(Node):
    scheme: Literal["kaiming", "glorot"]
    zero_last_norm: bool
    span: Span | None


class HeadSpec(Node):
    dropout: float
    norm: (
        bool | None
    )  # None: a norm and activation before the pool exactly when blocks are pre-activation
    span: Span | None


class Waiver(Node):
    rule: Literal["halve_double"]
    span: Span


class StageSpec(Node):
    name: str
    blocks: int
    width: int
    stride: int
    dilation: int
    block: BlockSpec
    shortcut: ShortcutSpec
    strided_block: Literal["first", "last"]
    waivers: tuple[Waiver, ...]
    span: Span
    # Where each overridable field was set: "blocks", "width", "stride", "block", ...
    spans: dict[str, Span]


class NetworkSpec(Node):
    name: str
    file: str
    input: tuple[int, int, int]  # channels, height, width
    classes: int
    stem: StemSpec
    conv_bias: ConvBias
    norm: NormSpec
    activation: Activation
    init: InitSpec
    stochastic_depth: float
    head: HeadSpec
    stages: tuple[StageSpec, ...]
    span: Span
    # Where each network-level setting was written (in this file or a parent).
    spans: dict[str, Span]


# --------------------------------------------------------------------------- network


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

    def out_size(self, size: int) -> int:
        reach = self.dilation * (self.kernel - 1) + 1
        return (size + 2 * self.padding - reach) // self.stride + 1


class Pool(Node):
    kind: Literal["max", "avg"]
    kernel: int
    stride: int
    padding: int
    # A max pool pads with -inf (torchvision) or zeros (keras.applications). The two agree after
    # a ReLU; a stem without norm and activation feeds the pool negative values, and there
    # keras.applications' V2 nets, the reference for such stems, pad with zeros.
    zero_padded: bool = False

    def out_size(self, size: int) -> int:
        return (size + 2 * self.padding - self.kernel) // self.stride + 1


class Stem(Node):
    """Convolutions (each followed by a norm and activation when `norm`), then an optional pool."""

    preset: StemPreset
    convs: tuple[Conv, ...]
    norm: bool
    pool: Pool | None
    out_shape: Shape
    params: int
    norm_stats: int
    macs: int


ShortcutKind = Literal["identity", "subsample", "pad", "project", "pool_project"]


class Shortcut(Node):
    """How a block's input reaches its addition.

    identity      the input itself
    subsample     every `stride`-th pixel (a strided 1x1 max pool in keras' V2 nets)
    pad           option A: subsample or average-pool, then zero channels on both sides
    project       a 1x1 convolution with the block's stride, then a norm (options B and C)
    pool_project  average pool, then a 1x1 convolution and a norm (option D, ResNet-D)
    """

    kind: ShortcutKind
    stride: int
    downsample: Literal["subsample", "avgpool"] | None = None
    pad_before: int = 0
    pad_after: int = 0
    conv: Conv | None = None
    norm: bool = False
    # Pre-activation blocks feed a projection the normalised input, as the paper's v2 does.
    from_preact: bool = False


class Block(Node):
    kind: BlockKind
    in_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    stride_on: Literal["1x1", "3x3"]
    groups: int
    dilation: int
    convs: tuple[Conv, ...]  # the residual branch, in order
    shortcut: Shortcut
    in_shape: Shape
    out_shape: Shape
    params: int
    norm_stats: int
    macs: int


class BlockRun(Node):
    """`count` consecutive identical blocks, the first at network-wide position `first_index`.

    A stage holds at most three runs (the first block, the repeated body, a strided last
    block), so elaborating and checking cost the same for ResNet-20 and ResNet-1202.
    """

    first_index: int
    count: int
    block: Block


class Stage(Node):
    name: str
    index: int
    blocks: int
    runs: tuple[BlockRun, ...]
    in_shape: Shape
    out_shape: Shape
    params: int
    norm_stats: int
    macs: int
    waivers: tuple[Waiver, ...]
    span: Span


class Head(Node):
    norm: bool  # a final norm and activation before the pool (pre-activation nets)
    dropout: float
    in_features: int
    classes: int
    params: int
    norm_stats: int
    macs: int


class Conventions(Node):
    conv_bias: ConvBias
    norm_eps: float
    norm_momentum: float
    activation: Activation
    init: Literal["kaiming", "glorot"]
    zero_last_norm: bool
    stochastic_depth: float


class Source(Node):
    file: str  # the spec's file name without its folder, so output is the same from anywhere
    sha256: str  # of the spec's text followed by its parents' (`extends`)


class Network(Node):
    name: str
    source: Source
    input: Shape
    classes: int
    conventions: Conventions
    stem: Stem
    stages: tuple[Stage, ...]
    head: Head
    total_blocks: int
    params: int  # trainable parameters
    norm_stats: int  # non-trainable running statistics of the norms
    macs: int  # multiply-accumulates of convolutions and the classifier, batch 1
    output_shape: tuple[int]

    def blocks(self):
        """Every block in order, as (network-wide index, stage, position in stage, block)."""
        for stage in self.stages:
            position = 0
            for run in stage.runs:
                for offset in range(run.count):
                    yield run.first_index + offset, stage, position, run.block
                    position += 1

    def drop_path_rate(self, index: int) -> float:
        """Stochastic depth rate of block `index`: linear decay from 0 to the network's rate."""
        if self.total_blocks <= 1:
            return self.conventions.stochastic_depth
        return self.conventions.stochastic_depth * index / (self.total_blocks - 1)


for _model in (Arg, Call):
    _model.model_rebuild()
