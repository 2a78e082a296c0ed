"""The intermediate representations, from the text as written to the elaborated network.

Three levels, each produced by one phase:

* the syntax tree (:class:`SpecFile`): settings and stages exactly as written, untyped values;
* the spec (:class:`NetworkSpec`): typed, defaults filled in, ``extends`` resolved, every field
  still pointing at the place that set it;
* the network (:class:`Network`): every block with concrete channels, stride, shortcut, shapes,
  parameters and multiply-accumulates. Backends read only this level.

Every node is frozen and forbids unknown fields, so a phase cannot quietly change what an
earlier one decided, and a typo in a field name is a bug caught at construction.

The phases build nodes from values they have already checked, so constructing a node checks
only its field names (unknown or missing ones raise TypeError) and validates nothing. Nodes are
plain classes, not pydantic models: importing pydantic's model machinery and creating a model
class for each node would cost a short-lived command such as `resdsl check` more than all its
own work (see the README's Speed section). pydantic still defines what a node may hold: each
node class has a model with the same name, fields and docstring, derived on first use by
:mod:`resdsl.ir_models`, behind the methods nodes share with pydantic's models
(`model_validate`, `model_validate_json`, `model_json_schema`, `model_dump`,
`model_dump_json`, `model_fields`). Validation proper applies wherever data comes from outside:
`Network.model_validate_json(...)`, and the tests, which validate every spec's IR at every level
against the models.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal, NamedTuple


class _ModelFields:
    """`NodeClass.model_fields`: its model's fields (pydantic's FieldInfo), by name, in order."""

    def __get__(self, instance: Node | None, owner: type[Node]) -> dict[str, Any]:
        from .ir_models import model

        return model(owner).model_fields


_REQUIRED = object()  # in `Node._template`: a field without a default


class Node:
    """A node of the IR: immutable, built from keyword arguments. Its fields are its class's
    annotations, after its base class's, each with an optional default (`stride: int = 1`)."""

    # Every subclass's layout, set by __init_subclass__.
    _fields: ClassVar[tuple[str, ...]] = ()
    _names: ClassVar[frozenset[str]] = frozenset()
    _required: ClassVar[frozenset[str]] = frozenset()
    _defaults: ClassVar[dict[str, Any]] = {}
    # Every field in order, with its default or `_REQUIRED`: a node's values are a copy of this
    # updated with the keywords given (updating keeps the order), two C-level dict operations.
    _template: ClassVar[dict[str, Any]] = {}
    model_fields: ClassVar[dict[str, Any]] = _ModelFields()  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__annotations__  # the class's own (since Python 3.10), strings
        cls._fields = (*cls._fields, *(name for name in own if name not in cls._names))
        cls._names = frozenset(cls._fields)
        inherited = {name: v for name, v in cls._defaults.items() if name not in own}
        cls._defaults = {**inherited, **{n: cls.__dict__[n] for n in own if n in cls.__dict__}}
        cls._required = cls._names - cls._defaults.keys()
        cls._template = {name: cls._defaults.get(name, _REQUIRED) for name in cls._fields}

    def __init__(self, /, **fields: Any) -> None:
        cls = type(self)
        if not (fields.keys() <= cls._names and cls._required <= fields.keys()):
            _bad_fields(cls, fields)
        values = cls._template.copy()
        values.update(fields)
        object.__setattr__(self, "__dict__", values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: use model_copy(update=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """(name, value) of every field, in order, as pydantic's models: `dict(node)`."""
        return iter(self.__dict__.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._fields_text(', ')})"

    def __str__(self) -> str:
        return self._fields_text(" ")

    def _fields_text(self, separator: str) -> str:
        return separator.join(f"{name}={value!r}" for name, value in self.__dict__.items())

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Any:
        """A copy with the fields in `update` replaced (checked for their names only)."""
        return type(self)(**{**self.__dict__, **(update or {})})

    # What needs pydantic goes through the node class's model (resdsl.ir_models).

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Any:
        from .ir_models import validate

        return validate(cls, obj, **options)

    @classmethod
    def model_validate_json(cls, data: str | bytes, **options: Any) -> Any:
        from .ir_models import validate_json

        return validate_json(cls, data, **options)

    @classmethod
    def model_json_schema(cls, **options: Any) -> dict[str, Any]:
        from .ir_models import model

        return model(cls).model_json_schema(**options)

    def model_dump(self, **options: Any) -> dict[str, Any]:
        from .ir_models import as_model

        return as_model(self).model_dump(**options)

    def model_dump_json(self, **options: Any) -> str:
        from .ir_models import as_model

        return as_model(self).model_dump_json(**options)


def _bad_fields(cls: type[Node], fields: Mapping[str, Any]) -> None:
    unknown, missing = fields.keys() - cls._names, cls._required - fields.keys()
    problems = [
        f"{what} {', '.join(sorted(found))}"
        for what, found in (("unknown", unknown), ("missing", missing))
        if found
    ]
    raise TypeError(f"{cls.__name__}: " + "; ".join(problems))


class Discriminator(NamedTuple):
    """Marks a union of node classes that one field tells apart (`op` of layers): pydantic's
    discriminated union in the models (`Field(discriminator=...)`)."""

    field: str


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

BlockLayout = Literal["basic", "bottleneck"]
ShortcutPolicy = Literal["identity", "A", "B", "C", "D", "none"]
StemPreset = Literal["imagenet", "cifar", "deep"]
StemPool = Literal["max", "avg", "conv", "none"]
NormKind = Literal["batch", "group"]
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
    span: Span | None


class BlockSpec(Node):
    """A block type as data: its layout, whether it is pre-activation, and its widths.

    `name` is the type as the spec wrote it (`preact_bottleneck`), kept for messages only: no
    phase decides anything from it.
    """

    name: str
    layout: BlockLayout
    preact: bool  # a norm and activation before each convolution (the paper's v2)
    expansion: float
    groups: int
    group_width: int | None  # ResNeXt's "d" in 32x4d
    width_factor: float  # Wide ResNet's multiplier of the inner width
    stride_on: Literal["1x1", "3x3"] | None  # bottlenecks only; None: the 3x3 (torchvision)
    # The first convolution's output is the inner width divided by this (timm's
    # `block_reduce_first`, 2 in SENet-154).
    reduce_first: int
    span: Span | None


class AttentionSpec(Node):
    """Channel attention at the end of each block's branch (`attention se(...)` or `eca`)."""

    kind: Literal["none", "se", "eca"]
    # squeeze-excitation: the reduced width is `width`, or the channels divided by `reduction`
    # and rounded to a multiple of `divisor` (timm's make_divisible with round_limit 0)
    reduction: float
    width: int | None
    divisor: int
    gate: Gate
    # ECA: a fixed odd `kernel`, or (None) the kernel timm computes from the channels with
    # `gamma` and `beta`
    kernel: int | None
    gamma: float
    beta: float
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
    span: Span | None


class NormSpec(Node):
    kind: NormKind
    eps: float
    momentum: float  # batch norm, PyTorch's convention: weight of the new batch statistic
    groups: int  # group norm
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
    attention: AttentionSpec
    anti_alias: AntiAliasSpec
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
    anti_alias: AntiAliasSpec  # the network's, which its stem's pool follows
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

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """PyTorch's layout: (out, in / groups, kernel, kernel)."""
        return (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel)

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
# "reduced": a squeeze-excitation's inner width.
Width = Literal["in", "first", "mid", "out", "reduced"]


class Layer(Node):
    torch: str
    keras: str


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


class NormLayer(Layer):
    op: Literal["norm"] = "norm"
    channels: int
    width: Width = "out"
    zero_init: bool = False  # scale starts at zero (`zero_last_norm`)
    kind: NormKind = "batch"  # the network's (see Conventions); group norm has no statistics


class ActLayer(Layer):
    """The network's activation. In PyTorch one module serves a whole block (or the model), so
    every activation of an owner has the same `torch` name; Keras names each use."""

    op: Literal["act"] = "act"


class PoolLayer(Layer):
    op: Literal["pool"] = "pool"
    pool: Pool
    strided: bool = False  # window and stride are the block's stride (a shortcut's pool)


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


class ChannelConvLayer(Layer):
    """ECA's convolution: 1-d, across the channels, of odd `kernel`, no bias. Its PyTorch
    weight is (1, 1, kernel), its Keras Conv1D kernel (kernel, 1, 1)."""

    op: Literal["channel_conv"] = "channel_conv"
    kernel: int


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


class LinearLayer(Layer):
    op: Literal["linear"] = "linear"
    in_features: int
    out_features: int
    bias: bool = True


class DropoutLayer(Layer):
    op: Literal["dropout"] = "dropout"
    rate: float


class GlobalPoolLayer(Layer):
    """Average over height and width, to a vector of features."""

    op: Literal["global_pool"] = "global_pool"


AnyLayer = Annotated[
    ConvLayer
    | NormLayer
    | ActLayer
    | PoolLayer
    | BlurPoolLayer
    | SqueezeExciteLayer
    | EcaLayer
    | ChannelConvLayer
    | IdentityLayer
    | PadChannelsLayer
    | LinearLayer
    | DropoutLayer
    | GlobalPoolLayer,
    Discriminator("op"),
]


def weighted(layers) -> list:
    """The layers of `layers` that hold weights (convolutions, norms, linear layers); channel
    attention as the convolutions inside it."""
    out = []
    for layer in layers:
        if isinstance(layer, SqueezeExciteLayer):
            out += [layer.reduce, layer.expand]
        elif isinstance(layer, EcaLayer):
            out.append(layer.conv)
        elif isinstance(layer, (ConvLayer, NormLayer, LinearLayer)):
            out.append(layer)
    return out


# --------------------------------------------------------------------------- network: parts


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


def layer_stride(layer) -> int | None:
    """A layer's stride, None for layers without one."""
    if isinstance(layer, ConvLayer):
        return layer.conv.stride
    if isinstance(layer, PoolLayer):
        return layer.pool.stride
    if isinstance(layer, BlurPoolLayer):
        return layer.stride
    return None


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

    layout: BlockLayout
    preact: bool
    attention: Literal["none", "se", "eca"]
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
        return ("preact_" if self.preact else "") + self.layout

    @property
    def convs(self) -> tuple[Conv, ...]:
        """The residual branch's convolutions, in order."""
        return tuple(layer.conv for layer in self.branch if isinstance(layer, ConvLayer))

    @property
    def layers(self) -> tuple:
        """Every layer in PyTorch's registration order: pre, branch, shortcut, post."""
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

    def torch_prefix(self, position: int) -> str:
        """The PyTorch path of block `position` (from 0): `layer1.0`."""
        return f"{self.name}.{position}"

    def keras_prefix(self, position: int) -> str:
        """keras.applications' prefix of block `position`, counting from 1: `conv2_block1`."""
        return f"{self.name}_block{position + 1}"


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
