"""The arguments of the generated code's block classes, stage calls and shortcut functions:
the values a class takes rather than writes (:class:`Sym`, :class:`Divisible`), what each layer
states (:func:`layer_fields`), and the abstraction of the fields of many blocks' layers into
one class's (:func:`abstract`), which the plan checks by substituting each block's values back
(:func:`instantiate`)."""

from __future__ import annotations

from dataclasses import dataclass

from resdsl.ir import (
    Block,
    BlurPoolLayer,
    ConvLayer,
    EcaLayer,
    PadChannelsLayer,
    PoolLayer,
    SqueezeExciteLayer,
)


@dataclass(frozen=True)
class Sym:
    """A value the generated code takes as an argument (`scale * name`, `name // divisor`)
    rather than writes."""

    name: str
    scale: int = 1
    divisor: int = 1

    @property
    def names(self) -> frozenset[str]:
        return frozenset({self.name})

    def evaluate(self, env: dict) -> int:
        return env[self.name] * self.scale // self.divisor

    def __str__(self) -> str:
        return self.render({self.name: self.name})

    def render(self, names: dict[str, str]) -> str:
        """The expression, with the argument called as `names` says."""
        name = names[self.name]
        text = name if self.scale == 1 else f"{self.scale} * {name}"
        return text if self.divisor == 1 else f"{text} // {self.divisor}"


@dataclass(frozen=True)
class Divisible:
    """Squeeze-excitation's inner width as the generated code computes it from the block's:
    `make_divisible(channels / reduction, divisor)` (timm's rounding, see `make_divisible`)."""

    channels: Sym
    ratio: float
    divisor: int

    @property
    def reduction(self) -> int | float:
        """What the channels are divided by, written as an integer where it is one."""
        value = 1 / self.ratio
        return int(value) if value == int(value) else value

    @property
    def names(self) -> frozenset[str]:
        return self.channels.names

    def evaluate(self, env: dict) -> int:
        return make_divisible(self.channels.evaluate(env) / self.reduction, self.divisor)

    def __str__(self) -> str:
        return self.render({name: name for name in self.names})

    def render(self, names: dict[str, str]) -> str:
        channels = self.channels.render(names)
        return f"make_divisible({channels} / {self.reduction!r}, {self.divisor})"


def make_divisible(value: float, divisor: int) -> int:
    """The generated `make_divisible`, run here to check the widths it gives."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


EXPRESSIONS = (Sym, Divisible)


def field_values(node, exclude: frozenset[str] = frozenset()) -> dict:
    """A node's fields as a dict, nested nodes kept as they are. (Not `model_dump`, whose
    serializer pydantic would build at first use: a cost `compile` need not pay.)"""
    return {name: value for name, value in node if name not in exclude}


def layer_fields(layer) -> dict:
    """The values of a layer that the generated code states (its IR fields but the names).
    A helper class's fixed parts (SqueezeExcite's 1x1 convolutions, BlurPool2d's padding) are
    checked by :func:`_implied` instead."""
    if isinstance(layer, ConvLayer):
        return field_values(layer.conv)
    if isinstance(layer, PoolLayer):
        return field_values(layer.pool)
    if isinstance(layer, BlurPoolLayer):
        return {"channels": layer.channels, "size": layer.size, "stride": layer.stride}
    if isinstance(layer, SqueezeExciteLayer):
        conv = layer.reduce.conv
        return {"channels": conv.in_channels, "reduced": conv.out_channels}
    if isinstance(layer, EcaLayer):
        return {"kernel": layer.conv.kernel}
    return field_values(layer, frozenset({"op", "torch", "keras", "width", "zero_init"}))


def instantiate(fields: dict, env: dict) -> dict | None:
    """`fields` with each argument replaced by its value in `env` (None if one is missing)."""
    out = {}
    for name, value in fields.items():
        if isinstance(value, EXPRESSIONS):
            if not value.names <= env.keys():
                return None
            value = value.evaluate(env)
        out[name] = value
    return out


def block_env(block: Block, two_dilations: bool = False) -> dict:
    """What a block class knows of a block. With `two_dilations` (timm's convention, see
    `Block.two_dilations`), `dilation` is the stage's and `first_dilation` the block's own; else
    `dilation` is the block's own (torchvision's)."""
    env = {
        "in_channels": block.in_channels,
        "mid_channels": block.mid_channels,
        "out_channels": block.out_channels,
        "stride": block.stride,
        "groups": block.groups,
        "dilation": block.stage_dilation if two_dilations else block.dilation,
    }
    if two_dilations:
        env["first_dilation"] = block.dilation
    # ECA's kernel follows from the block's width by a logarithm: the stage gives it.
    kernels = [x.conv.kernel for x in block.branch if isinstance(x, EcaLayer)]
    if kernels:
        env["eca_kernel"] = kernels[0]
    return env


def shortcut_env(block: Block) -> dict:
    """What a shortcut function knows of a block; `pad_*` are `PadChannels`' rule."""
    grow = block.out_channels - block.in_channels
    return {
        "in_channels": block.in_channels,
        "out_channels": block.out_channels,
        "stride": block.stride,
        "pad_before": grow // 2,
        "pad_after": grow - grow // 2,
    }


# What a block class may take besides its widths and stride, in the order it takes them, and
# the defaults it gives them.
OPTION_DEFAULTS = {"groups": 1, "dilation": 1, "first_dilation": None, "eca_kernel": 3}
OPTIONS = tuple(OPTION_DEFAULTS)
BLOCK_SYMBOLS = frozenset(("in_channels", "mid_channels", "out_channels", "stride", *OPTIONS))


def registered(env: dict) -> bool:
    """Whether a class registers its `optional` layers for a block: where it strides, and
    (timm's `use_aa`) where its dilation changes."""
    return env["stride"] != 1 or env.get("first_dilation", env["dilation"]) != env["dilation"]


SHORTCUT_WIDTHS = {"in": Sym("in_channels"), "out": Sym("out_channels")}


def block_widths(block: Block) -> dict[str, Sym]:
    """A block class's widths as its arguments give them: the first convolution's output is
    the inner width over `reduce_first`, which the class writes as a division."""
    reduce_first = max(1, block.mid_channels // block.first_channels)
    return {
        "in": Sym("in_channels"),
        "first": Sym("mid_channels", divisor=reduce_first),
        "mid": Sym("mid_channels"),
        "out": Sym("out_channels"),
    }


def abstract(layers: list, symbols: frozenset[str], widths: dict[str, Sym]) -> dict:
    """The fields of the layers at one position of several blocks, with what varies from block to
    block (or may, as a width) replaced by the argument that gives it. The caller checks the
    result against every block."""
    first = layers[0]
    fields = layer_fields(first)
    width = getattr(first, "width", None)
    if width in widths and "channels" in fields:  # norms, blur pools, attention
        fields["channels"] = widths[width]
    if isinstance(first, ConvLayer):
        fields["in_channels"] = widths.get(first.source, fields["in_channels"])
        fields["out_channels"] = widths.get(first.target, fields["out_channels"])
        if first.strided:
            fields["stride"] = Sym("stride")
        if "groups" in symbols and any(layer.conv.groups > 1 for layer in layers):
            fields["groups"] = Sym("groups")
        dilated = [layer.conv for layer in layers if layer.conv.dilation > 1]
        # Under timm's two dilations the block's own is `first_dilation`.
        name = "dilation"
        if "first_dilation" in symbols and not first.stage_dilated:
            name = "first_dilation"
        if name in symbols and dilated:
            fields["dilation"] = Sym(name)
            fields["padding"] = Sym(name, dilated[0].padding // dilated[0].dilation)
    elif isinstance(first, PoolLayer) and first.strided:
        fields["stride"] = Sym("stride")
        if any(layer.pool.kernel == layer.pool.stride > 1 for layer in layers):
            fields["kernel"] = Sym("stride")
    elif isinstance(first, BlurPoolLayer) and first.strided:
        fields["stride"] = Sym("stride")
    elif isinstance(first, SqueezeExciteLayer) and first.ratio is not None and width in widths:
        fields["reduced"] = Divisible(widths[width], first.ratio, first.divisor)
    elif isinstance(first, EcaLayer) and first.gamma is not None and "eca_kernel" in symbols:
        fields["kernel"] = Sym("eca_kernel")
    elif isinstance(first, PadChannelsLayer):
        fields = {"before": Sym("pad_before"), "after": Sym("pad_after")}
    return fields


def structure(layer) -> tuple:
    """What a block class fixes of a layer: its type, name and flags, and the values that no
    argument gives (a kernel size, a bias, a fixed attention width)."""
    meta = field_values(layer, frozenset({"keras", "conv", "pool", "reduce", "expand"}))
    fields = layer_fields(layer)
    varying = {"in_channels", "out_channels", "channels", "groups", "dilation", "padding"}
    if getattr(layer, "strided", False):
        varying |= {"stride", "kernel"} if isinstance(layer, PoolLayer) else {"stride"}
    if isinstance(layer, PadChannelsLayer):
        varying |= {"before", "after"}
    if isinstance(layer, SqueezeExciteLayer) and layer.ratio is not None:
        varying.add("reduced")
    if isinstance(layer, EcaLayer) and layer.gamma is not None:
        varying.add("kernel")
    kept = {k: v for k, v in {**meta, **fields}.items() if k not in varying}
    return tuple(sorted(kept.items()))


def optional(layer) -> bool:
    """Whether a block's layer only applies its stride (anti-aliasing: a blur or average pool
    after a convolution that no longer strides). Blocks at stride 1 lack it; their class
    registers `nn.Identity()` in its place, as timm."""
    return isinstance(layer, (BlurPoolLayer, PoolLayer)) and layer.strided


def symbols_of(fields: list[dict]) -> set[str]:
    """The arguments that `fields` use."""
    return {
        name for f in fields for v in f.values() if isinstance(v, EXPRESSIONS) for name in v.names
    }
