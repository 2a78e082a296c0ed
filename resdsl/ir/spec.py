"""The spec: typed, defaults filled in, `extends` resolved, every field still pointing at the
place that set it."""

from __future__ import annotations

from typing import Any, Literal

from resdsl.ir.node import Node, Span

BlockLayout = str  # the recipe's structure in words: "basic", "bottleneck", ...
ShortcutPolicy = Literal["identity", "A", "B", "C", "D", "none"]
StemPreset = Literal["imagenet", "cifar", "deep", "quad"]
StemPool = Literal["max", "max_ceil", "avg", "conv", "none"]
NormKind = Literal["batch", "group", "evonorm_s0", "frn", "none"]
# The norms that hold their nonlinearity: no activation follows them.
FUSED_NORMS = frozenset({"evonorm_s0", "frn"})
Gate = Literal["sigmoid", "hard_sigmoid"]
Activation = Literal["relu", "silu", "gelu"]
ConvBias = Literal["off", "on", "unnormalized"]


class StemSpec(Node):
    """The layers before the first stage, from a preset with overrides."""

    preset: StemPreset
    channels: int
    kernel: int
    stride: int
    width: int  # the deep stem's second convolution (and its first, unless `first_width`)
    first_width: int | None  # the deep stem's first convolution (timm's tiered stem: 24)
    # "conv": a strided 3x3 convolution, its norm and activation (ResNet-RS, timm's
    # `replace_stem_pool`)
    pool: StemPool
    norm: bool
    # the last convolution's stride (a deep or quad stem's; 2 where, without a pool, the stem
    # still reduces by 4, as timm's byobnet stems)
    last_stride: int = 1
    plain: int = 0  # a quad stem's first convolutions without a norm or activation
    # the max pool's padding: zeros or ignored (-inf); None: zeros exactly without a norm
    pool_pad: Literal["zero", "ignore"] | None = None
    last_norm: bool = True  # a deep stem's last convolution has its norm and activation
    span: Span | None


class BlockSpec(Node):
    """A block kind and its arguments. `name` is the kind (`preact_bottleneck`): its recipe
    in :data:`resdsl.blocks.RECIPES` builds the block's layers; `layout` and `preact` are the
    recipe's structure in words, for the reports and importers."""

    name: str
    layout: BlockLayout
    preact: bool  # a norm and activation before each convolution (the paper's v2)
    expansion: float
    groups: int
    group_width: int | None  # ResNeXt's "d" in 32x4d
    # each group's channels, whatever the stage's width (byobnet's and RegNet's group size):
    # the groups are the inner width over it
    group_size: int | None = None
    width_factor: float  # Wide ResNet's multiplier of the inner width
    stride_on: Literal["1x1", "3x3"] | None  # bottlenecks only; None: the 3x3 (torchvision)
    # The first convolution's output is the inner width divided by this (timm's
    # `block_reduce_first`, 2 in SENet-154).
    reduce_first: int
    span: Span | None
    # The arguments of the kind beyond those above (a plugin's), sorted by name.
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str) -> Any:
        return dict(self.options)[name]


class AttentionSpec(Node):
    """Channel attention in each block's branch (`attention se(...)`, `eca`, `gc` or `bat`)."""

    kind: Literal["none", "se", "eca", "gc", "bat"]
    # squeeze-excitation and global context: the reduced width is `width`, or the channels
    # divided by `reduction` and rounded to a multiple of `divisor` (timm's make_divisible with
    # round_limit 0)
    reduction: float
    width: int | None
    divisor: int
    gate: Gate
    # ECA: a fixed odd `kernel`, or (None) the kernel timm computes from the channels with
    # `gamma` and `beta`
    kernel: int | None
    gamma: float
    beta: float
    # global context: its term is added to every position, or gates the channels
    fuse: Literal["add", "scale"] = "add"
    # bilinear attention: the side of its matrices, its groups and its channel dropout (its
    # width as squeeze-excitation's)
    block_size: int = 7
    groups: int = 2
    dropout: float = 0.2
    # after the branch's last convolution, or after a bottleneck's 3x3 and its activation
    # or after the last norm and an activation of its own (timm's legacy SE-ResNet basic block)
    after: Literal["last", "3x3", "activation"] = "last"
    # squeeze-excitation: reduced from the attended channels or from the block's input
    # (RegNetY), through ReLU or the network's activation
    of: Literal["channels", "input"] = "channels"
    activation: Literal["relu", "network"] = "relu"
    span: Span | None


class AntiAliasSpec(Node):
    """Anti-aliased downsampling (`anti_alias blur` or `avg`): a strided convolution runs at
    stride 1 and a blur pool (binomial filter of `size`) or a 2x2 average pool applies the
    stride after its activation; the stem's pool does the same (timm's `aa_layer`)."""

    kind: Literal["none", "blur", "avg"]
    size: int
    span: Span | None


class ShortcutSpec(Node):
    policy: ShortcutPolicy
    # "A": how the spatial size is reduced before zero-padding the channels.
    downsample: Literal["subsample", "avgpool"]
    # "B": what a block whose width stays but whose size halves uses (keras' V2 nets subsample).
    stride_only: Literal["project", "subsample"]
    # "B", "C": the projection's kernel where it strides (SENet-154's 3x3, timm's
    # `down_kernel_size`); a projection at stride 1 is always 1x1.
    kernel: int
    # "identity" with `transition: none`: no shortcut where the shape changes (RegNetZ)
    transition: Literal["identity", "none"] = "identity"
    # what a pre-activation block's identity shortcut adds: its input, or its first norm and
    # activation's output (timm's RegNetV)
    identity: Literal["input", "preactivated"] = "input"
    span: Span | None


class NormSpec(Node):
    kind: NormKind
    eps: float
    momentum: float  # batch norm, PyTorch's convention: weight of the new batch statistic
    groups: int  # group norm
    size: int | None = None  # group norm: each group's channels, in place of `groups`
    span: Span | None


class ConvSpec(Node):
    kind: Literal["plain", "standardized"] = "plain"
    eps: float = 1e-6  # weight standardization's, added to the variance
    span: Span | None = None


class InitSpec(Node):
    scheme: Literal["kaiming", "glorot"]
    zero_last_norm: bool
    span: Span | None


class HeadSpec(Node):
    dropout: float
    norm: (
        bool | None
    )  # None: a norm and activation before the pool exactly when blocks are pre-activation
    features: int | None = None  # a 1x1 convolution to this width before the pool
    # the activation before the pool; None: exactly where the norm is
    act: bool | None = None
    # the classifier: a Linear, or a 1x1 convolution on the pooled features (timm's ResNetV2)
    classifier: Literal["linear", "conv"] = "linear"
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
    attention: AttentionSpec
    anti_alias: AntiAliasSpec
    strided_block: Literal["first", "last"]
    waivers: tuple[Waiver, ...]
    span: Span
    # Where each overridable field was set: "blocks", "width", "stride", "block", ...
    spans: dict[str, Span]
    # written by a stage generator (`stages regnet(...)`), whose rule its widths follow
    generated: bool = False


class NetworkSpec(Node):
    name: str
    file: str
    input: tuple[int, int, int]  # channels, height, width
    classes: int
    stem: StemSpec
    conv_bias: ConvBias
    norm: NormSpec
    conv: ConvSpec = ConvSpec()
    activation: Activation
    anti_alias: AntiAliasSpec  # the network's, which its stem's pool follows
    init: InitSpec
    stochastic_depth: float
    head: HeadSpec
    naming: str  # the state-dict layout (resdsl.ir.naming.NAMINGS)
    stages: tuple[StageSpec, ...]
    span: Span
    # Where each network-level setting was written (in this file or a parent).
    spans: dict[str, Span]
