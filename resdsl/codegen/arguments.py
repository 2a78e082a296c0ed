"""The arguments of the generated code's block classes, stage calls and shortcut functions:
the values a class takes rather than writes (:class:`Sym`, :class:`Divisible`), what each layer
states (:func:`layer_fields`), and the abstraction of the fields of many blocks' layers into
one class's (:func:`abstract`), which the plan checks by substituting each block's values back
(:func:`instantiate`)."""

from __future__ import annotations

from typing import NamedTuple

from resdsl.ir import (
    BilinearAttentionLayer,
    Block,
    BlurPoolLayer,
    BranchLayer,
    Conv,
    ConvLayer,
    EcaLayer,
    GlobalContextLayer,
    PadChannelsLayer,
    PoolLayer,
    SqueezeExciteLayer,
    make_divisible,
)

# Named tuples, not frozen dataclasses, for what `compile` imports (resdsl.codegen.layout says
# why).


class Sym(NamedTuple):
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


class Divisible(NamedTuple):
    """An attention's inner width as the generated code computes it from the block's:
    `make_divisible(channels / reduction, divisor)`, with the selective kernel's round limit
    (timm's rounding, :func:`resdsl.ir.make_divisible`)."""

    channels: Sym
    ratio: float
    divisor: int
    round_limit: float = 0.0
    minimum: int | None = None
    # Python's round, half to even, in place of make_divisible by 1 (RegNet's squeeze-excitation
    # of the block's input: timm's and torchvision's int(round(in_chs * se_ratio)))
    rounded: bool = False

    @property
    def reduction(self) -> int | float:
        """What the channels are divided by, written as an integer where it is one."""
        value = 1 / self.ratio
        return int(value) if value == int(value) else value

    @property
    def names(self) -> frozenset[str]:
        return self.channels.names

    def evaluate(self, env: dict) -> int:
        value = self.channels.evaluate(env) / self.reduction
        if self.rounded:
            return max(1, round(value))
        return make_divisible(value, self.divisor, self.round_limit, self.minimum)

    def __str__(self) -> str:
        return self.render({name: name for name in self.names})

    def render(self, names: dict[str, str]) -> str:
        channels = self.channels.render(names)
        limit = f", {self.round_limit!r}" if self.round_limit or self.minimum else ""
        limit += f", {self.minimum}" if self.minimum else ""
        value = channels if self.reduction == 1 else f"{channels} / {self.reduction!r}"
        if self.rounded:
            return f"max(1, round({value}))"
        return f"make_divisible({value}, {self.divisor}{limit})"


def first_of_stage(env: dict) -> bool:
    """Whether a block is its stage's first, as the generated code tests it: it strides or
    widens (Res2Net's `is_first`)."""
    return env["stride"] != 1 or env["in_channels"] != env["out_channels"]


FIRST_OF_STAGE = frozenset({"stride", "in_channels", "out_channels"})


class Paths(NamedTuple):
    """A composite layer's paths as a block class writes them (:class:`resdsl.ir.BranchLayer`):
    `copies` of one path, whose input (but the first's) adds the previous path's output
    except in a stage's first block (`cascades`, the addition named `add`), then a `last`
    path that only a stage's first block has where `first_only` (see :func:`first_of_stage`).
    Each layer is (op, PyTorch name with `{i}` for the path's index, Keras name with `{n}`
    for its number from 1, abstract fields). Evaluates to :func:`paths_of`'s form."""

    copies: int
    repeated: tuple
    cascades: bool
    add: str
    last: tuple
    first_only: bool
    # The IR's layers of one repeated path and of a last path, for the backends' emitters (the
    # layer types and the values no argument gives).
    repeated_layers: tuple = ()
    last_layers: tuple = ()

    @property
    def names(self) -> frozenset[str]:
        inner = symbols_of([f for *_, f in (*self.repeated, *self.last)])
        tests = self.cascades or self.first_only
        return frozenset(inner | (FIRST_OF_STAGE if tests else set()))

    def evaluate(self, env: dict) -> tuple | None:
        first = first_of_stage(env) if self.cascades or self.first_only else True
        paths = []
        for i in range(self.copies):
            layers = tuple(
                (op, torch.format(i=i), keras.format(n=i + 1), instantiate(f, env))
                for op, torch, keras, f in self.repeated
            )
            adds = self.cascades and i > 0 and not first
            paths.append((adds, self.add.format(n=i + 1) if adds else "", layers))
        kept = first or not self.first_only
        last = tuple((op, t, k, instantiate(f, env)) for op, t, k, f in self.last) if kept else ()
        return (*paths, (False, "", last))


def paths_of(layer: BranchLayer) -> tuple:
    """A composite layer's paths as the rebuild check compares them: (adds the previous
    path's output, that addition's Keras name, each layer as (op, PyTorch name, Keras name,
    fields)) per path."""
    return tuple(
        (
            path.adds_previous,
            path.add,
            tuple((x.op, x.torch, x.keras, layer_fields(x)) for x in path.layers),
        )
        for path in layer.paths
    )


def _template(names: dict[int, str], separator: str, field: str, base: int) -> str:
    """Every path's name from the names of some (`names`: path index -> name), the part that
    varies from path to path (with one path, its last part that is its index plus `base`) as
    `{field}`: `convs.0`, `convs.1` give `convs.{i}`; `2_2_add`, `2_3_add` give `2_{n}_add`.
    The rebuild check catches a name this reads wrongly."""
    (index, name), *others = names.items()
    parts = name.split(separator)
    varying = {
        k
        for _, other in others
        for k, (a, b) in enumerate(zip(parts, other.split(separator), strict=False))
        if a != b
    }
    if not others:
        varying = set([k for k, part in enumerate(parts) if part == str(index + base)][-1:])
    return separator.join(f"{{{field}}}" if k in varying else x for k, x in enumerate(parts))


def _abstract_paths(members: list[BranchLayer], symbols: frozenset[str], widths: dict) -> Paths:
    """The paths of one composite layer of several blocks, abstracted: the repeated path from
    the first path of each, the last path from a block that has one (see :class:`Paths`)."""
    template = members[0]
    repeated_paths = dict(enumerate(template.paths[:-1]))

    def names(j: int, framework: str) -> dict[int, str]:
        return {k: getattr(p.layers[j], framework) for k, p in repeated_paths.items()}

    repeated = tuple(
        (
            x.op,
            _template(names(j, "torch"), ".", "i", 0),
            _template(names(j, "keras"), "_", "n", 1),
            abstract([m.paths[0].layers[j] for m in members], symbols, widths),
        )
        for j, x in enumerate(template.paths[0].layers)
    )
    adding = next((m for m in members if any(p.adds_previous for p in m.paths)), None)
    adds = {k: p.add for k, p in enumerate(adding.paths) if p.adds_previous} if adding else {}
    lasts = [m.paths[-1].layers for m in members]
    last = next((layers for layers in lasts if layers), ())
    return Paths(
        copies=len(template.paths) - 1,
        repeated=repeated,
        cascades=bool(adds),
        add=_template(adds, "_", "n", 1) if adds else "",
        last=tuple((x.op, x.torch, x.keras, abstract([x], symbols, widths)) for x in last),
        first_only=bool(last) and any(not layers for layers in lasts),
        repeated_layers=template.paths[0].layers,
        last_layers=last,
    )


EXPRESSIONS = (Sym, Divisible, Paths)


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
    if isinstance(layer, GlobalContextLayer):
        return {"channels": layer.channels, "reduced": layer.fc1.conv.out_channels}
    if isinstance(layer, BilinearAttentionLayer):
        fields = ("channels", "reduced", "block_size", "groups", "dropout")
        return {name: getattr(layer, name) for name in fields}
    if isinstance(layer, BranchLayer) and layer.shared:
        return split_fields(layer)
    if isinstance(layer, BranchLayer) and layer.merge == "select":
        return selective_fields(layer)
    if isinstance(layer, BranchLayer) and layer.merge == "sum":
        return aggregated_fields(layer)
    if isinstance(layer, BranchLayer):
        fields = {"channels": layer.channels, "split": layer.split, "merge": layer.merge}
        return {**fields, "paths": paths_of(layer)}
    return field_values(layer, frozenset({"op", "torch", "keras", "width", "zero_init"}))


def selective_fields(layer: BranchLayer) -> dict:
    """A selective kernel's values (a composite layer that merges by "select"), as its helper
    (the generated `SelectiveKernel`) takes them: the paths' are the first path's, which the
    helper dilates more on each further path; the backends check the rest
    (:func:`selective_problems`)."""
    conv = layer.paths[0].layers[0].conv
    return {
        "in_channels": layer.channels,
        "out_channels": conv.out_channels,
        "attn_channels": layer.attention.reduce.conv.out_channels,
        "stride": conv.stride,
        "dilation": conv.dilation,
        "groups": conv.groups,
        "paths": len(layer.paths),
        "split": layer.split,
    }


def aggregated_fields(layer: BranchLayer) -> dict:
    """Aggregated paths' values (a composite layer that merges by "sum"), as their helper (the
    generated `AggregatedPaths`) takes them: the paths' widths together, the 3x3's stride and
    dilation; :func:`aggregated_problems` checks the rest."""
    first, spatial, last = (x.conv for x in layer.paths[0].layers if isinstance(x, ConvLayer))
    return {
        "in_channels": layer.channels,
        "mid_channels": first.out_channels * len(layer.paths),
        "out_channels": last.out_channels,
        "paths": len(layer.paths),
        "stride": spatial.stride,
        "dilation": spatial.dilation,
        "merge": "sum",
    }


def aggregated_problems(layer: BranchLayer, normalised: bool) -> list[str]:
    """What `AggregatedPaths` would build otherwise than `layer` says, its names aside: every
    path a 1x1, a 3x3 (dilated and padded by the same) and a 1x1 of one bias rule, a norm (in
    a normalised network) and the activation after the first two."""
    if layer.split or not layer.paths or layer.attention is not None or layer.shared:
        return ["summed paths other than copies on the whole input"]
    f = aggregated_fields(layer)
    width = f["mid_channels"] // f["paths"]
    bias = layer.paths[0].layers[0].conv.bias
    d = f["dilation"]
    convs = [
        Conv(in_channels=f["in_channels"], out_channels=width, kernel=1, bias=bias),
        Conv(
            in_channels=width,
            out_channels=width,
            kernel=3,
            stride=f["stride"],
            padding=d,
            dilation=d,
            bias=bias,
        ),
        Conv(in_channels=width, out_channels=f["out_channels"], kernel=1, bias=bias),
    ]
    unit = ["conv", "norm", "act"] if normalised else ["conv", "act"]
    for path in layer.paths:
        if [x.op for x in path.layers] != [*unit, *unit, "conv"] or path.adds_previous:
            return ["a path other than 1x1, 3x3 and 1x1 with norms and activations between"]
        if [x.conv for x in path.layers if isinstance(x, ConvLayer)] != convs:
            return ["paths of other convolutions than AggregatedPaths builds"]
        if any(getattr(x, "kind", "network") != "network" for x in path.layers if x.op == "act"):
            return ["paths whose activation is not the network's"]
    return []


def selective_problems(layer: BranchLayer) -> list[str]:
    """What a selective kernel's helper would build otherwise than `layer` says, its names
    aside (each backend checks those): path k (from 0) a 3x3 dilated k + 1 times the first
    path's dilation and padded as much, on the split or the whole input, then a norm and the
    activation; the attention's 1x1 convolutions without biases."""
    attention, fields = layer.attention, selective_fields(layer)
    if attention is None or any(not path.layers for path in layer.paths):
        return ["a selective kernel without attention or with an empty path"]
    found = []
    count, d = len(layer.paths), fields["dilation"]
    reads = layer.channels // count if layer.split else layer.channels
    for k, path in enumerate(layer.paths):
        conv, *rest = path.layers
        expected = Conv(
            in_channels=reads,
            out_channels=fields["out_channels"],
            kernel=3,
            stride=fields["stride"],
            padding=d * (k + 1),
            dilation=d * (k + 1),
            groups=fields["groups"],
            bias=conv.conv.bias if isinstance(conv, ConvLayer) else False,
        )
        ops = [x.op for x in rest]
        if (
            not isinstance(conv, ConvLayer)
            or conv.conv != expected
            or ops
            not in (
                ["norm", "act"],
                ["act"],
            )
        ):
            found.append(f"a selective kernel whose path {k} is not a 3x3 dilated {k + 1}x")
    out, reduced = fields["out_channels"], fields["attn_channels"]
    reduce = Conv(in_channels=out, out_channels=reduced, kernel=1)
    select = Conv(in_channels=reduced, out_channels=out * count, kernel=1)
    if (attention.reduce.conv, attention.select.conv) != (reduce, select):
        found.append("a selective kernel's attention other than two 1x1s without biases")
    return found


def split_fields(layer: BranchLayer) -> dict:
    """Split attention's values (a "select" composite whose paths one shared convolution makes),
    as its helper (the generated `SplitAttn`) takes them: the paths' width, the attention's, the
    convolution's stride and dilation, the groups and the paths (`radix`). The backends check
    the rest (:func:`split_problems`)."""
    conv = layer.shared[0].conv
    return {
        "in_channels": layer.channels,
        "out_channels": conv.out_channels // len(layer.paths),
        "attn_channels": layer.attention.reduce.conv.out_channels,
        "stride": conv.stride,
        "dilation": conv.dilation,
        "groups": layer.attention.groups,
        "radix": len(layer.paths),
    }


def split_problems(layer: BranchLayer) -> list[str]:
    """What split attention's helper would build otherwise than `layer` says, its names aside:
    one 3x3 in `groups * radix` groups padded by its dilation, its norm and a ReLU; paths that
    are its output's slices; grouped 1x1s with biases; a softmax across the paths (a sigmoid for
    one) over weights ordered by group."""
    attention, count = layer.attention, len(layer.paths)
    if attention is None or layer.merge != "select" or not layer.split:
        return ["split attention without a selection"]
    f = split_fields(layer)
    first, *rest = layer.shared
    out, groups = f["out_channels"], f["groups"]
    expected = Conv(
        in_channels=layer.channels,
        out_channels=out * count,
        kernel=3,
        stride=f["stride"],
        padding=f["dilation"],
        dilation=f["dilation"],
        groups=groups * count,
        bias=first.conv.bias if isinstance(first, ConvLayer) else False,
    )
    found = []
    if not isinstance(first, ConvLayer) or first.conv != expected:
        found.append("split attention whose convolution is not a 3x3 in groups times paths groups")
    if [x.op for x in rest] not in (["norm", "act"], ["act"]) or rest[-1].kind != "relu":
        found.append("split attention whose convolution is not followed by its norm and a ReLU")
    if any(path.layers for path in layer.paths):
        found.append("split attention whose paths hold layers of their own")
    reduced = f["attn_channels"]
    reduce = Conv(in_channels=out, out_channels=reduced, kernel=1, groups=groups, bias=True)
    select = Conv(in_channels=reduced, out_channels=out * count, kernel=1, groups=groups, bias=True)
    gate = "softmax" if count > 1 else "sigmoid"
    if (attention.reduce.conv, attention.select.conv, attention.gate) != (reduce, select, gate):
        found.append("split attention whose attention is not grouped 1x1s with biases")
    return found


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
    widths = {
        "in": Sym("in_channels"),
        "first": Sym("mid_channels", divisor=reduce_first),
        "mid": Sym("mid_channels"),
        "out": Sym("out_channels"),
    }
    # A composite layer that splits its input into paths of the inner width each.
    for layer in block.branch:
        if isinstance(layer, BranchLayer) and layer.split and layer.width == "wide":
            widths["wide"] = Sym("mid_channels", scale=len(layer.paths))
    return widths


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
    elif (
        isinstance(first, (SqueezeExciteLayer, GlobalContextLayer, BilinearAttentionLayer))
        and first.ratio is not None
        and width in widths
    ):
        limit = first.ROUND_LIMIT if isinstance(first, BilinearAttentionLayer) else 0.0
        basis = getattr(first, "basis", None) or width
        rounded = basis == "in" and first.divisor == 1
        fields["reduced"] = Divisible(
            widths[basis], first.ratio, first.divisor, limit, rounded=rounded
        )
    elif isinstance(first, EcaLayer) and first.gamma is not None and "eca_kernel" in symbols:
        fields["kernel"] = Sym("eca_kernel")
    elif isinstance(first, PadChannelsLayer):
        fields = {"before": Sym("pad_before"), "after": Sym("pad_after")}
    elif isinstance(first, BranchLayer) and first.shared:
        # The helper's arguments: the widths, the convolution's stride and dilation, the
        # attention's groups (the convolution's are those times the paths).
        conv = first.shared[0]
        inner = abstract([m.shared[0] for m in layers], symbols, widths)
        groups = abstract([m.attention.reduce for m in layers], symbols, widths)["groups"]
        fields["in_channels"] = widths.get(conv.source, fields["in_channels"])
        fields["out_channels"] = widths.get(first.width, fields["out_channels"])
        fields.update(stride=inner["stride"], dilation=inner["dilation"], groups=groups)
        attention = first.attention
        if attention.ratio is not None and first.width in widths:
            fields["attn_channels"] = Divisible(
                widths[first.width],
                attention.ratio,
                attention.divisor,
                attention.round_limit,
                attention.minimum,
            )
    elif isinstance(first, BranchLayer) and first.merge == "sum":
        # The helper's arguments: the block's widths, the paths (the block's groups), the 3x3's
        # stride and dilation.
        spatial = [
            next(x for x in m.paths[0].layers if x.op == "conv" and x.conv.kernel > 1)
            for m in layers
        ]
        inner = abstract(spatial, symbols, widths)
        fields["in_channels"] = widths.get("in", fields["in_channels"])
        fields["mid_channels"] = widths.get("mid", fields["mid_channels"])
        fields["out_channels"] = widths.get("out", fields["out_channels"])
        if "groups" in symbols:
            fields["paths"] = Sym("groups")
        fields.update({k: inner[k] for k in ("stride", "dilation")})
    elif isinstance(first, BranchLayer) and first.merge == "select":
        # The helper's arguments: its widths, and the first path's stride, dilation and groups.
        conv = first.paths[0].layers[0]
        inner = abstract([m.paths[0].layers[0] for m in layers], symbols, widths)
        fields["in_channels"] = widths.get(conv.source, fields["in_channels"])
        fields["out_channels"] = widths.get(conv.target, fields["out_channels"])
        fields.update({k: inner[k] for k in ("stride", "dilation", "groups")})
        attention = first.attention
        if attention.ratio is not None and conv.target in widths:
            fields["attn_channels"] = Divisible(
                widths[conv.target], attention.ratio, attention.divisor, attention.round_limit
            )
    elif isinstance(first, BranchLayer):
        fields["paths"] = _abstract_paths(layers, symbols, widths)
    return fields


def structure(layer) -> tuple:
    """What a block class fixes of a layer: its type, name and flags, and the values that no
    argument gives (a kernel size, a bias, a fixed attention width). Of a composite layer, its
    way of splitting and merging and its repeated path's layers: what a stage's first block
    does otherwise (see :class:`Paths`) is the class's to test."""
    if isinstance(layer, BranchLayer):
        repeated = tuple(structure(x) for x in layer.paths[0].layers)
        kept = ("branches", layer.torch, layer.split, layer.merge, len(layer.paths), repeated)
        attention = layer.attention
        if attention is None:
            return kept
        # A selective kernel's attention width: its rule, or a fixed width.
        rule = (attention.ratio, attention.divisor, attention.round_limit, attention.minimum)
        fixed = attention.reduce.conv.out_channels if attention.ratio is None else None
        shared = tuple(structure(x) for x in layer.shared)
        return (*kept, rule, fixed, tuple(x.op for x in attention.norm), attention.gate, shared)
    # the layers inside attention: its fields say what varies
    inner = {"conv", "pool", "reduce", "expand", "attend", "fc1", "norm", "fc2", "to_groups"}
    inner |= {"reduce_norm", "groups_norm", "rows", "columns", "mix", "mix_norm", "expand_norm"}
    meta = field_values(layer, frozenset({"keras", *inner}))
    fields = layer_fields(layer)
    varying = {"in_channels", "out_channels", "channels", "groups", "dilation", "padding"}
    if getattr(layer, "strided", False):
        varying |= {"stride", "kernel"} if isinstance(layer, PoolLayer) else {"stride"}
    if isinstance(layer, PadChannelsLayer):
        varying |= {"before", "after"}
    attention = (SqueezeExciteLayer, GlobalContextLayer, BilinearAttentionLayer)
    if isinstance(layer, attention) and layer.ratio is not None:
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
