"""The plan of a generated module, one for both backends: which block classes (PyTorch) or
block functions (Keras) exist and which values become their arguments, which shortcut functions
exist and the `if` chain of their cases, what each stage's call gives its blocks, and the
docstrings. The backends render it, each in its framework's vocabulary; neither decides
structure of its own.

A plan is checked by construction against the IR it came from. A class, a shortcut function or
a stage call abstracts the values of many blocks (widths, stride, groups, dilation) into its
arguments; the plan substitutes each block's own values back and compares the result with the
block's layers, field by field. What does not come back exactly is a problem (the backends'
`unsupported`, the CLI's diagnostic), never generated wrong.

* Block classes: blocks whose layer lists agree once widths, the stride, groups, dilation and
  paddings are set aside share one class. A class takes `groups` only where one of its blocks
  groups a convolution, `dilation` only where one dilates, `eca_kernel` only with efficient
  channel attention (its kernel follows from the width by a logarithm, which the stage call
  states). Widths the class can compute it writes: `mid_channels // 2` (`reduce_first`),
  `make_divisible(out_channels / 16, 8)` (squeeze-excitation's). An anti-aliasing layer,
  which only applies the stride, does not split a class: the class has it where the stride is
  not 1 and an identity elsewhere, as timm.
* Stage calls: every block of a stage gets the same options, but the first block of a dilated
  stage keeps the stage before's dilation (`first_dilation`). Where a block needs two
  dilations at once (`Block.two_dilations`), the module takes timm's convention: `dilation` is
  the stage's, `first_dilation` the block's own; elsewhere torchvision's, one `dilation` that
  the stage replaces.
* Shortcuts: which shortcut a block gets is a function of two things the generated code can
  test, whether the width stays and whether the stride is 1. Each (width, stride) case that the
  network's blocks meet maps to the layers those blocks have there; stages whose cases agree
  share one function, written as an `if` chain with the simplest conditions that separate the
  cases (templates that each backend words: :data:`TORCH_TESTS`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from resdsl.blocks import RECIPES
from resdsl.ir import (
    ActLayer,
    Block,
    BlurPoolLayer,
    ConvLayer,
    EcaLayer,
    Network,
    NormLayer,
    PadChannelsLayer,
    PoolLayer,
    Shortcut,
    SqueezeExciteLayer,
    Stage,
)

# The four tests of a shortcut function's conditions, in PyTorch's words (the function takes
# both widths and the stride).
TORCH_TESTS = {
    "same": "in_channels == out_channels",
    "grow": "in_channels != out_channels",
    "keep": "stride == 1",
    "step": "stride != 1",
}


# --------------------------------------------------------------------------- values


# --------------------------------------------------------------------------- values


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


def _blur_padding(layer: BlurPoolLayer) -> tuple[int, int]:
    """The padding the generated `BlurPool2d` computes for a layer, before and after."""
    return ((layer.size - 1) // 2, layer.size // 2)


_EXPRESSIONS = (Sym, Divisible)


def _field_values(node, exclude: frozenset[str] = frozenset()) -> dict:
    """A node's fields as a dict, nested nodes kept as they are. (Not `model_dump`, whose
    serializer pydantic would build at first use: a cost `compile` need not pay.)"""
    return {name: value for name, value in node if name not in exclude}


def layer_fields(layer) -> dict:
    """The values of a layer that the generated code states (its IR fields but the names).
    A helper class's fixed parts (SqueezeExcite's 1x1 convolutions, BlurPool2d's padding) are
    checked by :func:`_implied` instead."""
    if isinstance(layer, ConvLayer):
        return _field_values(layer.conv)
    if isinstance(layer, PoolLayer):
        return _field_values(layer.pool)
    if isinstance(layer, BlurPoolLayer):
        return {"channels": layer.channels, "size": layer.size, "stride": layer.stride}
    if isinstance(layer, SqueezeExciteLayer):
        conv = layer.reduce.conv
        return {"channels": conv.in_channels, "reduced": conv.out_channels}
    if isinstance(layer, EcaLayer):
        return {"kernel": layer.conv.kernel}
    return _field_values(layer, frozenset({"op", "torch", "keras", "width", "zero_init"}))


def _instantiate(fields: dict, env: dict) -> dict | None:
    """`fields` with each argument replaced by its value in `env` (None if one is missing)."""
    out = {}
    for name, value in fields.items():
        if isinstance(value, _EXPRESSIONS):
            if not value.names <= env.keys():
                return None
            value = value.evaluate(env)
        out[name] = value
    return out


def _block_env(block: Block, two_dilations: bool = False) -> dict:
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


def _shortcut_env(block: Block) -> dict:
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
_BLOCK_SYMBOLS = frozenset(("in_channels", "mid_channels", "out_channels", "stride", *OPTIONS))


def _registered(env: dict) -> bool:
    """Whether a class registers its `optional` layers for a block: where it strides, and
    (timm's `use_aa`) where its dilation changes."""
    return env["stride"] != 1 or env.get("first_dilation", env["dilation"]) != env["dilation"]


_SHORTCUT_WIDTHS = {"in": Sym("in_channels"), "out": Sym("out_channels")}


def _block_widths(block: Block) -> dict[str, Sym]:
    """A block class's widths as its arguments give them: the first convolution's output is
    the inner width over `reduce_first`, which the class writes as a division."""
    reduce_first = max(1, block.mid_channels // block.first_channels)
    return {
        "in": Sym("in_channels"),
        "first": Sym("mid_channels", divisor=reduce_first),
        "mid": Sym("mid_channels"),
        "out": Sym("out_channels"),
    }


def _abstract(layers: list, symbols: frozenset[str], widths: dict[str, Sym]) -> dict:
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


def _structure(layer) -> tuple:
    """What a block class fixes of a layer: its type, name and flags, and the values that no
    argument gives (a kernel size, a bias, a fixed attention width)."""
    meta = _field_values(layer, frozenset({"keras", "conv", "pool", "reduce", "expand"}))
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


def _symbols(fields: list[dict]) -> set[str]:
    """The arguments that `fields` use."""
    return {
        name for f in fields for v in f.values() if isinstance(v, _EXPRESSIONS) for name in v.names
    }


# --------------------------------------------------------------------------- emitters
# One emitter per layer type: the module that a layer's fields describe. Fields may hold `Sym`s.


@dataclass
class BlockClass:
    """One block class (PyTorch) or block function (Keras) and the blocks (one per run) it
    builds: the layers of one of them with all its layers (a strided one where some are
    `optional`), for their names and flags, and each layer's fields with what varies from
    block to block as the argument that gives it."""

    blocks: list[Block]
    layers: list
    fields: list[dict]
    cut: tuple[int, int]  # where the pre-activation ends and the post-activation starts
    takes: list[str]  # what it takes besides the widths, the stride and the shortcut
    sources: set[str]  # what its shortcuts read: "input", "preactivated"
    adds: bool = True  # adds a shortcut; a plain network's block (`shortcut none`) does not
    words: tuple[str, ...] = ()  # its name's words, `("PreAct", "Bottleneck")`; see `name`
    number: int = 0  # told apart from classes of the same words by a number (0: none)

    @property
    def name(self) -> str:
        """The name in PyTorch's spelling: `PreActBottleneck`, `BasicBlock2`."""
        base = "".join(self.words)
        if not self.number:
            return base
        return f"{base}{'_' if base[-1].isdigit() else ''}{self.number}"

    @property
    def snake_name(self) -> str:
        """The name as a function's: `preact_bottleneck_block`, `basic_block_2`."""
        words = [w.lower() for w in self.words]
        layout = next(i for i, w in enumerate(words) if w in ("block", "bottleneck"))
        if words[layout] != "block":
            words.insert(layout + 1, "block")
        return "_".join(words) + (f"_{self.number}" if self.number else "")

    def part(self, index: int) -> list[tuple]:
        """The (layer, fields) pairs of the pre-activation (0), the branch (1) or the
        post-activation (2)."""
        bounds = (0, *self.cut, len(self.layers))
        start, end = bounds[index], bounds[index + 1]
        return list(zip(self.layers[start:end], self.fields[start:end], strict=True))

    @property
    def zero(self) -> list:
        """The layers whose weight starts at zero (`zero_last_norm`)."""
        return [x for x in self.layers if getattr(x, "zero_init", False)]


@dataclass(frozen=True)
class Outcome:
    """The shortcut of one (width, stride) case: its layers' ops and abstract fields."""

    source: str
    layers: tuple[tuple[str, tuple], ...]  # (op, sorted fields)


Cell = tuple[bool, bool]  # (the width stays, the stride is 1)


@dataclass(frozen=True)
class Case:
    """`if condition: return outcome`; the last case of a chain has no condition."""

    cells: frozenset[Cell] | None
    template: str | None  # over `{same}`, `{grow}`, `{keep}`, `{step}`
    outcome: Outcome | None

    def condition(self, tests: dict[str, str]) -> str | None:
        """The condition in a backend's words for the four tests."""
        return None if self.template is None else self.template.format(**tests)


@dataclass
class ShortcutFunction:
    """A shortcut function: the outcome of each case the blocks of its stages meet."""

    cases: dict[Cell, Outcome | None]
    stages: list = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # the IR's shortcut kinds, for its name
    name: str = ""
    marks: bool = False  # wraps the shortcuts that read the block's input in `FromInput`
    chain: list[Case] = field(default_factory=list)


@dataclass
class StageCall:
    """`self.{attr} = make_stage(...)`."""

    attr: str
    block: BlockClass
    blocks: int
    in_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    stride_last: bool
    options: dict[str, int]  # groups, dilation, eca_kernel: those the class takes
    # The first block's dilation where it differs from the others' (the stage before's, as
    # torchvision's `previous_dilation`)
    first_dilation: int | None
    passes_first: bool  # the class takes `first_dilation` (timm's), else it replaces `dilation`
    function: ShortcutFunction | None
    first_index: int  # network-wide index of its first block (stochastic depth)
    stage: Stage

    def expand(self) -> list[dict]:
        """What make_stage's loop gives each block, as it does it."""
        strided = self.blocks - 1 if self.stride_last else 0
        first, rest = dict(self.options), dict(self.options)
        if self.passes_first:  # the class's `first_dilation or dilation`
            first["first_dilation"] = self.first_dilation or self.options["dilation"]
            rest["first_dilation"] = self.options["dilation"]
        elif self.first_dilation is not None:
            first["dilation"] = self.first_dilation
        return [
            {
                "in_channels": self.in_channels if index == 0 else self.out_channels,
                "mid_channels": self.mid_channels,
                "out_channels": self.out_channels,
                "stride": self.stride if index == strided else 1,
                **(first if index == 0 else rest),
            }
            for index in range(self.blocks)
        ]


# A condition is a template over four tests that each backend words in its own terms
# (:data:`TORCH_TESTS`): the width stays or grows, the stride is 1 or not.
_SAME, _KEEP, _GROW, _STEP = "{same}", "{keep}", "{grow}", "{step}"
_ALL: tuple[Cell, ...] = ((True, True), (True, False), (False, True), (False, False))
# Every set of cases an `if` can select, with its text and cost, the simplest first.
_CONDITIONS = [
    (frozenset(c for c in _ALL if test(*c)), text, cost)
    for test, text, cost in (
        (lambda same, keep: same, _SAME, 1),
        (lambda same, keep: not same, _GROW, 1),
        (lambda same, keep: keep, _KEEP, 1),
        (lambda same, keep: not keep, _STEP, 1),
        (lambda same, keep: same and keep, f"{_SAME} and {_KEEP}", 2),
        (lambda same, keep: same and not keep, f"{_SAME} and {_STEP}", 2),
        (lambda same, keep: not same and keep, f"{_GROW} and {_KEEP}", 2),
        (lambda same, keep: not same and not keep, f"{_GROW} and {_STEP}", 2),
        (lambda same, keep: not same or not keep, f"{_GROW} or {_STEP}", 2),
        (lambda same, keep: not same or keep, f"{_GROW} or {_KEEP}", 2),
        (lambda same, keep: same or not keep, f"{_SAME} or {_STEP}", 2),
        (lambda same, keep: same or keep, f"{_SAME} or {_KEEP}", 2),
        (lambda same, keep: same == keep, f"({_SAME}) == ({_KEEP})", 3),
        (lambda same, keep: same != keep, f"({_SAME}) != ({_KEEP})", 3),
    )
]


def _cell(values) -> Cell:
    """The case of a block (or of what make_stage gives it)."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name)
    return (get("in_channels") == get("out_channels"), get("stride") == 1)


def _chain(cases: dict[Cell, Outcome | None], rank: dict) -> list[Case]:
    """The `if` chain that returns each case's outcome: the identity first where there is one
    (as torchvision tests it), then with the fewest conditions, then in order of first use.
    Cases no block meets may go to any outcome but the identity: None is returned only where a
    block has it."""
    outcomes = sorted(set(cases.values()), key=lambda o: rank[o])
    free = set(_ALL) - set(cases)
    best = None
    for order in itertools.permutations(outcomes):
        if len(order) > 1 and order[-1] is None:
            continue
        chain, cost, done = [], 0, set()
        for position, outcome in enumerate(order[:-1]):
            own = {c for c, o in cases.items() if o == outcome}
            later = {c for c, o in cases.items() if o in order[position + 1 :]}
            allowed = (set(_ALL) - later - (free if outcome is None else set())) | done
            cells, text, price = next(
                (cells, text, price)
                for cells, text, price in _CONDITIONS
                if own <= cells <= allowed
            )
            chain.append(Case(cells, text, outcome))
            cost += price
            done |= cells
        chain.append(Case(None, None, order[-1]))
        key = (order[0] is not None, cost, [rank[o] for o in order])
        if best is None or key < best[0]:
            best = (key, chain)
    return best[1]


def _select(chain: list[Case], cell: Cell) -> Outcome | None:
    """What the generated `if` chain returns for a case."""
    return next(case.outcome for case in chain if case.cells is None or cell in case.cells)


def _compatible(a: dict, b: dict) -> bool:
    return all(a[c] == o for c, o in b.items() if c in a)


class Plan:
    """The generated module's structure, read from the network and checked against it: the
    block classes and the values they take, the shortcut functions and their cases, the stage
    calls. Both backends render it. Problems (what the plan cannot rebuild exactly) are
    collected, not raised."""

    def __init__(self, network: Network):
        self.network = network
        self.problems: list[str] = []
        self.drop_path = network.conventions.stochastic_depth > 0
        self.runs = [(stage, run.block) for stage in network.stages for run in stage.runs]
        # timm's convention for dilation (`dilation` the stage's, `first_dilation` the
        # block's), where some block needs it; else torchvision's (`dilation` the block's).
        self.two_dilations = any(block.two_dilations for _, block in self.runs)
        self.gate = self._gate()
        self._outcomes: dict[int, Outcome | None] = {}
        self.rank: dict[Outcome | None, int] = {}  # order of first use
        self.examples: dict[Outcome, Shortcut] = {}  # a shortcut of each outcome, as the IR has it
        plain = {block.shortcut.kind == "none" for _, block in self.runs}
        if len(plain) > 1:  # make_stage gives every block of a module a downsample, or none
            self.problem("plain and residual blocks in one network")
        self.classes = self._classes()
        shortcuts = any(block.shortcut.layers for _, block in self.runs)
        self.functions = self._functions() if shortcuts else []
        self.stages = [self._stage(stage) for stage in network.stages]

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    @property
    def stride_last(self) -> bool:
        return any(s.stride_last for s in self.stages)

    @property
    def options(self) -> bool:
        return any(c.takes for c in self.classes)

    @property
    def pad_channels(self) -> bool:
        return any(
            op == "pad_channels"
            for f in self.functions
            for outcome in f.cases.values()
            for op, _ in (outcome.layers if outcome else ())
        )

    @property
    def from_input(self) -> bool:
        return any(f.marks for f in self.functions)

    @property
    def first_dilation(self) -> bool:
        return any(s.first_dilation is not None for s in self.stages)

    def layers(self) -> list:
        """Every layer of the network: the stem's, each run's block's, the head's."""
        network = self.network
        layers = [*network.stem.layers, *network.head.layers]
        for _, block in self.runs:
            layers += block.layers
        return layers

    def _gate(self) -> str:
        """Squeeze-excitation's gate, which its helper fixes for the whole network."""
        layers = self.layers()
        gates = sorted({x.gate for x in layers if isinstance(x, SqueezeExciteLayer)})
        if len(gates) > 1:
            self.problem(f"squeeze-excitations of several gates ({', '.join(gates)})")
        return gates[0] if gates else "sigmoid"

    # ----------------------------------------------------------------- block classes

    def _classes(self) -> list[BlockClass]:
        """Blocks grouped by structure, each group's fields abstracted and checked against
        every block of it. A layer that only applies the stride (`optional`) does not count
        (see `_key`): a stage's strided block and its others share a class, which registers
        that layer only where it strides. Strided blocks whose such layers differ (or that have
        none) get classes of their own, and blocks at stride 1 without any join each of those."""
        by_key: dict[tuple, list[Block]] = {}
        for _, block in self.runs:
            members = by_key.setdefault(_key(block), [])
            if block not in members:
                members.append(block)
        classes = []
        for members in by_key.values():
            # A block at stride 1 has such layers where its dilation changes (timm's `use_aa`).
            variants = list(dict.fromkeys(_variant(b) for b in members if _variant(b)))
            plain = any(b.stride != 1 and not _variant(b) for b in members)
            for variant in variants + [()] * (plain or not variants):
                group = [
                    b
                    for b in members
                    if _variant(b) == variant or (b.stride == 1 and not _variant(b))
                ]
                classes.append(self._class(group))
        _name_classes(classes)
        return classes

    def _class(self, members: list[Block]) -> BlockClass:
        """The class of blocks of one structure: their layers' fields abstracted, checked by
        rebuilding every block."""
        template = next((b for b in members if _variant(b)), members[0])
        layers = _layers(template)
        # The template's layers first: the abstraction follows the first of each column.
        others = [b for b in members if b is not template]
        aligned = [align(layers, _layers(b)) for b in [template, *others]]
        fields = [
            _abstract(
                [row[i] for row in aligned if row[i] is not None],
                _BLOCK_SYMBOLS if self.two_dilations else _BLOCK_SYMBOLS - {"first_dilation"},
                _block_widths(template),
            )
            for i in range(len(layers))
        ]
        used = _symbols(fields)
        redilated = "first_dilation" in used or any(b.two_dilations for b in members)
        for block in members:
            env = _block_env(block, self.two_dilations)
            if not redilated:  # a class without `first_dilation` registers by the stride
                env.pop("first_dilation", None)
            rebuilt = [
                (x.torch, x.op, _instantiate(f, env))
                for x, f in zip(layers, fields, strict=True)
                if not (optional(x) and not _registered(env))
            ]
            if rebuilt != [(x.torch, x.op, layer_fields(x)) for x in _layers(block)]:
                self.problem(f"a {_describe(block)} block that no class rebuilds")
            if not block.pre and block.shortcut.source == "preactivated":
                self.problem("a shortcut that reads a pre-activation its block lacks")
        if redilated:  # `first_dilation` defaults to `dilation`
            used |= {"dilation", "first_dilation"}
        return BlockClass(
            blocks=members,
            layers=layers,
            fields=fields,
            cut=(len(template.pre), len(template.pre) + len(template.branch)),
            takes=[name for name in OPTIONS if name in used],
            sources={b.shortcut.source for b in members if b.shortcut.layers},
            adds=template.shortcut.kind != "none",
        )

    def stage_class(self, stage) -> BlockClass:
        """The class of a stage's blocks. Blocks at stride 1 may belong to several classes (see
        `_classes`): the stage's holds all its blocks (else, for `_stage` to report, its
        first block's)."""
        blocks = [run.block for run in stage.runs]
        whole = (c for c in self.classes if all(b in c.blocks for b in blocks))
        return next(whole, next(c for c in self.classes if blocks[0] in c.blocks))

    # ----------------------------------------------------------------- shortcuts

    def outcome(self, block: Block) -> Outcome | None:
        """A block's shortcut as a function writes it (None: the identity), checked."""
        if id(block) in self._outcomes:
            return self._outcomes[id(block)]
        outcome = None
        if block.shortcut.layers:
            env = _shortcut_env(block)
            parts = []
            for layer in block.shortcut.layers:
                fields = _abstract([layer], frozenset(env), _SHORTCUT_WIDTHS)
                if _instantiate(fields, env) != layer_fields(layer):
                    self.problem(f"a {block.shortcut.kind} shortcut that no function rebuilds")
                parts.append((layer.op, tuple(sorted(fields.items()))))
            outcome = Outcome(block.shortcut.source, tuple(parts))
            self.examples.setdefault(outcome, block.shortcut)
        self._outcomes[id(block)] = outcome
        self.rank.setdefault(outcome, len(self.rank))
        return outcome

    def _functions(self) -> list[ShortcutFunction]:
        """Stages' cases joined into as few functions as agree: a stage joins the function
        that shares the most of its cases and contradicts none, else starts one; then
        functions that do not contradict each other join."""
        functions: list[ShortcutFunction] = []
        for stage in self.network.stages:
            cases: dict[Cell, Outcome | None] = {}
            for run in stage.runs:
                outcome = self.outcome(run.block)
                if cases.setdefault(_cell(run.block), outcome) != outcome:
                    self.problem(f"two shortcuts for one width and stride in stage {stage.name}")
            shared = [
                (sum(c in f.cases for c in cases), -number, f)
                for number, f in enumerate(functions)
                if _compatible(f.cases, cases)
            ]
            best = max(shared, key=lambda t: t[:2], default=(0, 0, None))
            target = best[2] if best[0] else ShortcutFunction({})
            if target is not best[2]:
                functions.append(target)
            target.cases.update(cases)
            target.stages.append(stage)
            target.kinds |= {r.block.shortcut.kind for r in stage.runs if r.block.shortcut.layers}
        joined = True
        while joined:
            joined = False
            for a, b in itertools.combinations(functions, 2):
                if _compatible(a.cases, b.cases):
                    a.cases.update(b.cases)
                    a.stages += b.stages
                    a.kinds |= b.kinds
                    functions.remove(b)
                    joined = True
                    break
        for function in functions:
            function.chain = _chain(function.cases, self.rank)
            # A class whose shortcuts read both inputs tells them apart by `FromInput`.
            function.marks = any(
                len(self.stage_class(stage).sources) > 1 for stage in function.stages
            )
        _name_functions(functions)
        return functions

    # ----------------------------------------------------------------- stages

    def _stage(self, stage) -> StageCall:
        """The stage's make_stage call, checked by expanding it as make_stage's loop does and
        comparing each block with the IR's."""
        blocks = [block for _, s, _, block in self.network.blocks() if s is stage]
        first = blocks[0]
        cls = self.stage_class(stage)
        strided = [position for position, b in enumerate(blocks) if b.stride != 1]
        # The options of the blocks after the first; the first may dilate otherwise. A class
        # with timm's two dilations is given `first_dilation`; else it replaces `dilation`.
        passes_first = "first_dilation" in cls.takes
        body = _block_env(blocks[-1], passes_first)
        options = {name: body[name] for name in cls.takes if name != "first_dilation"}
        first_dilation = None
        if "dilation" in options and first.dilation != options["dilation"]:
            first_dilation = first.dilation
            if passes_first != self.two_dilations:
                self.problem(f"stage {stage.name}, whose dilations make_stage cannot pass")
        call = StageCall(
            attr=stage.torch_prefix(0).rpartition(".")[0],
            block=cls,
            blocks=len(blocks),
            in_channels=first.in_channels,
            mid_channels=first.mid_channels,
            out_channels=first.out_channels,
            stride=blocks[strided[0]].stride if strided else 1,
            stride_last=len(blocks) > 1 and strided == [len(blocks) - 1],
            options=options,
            first_dilation=first_dilation,
            passes_first=passes_first,
            function=next((f for f in self.functions if stage in f.stages), None),
            first_index=stage.runs[0].first_index,
            stage=stage,
        )
        for given, block in zip(call.expand(), blocks, strict=True):
            env = _block_env(block, passes_first)
            actual = {name: env.get(name) for name in given}
            if block not in cls.blocks or given != actual:
                self.problem(f"stage {stage.name}, which make_stage cannot rebuild")
            shortcut = _select(call.function.chain, _cell(given)) if call.function else None
            if shortcut != self.outcome(block):
                self.problem(f"the shortcuts of stage {stage.name}")
        return call


def _layers(block: Block) -> list:
    return [*block.pre, *block.branch, *block.post]


def _key(block: Block) -> tuple:
    """A block's structure as a class sees it: without the layers that only apply the stride
    (`optional`), and with the convolution before such a layer counted as the one that
    strides, as it is in the blocks of the stage that stride by 1 and lack the layer."""
    key = []
    for part in _parts(block):
        kept = []
        for layer in part:
            if not optional(layer):
                kept.append(layer)
                continue
            convs = [i for i, x in enumerate(kept) if isinstance(x, ConvLayer)]
            if convs:
                kept[convs[-1]] = kept[convs[-1]].model_copy(update={"strided": True})
        key.append(tuple(_structure(x) for x in kept))
    # A plain block (`shortcut none`) adds nothing: a class of its own.
    key.append(block.shortcut.kind == "none")
    return tuple(key)


def _variant(block: Block) -> tuple:
    """The layers of a block that only apply its stride (`optional`), where they are."""
    return tuple((i, _structure(x)) for i, x in enumerate(_layers(block)) if optional(x))


def align(template: list, layers: list) -> list:
    """`layers` against the layers of `template`: None where `template` has a layer that only
    applies the stride and `layers` do not (a block at stride 1). Whatever does not align is
    left for the rebuild check to report."""
    out, rest = [], list(layers)
    for layer in template:
        if optional(layer) and not (rest and optional(rest[0])):
            out.append(None)
        else:
            out.append(rest.pop(0) if rest else None)
    return out


def _parts(block: Block) -> tuple:
    return (block.pre, block.branch, block.post)


def _describe(block: Block) -> str:
    return f"{block.in_channels}->{block.out_channels} stride-{block.stride}"


def _kernel(layer: ConvLayer) -> str:
    return f"{layer.conv.kernel}x{layer.conv.kernel}"


def _name_classes(classes: list[BlockClass]) -> None:
    """`BasicBlock`, `Bottleneck`, `PreActBasicBlock`, `PreActBottleneck` from the recipe's
    words and pre-activation; classes that share one are told apart by the convolution that strides
    (`BottleneckStride1x1`), then numbered."""
    for cls in classes:
        block = cls.blocks[0]
        base = RECIPES[block.kind].class_words
        cls.words = ("PreAct",) * block.preact + ("Plain",) * (not cls.adds) + base
    strides = {id(c): _stride_name(c) for c in classes}
    for words in {c.words for c in classes}:
        same = [c for c in classes if c.words == words]
        if len({strides[id(c)] for c in same}) > 1:
            for cls in same:
                cls.words += (strides[id(cls)],)
    taken: set[str] = set()
    for cls in classes:
        number = 2
        while cls.name in taken:
            cls.number, number = number, number + 1
        taken.add(cls.name)


def _stride_name(cls: BlockClass) -> str:
    """What applies the class's stride: `Stride3x3` (its convolution), `BlurPool`, `AvgPool`
    (anti-aliasing)."""
    pools = [x for x in cls.layers if optional(x)]
    if pools:
        return "".join(
            _POOL_NAMES[x.pool.kind if isinstance(x, PoolLayer) else x.op] for x in pools
        )
    strided = [x for x in cls.layers if isinstance(x, ConvLayer) and x.strided]
    return "Stride" + "_".join(_kernel(x) for x in strided)


_POOL_NAMES = {"blur": "BlurPool", "avg": "AvgPool", "max": "MaxPool"}


# A function is named by the IR's shortcut kinds it returns, in this order; `pool_project`
# includes `project` (a pool-project of stride 1 is a projection), `pad` includes `subsample`.
_KINDS = ("project", "pool_project", "pad", "subsample")
_IMPLIED = {"project": "pool_project", "subsample": "pad"}
_FEATURES = ("avgpool", "maxpool", "normed", "biased")


def _name_functions(functions: list[ShortcutFunction]) -> None:
    """`project`, `pool_project`, `pad`, `project_or_subsample`, ...; functions of one name are
    told apart by a layer only one of them has (`avgpool_pad`, `normed_project`), then
    numbered."""
    for function in functions:
        kinds = [k for k in _KINDS if k in function.kinds and _IMPLIED.get(k) not in function.kinds]
        function.name = "_or_".join(kinds) or "identity"
    features = {id(f): _features(f) for f in functions}
    for name in sorted({f.name for f in functions}):
        same = [f for f in functions if f.name == name]
        for function in same if len(same) > 1 else ():
            others = set().union(*(features[id(f)] for f in same if f is not function))
            unique = [w for w in _FEATURES if w in features[id(function)] - others]
            if unique:
                function.name = f"{unique[0]}_{function.name}"
    taken: set[str] = set()
    for function in functions:
        base, number = function.name, 2
        while function.name in taken:
            function.name, number = f"{base}_{number}", number + 1
        taken.add(function.name)


def _features(function: ShortcutFunction) -> set[str]:
    words = set()
    for outcome in function.cases.values():
        for op, values in outcome.layers if outcome else ():
            fields = dict(values)
            if op == "pool":
                words.add("avgpool" if fields["kind"] == "avg" else "maxpool")
            elif op == "norm":
                words.add("normed")
            elif op == "conv" and fields["bias"]:
                words.add("biased")
    return words


# --------------------------------------------------------------------------- rendering

_STRIDERS = {"blur": "a blur pool", "avg": "an average pool", "max": "a max pool"}
_ATTENTION = {"se": "squeeze-excitation", "eca": "efficient channel attention"}


def block_doc(cls: BlockClass) -> str:
    """A sentence from the class's layers: its convolutions, where the norms go, what applies
    the stride where no convolution does, the channel attention."""
    sequence = [x for x in cls.layers if not isinstance(x, ActLayer)]
    convs = [x for x in sequence if isinstance(x, ConvLayer)]
    kernels = ", ".join(_kernel(x) + (" (strided)" if x.strided else "") for x in convs)
    extras = []
    for index, layer in enumerate(sequence):
        if optional(layer):
            before = [x for x in sequence[:index] if isinstance(x, ConvLayer)]
            after = f" after the {_conv_name(before[-1], convs)}" if before else ""
            strider = _STRIDERS[layer.pool.kind if isinstance(layer, PoolLayer) else layer.op]
            extras.append(f"{strider}{after} applies the stride")
        elif isinstance(layer, EcaLayer) and layer.gamma is not None:
            rule = f"|log2(out_channels) + {_number(layer.beta)}| / {_number(layer.gamma)}"
            extras.append(
                f"efficient channel attention ends the branch (`eca_kernel`: {rule}, up to an"
                " odd number, at least 3)"
            )
        elif layer.op in _ATTENTION:
            extras.append(f"{_ATTENTION[layer.op]} ends the branch")
        elif layer.summary:  # a plugin's layer type says what it does
            extras.append(layer.summary)
    tail = "".join(f"; {extra}" for extra in extras)
    if isinstance(sequence[0], NormLayer):
        plain = "" if cls.adds else "; no shortcut (a plain network)"
        return (
            f"Pre-activation: convolutions {kernels}, each after a norm and activation{tail}"
            f"{plain}."
        )
    normed = ", a norm after each" if any(isinstance(x, NormLayer) for x in sequence) else ""
    if not cls.adds:
        tail += ", the activation last" if cls.part(2) else ""
        return f"Convolutions {kernels}{normed}{tail}; no shortcut (a plain network)."
    tail += "; the activation after the sum" if cls.part(2) else ""
    return f"Convolutions {kernels}{normed}{tail}."


def _conv_name(conv: ConvLayer, convs: list) -> str:
    """`3x3`, or `first 3x3` where the class has several."""
    same = [x for x in convs if _kernel(x) == _kernel(conv)]
    if len(same) == 1:
        return _kernel(conv)
    index = same.index(conv)
    ordinal = _ORDINALS[index] if index < len(_ORDINALS) else f"#{index + 1}"
    return f"{ordinal} {_kernel(conv)}"


_ORDINALS = ("first", "second", "third", "fourth")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
