"""The elaborated network: every block with concrete channels, stride, shortcut, shapes,
parameters and multiply-accumulates. Backends read only this level."""

from __future__ import annotations

from typing import Literal

from resdsl.ir.composite import AnyLayer, layer_stride, weighted
from resdsl.ir.layers import BlurPoolLayer, Conv, ConvLayer, Pool, PoolLayer, Shape
from resdsl.ir.node import Node, Span
from resdsl.ir.spec import (
    Activation,
    BlockLayout,
    BlockSpec,
    ConvBias,
    NormKind,
    StemPreset,
    Waiver,
)


class Stem(Node):
    """The layers before the first stage: convolutions (each followed by a norm and the
    activation when `norm`), then an optional pool. In PyTorch a stem of several convolutions is
    one `conv1` Sequential (timm's deep stem), its layers named `conv1.0`, `conv1.1`, ..."""

    preset: StemPreset
    layers: tuple[AnyLayer, ...]
    norm: bool
    out_shape: Shape
    params: int
    norm_stats: int
    macs: int

    @property
    def convs(self) -> tuple[Conv, ...]:
        return tuple(layer.conv for layer in self.layers if isinstance(layer, ConvLayer))

    @property
    def pool(self) -> Pool | None:
        return next((layer.pool for layer in self.layers if isinstance(layer, PoolLayer)), None)

    @property
    def strides(self) -> tuple[int, ...]:
        """The stride of every layer that has one, in order."""
        return tuple(s for s in (layer_stride(layer) for layer in self.layers) if s)


ShortcutKind = Literal["identity", "subsample", "pad", "project", "pool_project", "none"]


class Shortcut(Node):
    """How a block's input reaches its addition, and its layers (PyTorch's `downsample`
    Sequential, Keras' `{block}_0_*`).

    identity      the input itself; no layers
    subsample     every `stride`-th pixel (a strided 1x1 max pool, as keras' V2 nets)
    pad           option A: subsample or average-pool, then zero channels on both sides
    project       a 1x1 convolution with the block's stride, then a norm (options B and C)
    pool_project  average pool, then a 1x1 convolution and a norm (option D, ResNet-D; in a
                  dilated stage, which does not stride, a 2x2 average padded to keep the size)
    none          no shortcut and no addition: the branch alone (the paper's plain networks)
    """

    kind: ShortcutKind
    stride: int
    layers: tuple[AnyLayer, ...] = ()
    # What the shortcut reads: the block's input, or (pre-activation blocks' projections, as
    # the paper's v2) the input after the block's first norm and activation.
    source: Literal["input", "preactivated"] = "input"
    # "none" where `identity(transition: none)` drops a shape-changing block's shortcut
    # (RegNetZ's transition blocks): the network is residual, the block alone is not
    transition: bool = False

    @property
    def conv(self) -> Conv | None:
        return next((layer.conv for layer in self.layers if isinstance(layer, ConvLayer)), None)

    @property
    def pool(self) -> Pool | None:
        return next((layer.pool for layer in self.layers if isinstance(layer, PoolLayer)), None)


class Block(Node):
    """One residual block: `pre` (a pre-activation block's norm and activation, which its
    branch and, for projections, its shortcut read), the residual `branch` (ending with its
    channel attention, if any), the `shortcut`, the addition (`add`, a Keras name) and `post`
    (a post-activation block's activation after it). `dilation` is its first dilated
    convolution's (the first block of a dilated stage keeps the stage before's, as torchvision
    and timm: timm's `first_dilation`); `stage_dilation` is its stage's, which the convolutions
    marked `stage_dilated` take in every block (timm's `dilation`). Where the two differ, timm
    also anti-aliases a block that does not stride.
    """

    kind: str  # the block kind, whose recipe built it (resdsl.blocks)
    layout: BlockLayout
    preact: bool
    attention: Literal["none", "se", "eca", "gc", "bat"]
    anti_alias: Literal["none", "blur", "avg"]
    in_channels: int
    first_channels: int  # the first convolution's output (mid_channels // reduce_first)
    mid_channels: int
    out_channels: int
    stride: int
    groups: int
    dilation: int
    stage_dilation: int
    pre: tuple[AnyLayer, ...]
    branch: tuple[AnyLayer, ...]
    shortcut: Shortcut
    add: str  # the Keras name of the addition; "" in a plain block, which has none
    post: tuple[AnyLayer, ...]
    shortcut_first: bool = False  # registered before the branch (the naming scheme's order)
    # where the spec puts the attention: "3x3" where the branch has no single inner 3x3
    # leaves it at the end, and the attention pass reports it
    attention_after: Literal["last", "3x3", "activation"] = "last"
    in_shape: Shape
    out_shape: Shape
    params: int
    norm_stats: int
    macs: int

    @property
    def two_dilations(self) -> bool:
        """Whether building the block takes both dilations, as timm's `dilation` and
        `first_dilation`: where they differ, a convolution takes the stage's (a basic block's
        second 3x3) or anti-aliasing runs although the block does not stride."""
        if self.dilation == self.stage_dilation:
            return False
        layers = (*self.pre, *self.branch)
        return any(
            isinstance(x, ConvLayer) and x.stage_dilated and x.conv.kernel > 1 for x in layers
        ) or (
            self.stride == 1
            and any(isinstance(x, (BlurPoolLayer, PoolLayer)) and x.strided for x in layers)
        )

    @property
    def type_name(self) -> str:
        """The block type in the language's words, for people: `preact_bottleneck`."""
        return self.kind

    @property
    def convs(self) -> tuple[Conv, ...]:
        """The residual branch's convolutions, in order."""
        return tuple(layer.conv for layer in self.branch if isinstance(layer, ConvLayer))

    @property
    def layers(self) -> tuple:
        """Every layer in PyTorch's registration order: pre, branch, shortcut, post (the
        shortcut first where the naming scheme registers it first)."""
        if self.shortcut_first:
            return (*self.shortcut.layers, *self.pre, *self.branch, *self.post)
        return (*self.pre, *self.branch, *self.shortcut.layers, *self.post)


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
    # As declared: the width, the stride the stage applies, which block applies it, its
    # dilation, its block type (with the arguments the validation passes check).
    width: int
    stride: int
    strided_block: Literal["first", "last"]
    dilation: int
    block: BlockSpec
    runs: tuple[BlockRun, ...]
    in_shape: Shape
    out_shape: Shape
    params: int
    norm_stats: int
    macs: int
    waivers: tuple[Waiver, ...]
    span: Span
    # Where each of the stage's settings was written (the stage, a parent, or the network):
    # "blocks", "width", "stride", "block", "shortcut", "dilation", ...
    spans: dict[str, Span]
    # How its blocks are named, PyTorch's and Keras' templates (the naming scheme's `block`)
    block_names: tuple[str, str] = ("{stage}.{index}", "{stage}_block{number}")
    # written by a stage generator, whose rule its widths follow (not halve/double)
    generated: bool = False
    # its blocks' letter in Keras 2's RegNet names: X, Y (attention), Z (inverted), V (preact)
    letter: str = "X"

    def _name_fields(self, position: int) -> dict:
        return {
            "stage": self.name,
            "position": self.index,
            "index": position,
            "number": position + 1,
            "letter": self.letter,
        }

    def torch_prefix(self, position: int) -> str:
        """The PyTorch path of block `position` (from 0): `layer1.0`."""
        return self.block_names[0].format(**self._name_fields(position))

    def keras_prefix(self, position: int) -> str:
        """The Keras prefix of block `position`: keras.applications' `conv2_block1`."""
        return self.block_names[1].format(**self._name_fields(position))


class Head(Node):
    """After the last stage: (pre-activation nets) a norm and the activation, the global
    average pool, dropout, the classifier."""

    layers: tuple[AnyLayer, ...]
    norm: bool
    dropout: float
    in_features: int
    classes: int
    params: int
    norm_stats: int
    macs: int


class Conventions(Node):
    conv_bias: ConvBias
    norm: NormKind
    norm_eps: float
    norm_momentum: float
    norm_groups: int
    norm_group_size: int | None = None  # group norm: each group's channels, if not `norm_groups`
    # weight standardization's eps, where the convolutions are standardized (`conv standardized`)
    conv_eps: float | None = None
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
    span: Span
    # Where each network-level setting was written (this file or a parent): "input", "stem" ...
    spans: dict[str, Span]
    # The model's attributes that hold named modules in order (the naming scheme's containers:
    # byobnet's `stem`, `stages`, `head`), each one nn.Sequential in PyTorch
    containers: tuple[str, ...] = ()
    # A block's attributes that hold named modules in order (torchvision's RegNet `f`: its
    # `a`, `b`, `se` and `c`)
    block_containers: tuple[str, ...] = ()

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

    def weighted_layers(self):
        """Every layer with weights, in PyTorch's registration order, as
        (PyTorch path, Keras name, layer): the one list weight porting and the tests read."""
        for layer in weighted(self.stem.layers):
            yield layer.torch, layer.keras, layer
        for _, stage, position, block in self.blocks():
            torch_prefix, keras_prefix = stage.torch_prefix(position), stage.keras_prefix(position)
            for layer in weighted(block.layers):
                yield f"{torch_prefix}.{layer.torch}", f"{keras_prefix}_{layer.keras}", layer
        for layer in weighted(self.head.layers):
            yield layer.torch, layer.keras, layer
