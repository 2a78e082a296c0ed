"""Composite layers (paths in parallel, merged), the union of every layer type the IR's models
know (`AnyLayer`), the registry of the layer types packages add, and the walks over layers that
see inside composites."""

from __future__ import annotations

import typing
from typing import Annotated, Literal

from resdsl.ir.attention import (
    BilinearAttentionLayer,
    ChannelConvLayer,
    EcaLayer,
    GlobalContextLayer,
    LineConvLayer,
    SqueezeExciteLayer,
)
from resdsl.ir.layers import (
    ActLayer,
    BlurPoolLayer,
    ConvLayer,
    Cost,
    DropoutLayer,
    GlobalPoolLayer,
    IdentityLayer,
    Layer,
    LinearLayer,
    NormLayer,
    PadChannelsLayer,
    PoolLayer,
    Shape,
    Width,
)
from resdsl.ir.node import Discriminator, Node

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
