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

The arguments and the abstraction of layers' fields into them are
:mod:`resdsl.codegen.arguments`; the classes' and functions' names and the docstrings,
:mod:`resdsl.codegen.words`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import NamedTuple

from resdsl.codegen.arguments import (
    BLOCK_SYMBOLS,
    OPTIONS,
    SHORTCUT_WIDTHS,
    abstract,
    block_env,
    block_widths,
    instantiate,
    layer_fields,
    optional,
    registered,
    shortcut_env,
    structure,
    symbols_of,
)
from resdsl.codegen.words import name_classes, name_functions
from resdsl.ir import (
    Block,
    ConvLayer,
    GlobalContextLayer,
    Network,
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
    # adds its input only where the shape stays: none where it changes (RegNetZ's
    # `identity(transition: none)`)
    keeps_only: bool = False
    # what its identity shortcuts add: the input, or the first norm and activation's output
    identity_source: str = "input"
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
        layout = next((i for i, w in enumerate(words) if w in ("block", "bottleneck")), None)
        if layout is None:  # a kind's own word (`Bottle2neck`): `bottle2neck_block`
            words.append("block")
        elif words[layout] != "block":
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


class Outcome(NamedTuple):
    """The shortcut of one (width, stride) case: its layers' ops and abstract fields."""

    source: str
    layers: tuple[tuple[str, tuple], ...]  # (op, sorted fields)


Cell = tuple[bool, bool]  # (the width stays, the stride is 1)


class Case(NamedTuple):
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


class StageCall(NamedTuple):
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
        self.se_activation = self._se_activation()
        self.fuse = self._fuse()
        self._outcomes: dict[int, Outcome | None] = {}
        self.rank: dict[Outcome | None, int] = {}  # order of first use
        self.examples: dict[Outcome, Shortcut] = {}  # a shortcut of each outcome, as the IR has it
        plain = {
            block.shortcut.kind == "none" and not block.shortcut.transition
            for _, block in self.runs
        }
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

    def _se_activation(self) -> str:
        """Squeeze-excitation's activation, which its helper fixes for the whole network."""
        found = sorted({x.activation for x in self.layers() if isinstance(x, SqueezeExciteLayer)})
        if len(found) > 1:
            self.problem(f"squeeze-excitations of several activations ({', '.join(found)})")
        return found[0] if found else "relu"

    def _fuse(self) -> str:
        """How global context attention fuses its term, which its helper fixes for the whole
        network: "add" or "scale"."""
        layers = self.layers()
        fuses = sorted({x.fuse for x in layers if isinstance(x, GlobalContextLayer)})
        if len(fuses) > 1:
            self.problem("global context attention fused both by adding and by scaling")
        return fuses[0] if fuses else "add"

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
        name_classes(classes)
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
            abstract(
                [row[i] for row in aligned if row[i] is not None],
                BLOCK_SYMBOLS if self.two_dilations else BLOCK_SYMBOLS - {"first_dilation"},
                block_widths(template),
            )
            for i in range(len(layers))
        ]
        used = symbols_of(fields)
        redilated = "first_dilation" in used or any(b.two_dilations for b in members)
        for block in members:
            env = block_env(block, self.two_dilations)
            if not redilated:  # a class without `first_dilation` registers by the stride
                env.pop("first_dilation", None)
            rebuilt = [
                (x.torch, x.op, instantiate(f, env))
                for x, f in zip(layers, fields, strict=True)
                if not (optional(x) and not registered(env))
            ]
            if rebuilt != [(x.torch, x.op, layer_fields(x)) for x in _layers(block)]:
                self.problem(f"a {_describe(block)} block that no class rebuilds")
            if not block.pre and block.shortcut.source == "preactivated":
                self.problem("a shortcut that reads a pre-activation its block lacks")
        keeps_only = any(b.shortcut.transition for b in members)
        if keeps_only and any(
            (b.shortcut.kind == "none") != (b.in_channels != b.out_channels or b.stride != 1)
            for b in members
        ):
            self.problem("blocks whose shortcuts are not exactly those that keep the shape")
        identity_sources = {b.shortcut.source for b in members if b.shortcut.kind == "identity"}
        if len(identity_sources) > 1:
            self.problem("identity shortcuts of one class that read different tensors")
        if redilated:  # `first_dilation` defaults to `dilation`
            used |= {"dilation", "first_dilation"}
        return BlockClass(
            blocks=members,
            layers=layers,
            fields=fields,
            cut=(len(template.pre), len(template.pre) + len(template.branch)),
            takes=[name for name in OPTIONS if name in used],
            sources={b.shortcut.source for b in members if b.shortcut.layers},
            adds=template.shortcut.kind != "none" or keeps_only,
            keeps_only=keeps_only,
            identity_source=identity_sources.pop() if identity_sources else "input",
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
            env = shortcut_env(block)
            parts = []
            for layer in block.shortcut.layers:
                fields = abstract([layer], frozenset(env), SHORTCUT_WIDTHS)
                if instantiate(fields, env) != layer_fields(layer):
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
        name_functions(functions)
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
        body = block_env(blocks[-1], passes_first)
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
            env = block_env(block, passes_first)
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
        kept: list = []
        pending = False  # a layer that applies the stride of the convolution after it
        for layer in part:
            if not optional(layer):
                if pending and _convolves(layer):
                    layer, pending = _strided(layer), False
                kept.append(layer)
                continue
            if getattr(layer, "before", False):
                pending = True
                continue
            convs = [i for i, x in enumerate(kept) if _convolves(x)]
            if convs:
                kept[convs[-1]] = _strided(kept[convs[-1]])
        key.append(tuple(structure(x) for x in kept))
    # A plain block (`shortcut none`) adds nothing: a class of its own. A block that drops its
    # shortcut where its shape changes (`identity(transition: none)`) shares its stage's class.
    key.append(block.shortcut.kind == "none" and not block.shortcut.transition)
    return tuple(key)


def _convolves(layer) -> bool:
    """A convolution, or a composite layer whose shared convolution makes its paths."""
    return isinstance(layer, ConvLayer) or bool(getattr(layer, "shared", ()))


def _strided(layer):
    """`layer` (see `_convolves`) as the one that takes the block's stride."""
    if isinstance(layer, ConvLayer):
        return layer.model_copy(update={"strided": True})
    conv, *rest = layer.shared
    return layer.model_copy(update={"shared": (_strided(conv), *rest)})


def _variant(block: Block) -> tuple:
    """The layers of a block that only apply its stride (`optional`), where they are."""
    return tuple((i, structure(x)) for i, x in enumerate(_layers(block)) if optional(x))


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
