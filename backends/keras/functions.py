"""The functions of the module: the shortcut functions with their `if` chains, one function
per block class of the plan, the stage (`stack`) functions and the stage calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from resdsl.codegen.arguments import Divisible, Paths
from resdsl.codegen.layout import INDENT
from resdsl.codegen.plan import BlockClass, Outcome, Plan, ShortcutFunction, StageCall, align
from resdsl.codegen.words import block_doc
from resdsl.ir import Block, ConvLayer, PadChannelsLayer

from .composites import first_line, needs_first
from .emitters import Context, Scope, layer_applies
from .statements import (
    Apply,
    Function,
    PlanError,
    chain,
    def_line,
    doc_text,
    literal,
    prefixed,
    statement,
)

# --------------------------------------------------------------------------- shortcuts

VARIABLES = {"input": "x", "preactivated": "preact"}  # a block's tensors a shortcut reads
# The tests of a shortcut function's conditions (the plan's templates) in Keras' words: the
# block's input against the output's width, `filters`, and the stride.
KERAS_TESTS = {
    "same": "x.shape[-1] == filters",
    "grow": "x.shape[-1] != filters",
    "keep": "stride == 1",
    "step": "stride > 1",
}


class ShortcutCode(NamedTuple):
    """A shortcut function of the plan as Keras code: the block tensors it reads (`sources`,
    "input" or "preactivated"), its other parameters, and its body."""

    name: str
    sources: tuple[str, ...]
    params: tuple[str, ...]
    body: tuple[str, ...]


def _source(outcome: Outcome | None) -> str:
    return "input" if outcome is None else outcome.source  # the identity is the block's input


def _sources(function: ShortcutFunction) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_source(case.outcome) for case in function.chain))


def _shortcut_code(
    plan: Plan, function: ShortcutFunction, ctx: Context, full: tuple[str, ...] = ()
) -> ShortcutCode | None:
    """The plan's shortcut function in Keras; None where every case is the identity. With
    `full` (the tensors it reads), it takes every parameter, as the argument of a block
    function whose stages give different shortcuts must."""
    if all(case.outcome is None for case in function.chain) and not full:
        return None
    sources = full or _sources(function)
    # timm's RegNetV: the identity is the first norm and activation's output
    identity = "input"
    if any(plan.stage_class(s).identity_source == "preactivated" for s in function.stages):
        identity = "preactivated"
        sources = tuple(dict.fromkeys((*sources, identity)))
    names = {s: VARIABLES[s] if len(sources) > 1 else "x" for s in sources}
    conditions = "".join(case.template or "" for case in function.chain)
    examples = [plan.examples[case.outcome] for case in function.chain if case.outcome]
    layers = [layer for shortcut in examples for layer in shortcut.layers]
    uses_width = (
        "{same}" in conditions
        or "{grow}" in conditions
        or any(isinstance(layer, (ConvLayer, PadChannelsLayer)) for layer in layers)
    )
    uses_stride = (
        "{keep}" in conditions
        or "{step}" in conditions
        or any(getattr(layer, "strided", False) for layer in layers)
    )
    if full:
        uses_width = uses_stride = True
    params = ("filters",) * uses_width + ("stride",) * uses_stride + ("name",) * bool(layers)
    widths = {"out_channels": "filters", "in_channels": "x.shape[-1]", "stride": "stride"}
    scope = Scope(names=widths)

    def case_lines(outcome: Outcome | None, depth: int) -> list[str]:
        source = names[identity if outcome is None else outcome.source]
        if outcome is None:
            return [f"{INDENT * depth}return {source}"]
        shortcut = plan.examples[outcome]
        fields = [dict(values) for _, values in outcome.layers]
        applies = layer_applies(list(shortcut.layers), scope, ctx, fields)
        if not applies:  # an identity that keeps a PyTorch index only
            return [f"{INDENT * depth}return {source}"]
        return chain(applies, source, "x", "return", depth)

    body: list[str] = []
    for case in function.chain:
        condition = case.condition(KERAS_TESTS)
        if condition is None:
            body += case_lines(case.outcome, 1)
        else:
            body.append(f"{INDENT}if {condition}:")
            body += case_lines(case.outcome, 2)
    return ShortcutCode(function.name, sources, params, tuple(body))


# --------------------------------------------------------------------------- blocks


@dataclass
class BlockFunction:
    """The plan's block class as a Keras function, with the stage calls that use it and the
    shortcut function of each (None: the identity, or no shortcut). Where stages give its
    blocks different shortcuts, as PyTorch's make_stage does, the function takes the shortcut
    function as its `shortcut` argument."""

    cls: BlockClass
    calls: list[StageCall]
    shortcuts: list[ShortcutCode | None]

    @property
    def shortcut(self) -> ShortcutCode | None:
        return self.shortcuts[0]

    @property
    def takes_shortcut(self) -> bool:
        return len(set(self.shortcuts)) > 1

    @property
    def name(self) -> str:
        return self.cls.snake_name

    @property
    def blocks(self) -> list[Block]:
        return self.cls.blocks

    @property
    def out_filters(self) -> bool:
        """Whether some block's output is wider than its inner convolutions."""
        return any(b.mid_channels != b.out_channels for b in self.blocks)

    @property
    def stride(self) -> bool:
        return any(b.stride != 1 for b in self.blocks)

    @property
    def dilation(self) -> bool:
        return "dilation" in self.cls.takes

    @property
    def two_dilations(self) -> bool:
        """timm's pair: `dilation` the stage's, `first_dilation` the block's own."""
        return "first_dilation" in self.cls.takes

    @property
    def first_dilation(self) -> bool:
        """Whether the stack takes `first_dilation`: the first block's dilation, where a
        stage's first block dilates unlike its others (the stage before's)."""
        return self.two_dilations or any(c.first_dilation is not None for c in self.calls)

    def params(self) -> list[str]:
        """The parameters a stage sets per block, after `x`: widths and options."""
        options = [name for name in ("groups", "eca_kernel") if name in self.cls.takes]
        return ["filters", *["out_filters"] * self.out_filters, *options]

    def names(self) -> dict[str, str]:
        """The plan's arguments by this function's parameters."""
        names = {
            # once the branch has begun, `x` is no longer the input: a block that sizes a
            # layer by its input (RegNet's squeeze-excitation) reads it first
            "in_channels": "in_channels" if self.reads_input_width else "x.shape[-1]",
            "mid_channels": "filters",
            "out_channels": "out_filters" if self.out_filters else "filters",
        }
        names.update({name: name for name in self.cls.takes})
        if self.stride:
            names["stride"] = "stride"
        return names

    @property
    def reads_input_width(self) -> bool:
        """Whether an attention inside the branch is sized by the block's input channels."""
        return any(
            isinstance(value, Divisible) and "in_channels" in value.names
            for fields in self.cls.fields
            for value in fields.values()
        )

    def scope(self) -> Scope:
        # keras.applications' V2 (pre-activation) blocks pad explicitly at any stride, its V1
        # blocks by "same": the layer names (`_2_pad`) follow.
        guard = ["stride > 1"] * self.stride + ["first_dilation != dilation"] * self.two_dilations
        return Scope(names=self.names(), pad=self.blocks[0].preact, guard=" or ".join(guard))


def block_functions_of(plan: Plan, ctx: Context) -> list[BlockFunction]:
    """The plan's block classes that stages use, each with its shortcut function: Keras calls
    the shortcut inside the block, so a class's stages must agree on one."""
    uses = {id(cls): [call for call in plan.stages if call.block is cls] for cls in plan.classes}
    # The shortcut functions that are a block function's argument, with what they read: all
    # of them the tensors any of them reads.
    full: dict[int, tuple[str, ...]] = {}
    for calls in uses.values():
        given = [call.function for call in calls]
        if len({id(f) for f in given}) > 1 and None not in given:
            sources = tuple(sorted({s for f in given for s in _sources(f)}))
            for f in given:
                full[id(f)] = tuple(sorted({*full.get(id(f), ()), *sources}))
    shortcuts = {
        id(f): _shortcut_code(plan, f, ctx, full=full.get(id(f), ())) for f in plan.functions
    } | {id(None): None}
    functions = []
    for cls in plan.classes:
        calls = uses[id(cls)]
        if not calls:
            continue
        function = BlockFunction(cls, calls, [shortcuts[id(call.function)] for call in calls])
        if function.takes_shortcut and (
            None in function.shortcuts or len({s.sources for s in function.shortcuts}) > 1
        ):
            raise PlanError(f"stages of `{cls.snake_name}` whose shortcuts read different tensors")
        functions.append(function)
    return functions


def _check_names(function: BlockFunction) -> None:
    """Every block of the function names its layers (under its prefix) as the function does:
    the plan checks PyTorch's names, this Keras'."""
    cls = function.cls
    for block in cls.blocks:
        own = [*block.pre, *block.branch, *block.post]
        pairs = zip(cls.layers, align(cls.layers, own), strict=True)
        adds = {b.add for b in cls.blocks if b.add or not b.shortcut.transition}
        if len(adds) > 1 or any(x is not None and x.keras != t.keras for t, x in pairs):
            raise PlanError(f"a block whose layers `{function.name}` would name otherwise")


def _block_body(function: BlockFunction, ctx: Context, residual: tuple | None, drop: bool):
    """A block function's body, read from the class's layers and fields: the pre-activation,
    the shortcut (`residual`: its call and the tensor it reads; None: the input), the branch,
    stochastic depth, the addition and the post-activation."""
    cls, scope = function.cls, function.scope()

    def applies(index: int) -> list[Apply]:
        pairs = cls.part(index)
        return layer_applies([x for x, _ in pairs], scope, ctx, [f for _, f in pairs])

    lines: list[str] = []
    if function.reads_input_width or cls.keeps_only:
        lines.append(f"{INDENT}in_channels = x.shape[-1]")
    paths = [f["paths"] for f in cls.fields if isinstance(f.get("paths"), Paths)]
    if any(needs_first(p) for p in paths):
        lines.append(first_line(function.names()))
    source = "x"
    if cls.part(0):
        lines += chain(applies(0), "x", "preact", "preact")
        source = "preact"
    post = applies(2)
    if not cls.adds:  # a plain network's block: the branch alone
        lines += chain(applies(1), source, "x", "x" if post else "return")
        return lines + chain(post, "x", "x", "return")
    if residual is None:
        # timm's RegNetV: the identity adds the first norm and activation's output
        identity = "preact" if source == "preact" and cls.identity_source == "preactivated" else "x"
        lines.append(f"{INDENT}residual = {identity}")
    else:
        lines += statement("residual", *residual)
    lines += chain(applies(1), source, "x", "x")
    if drop:
        dropout = Apply(
            "layers.Dropout",
            ("drop_rate", "noise_shape=(None, 1, 1, 1)", f"name={prefixed('drop')}"),
        )
        lines.append(f"{INDENT}if drop_rate:  # stochastic depth: drop whole branches in training")
        lines += statement("x", dropout, "x", 2)
    adding = next(b for b in cls.blocks if b.add)
    add = Apply("layers.Add", (f"name={scope.name(adding.add)}",))
    if cls.keeps_only:  # RegNetZ's: no shortcut where the shape changes
        stride = "stride" if function.stride else "1"
        out = function.names()["out_channels"]
        lines.append(f"{INDENT}if in_channels == {out} and {stride} == 1:")
        lines += statement("x", add, "[residual, x]", 2)
        return lines + (chain(post, "x", "x", "return") if post else [f"{INDENT}return x"])
    lines += statement("x" if post else "return", add, "[residual, x]")
    lines += chain(post, "x", "x", "return")
    return lines


def block_function(function: BlockFunction, ctx: Context, drop: bool) -> Function:
    """The block function: the plan's class, its layers' values by the function's parameters."""
    _check_names(function)
    cls = function.cls
    if not cls.part(0) and any(b.shortcut.source == "preactivated" for b in cls.blocks):
        raise PlanError("a shortcut that reads a pre-activation its block lacks")
    residual = None
    shortcut = function.shortcut
    if shortcut is not None:
        values = {
            "filters": function.names()["out_channels"],
            "stride": "stride" if function.stride else "1",
            "name": "name",
        }
        args = [VARIABLES[s] for s in shortcut.sources[1:]] + [values[p] for p in shortcut.params]
        called = "shortcut" if function.takes_shortcut else shortcut.name
        residual = (Apply(called, tuple(args), True), VARIABLES[shortcut.sources[0]])
    body = _block_body(function, ctx, residual, drop)
    params = ["x", *function.params(), *["stride"] * function.stride]
    params += ["dilation"] * function.dilation + ["first_dilation"] * function.two_dilations
    params += ["shortcut"] * function.takes_shortcut + ["name", *["drop_rate"] * drop]
    return Function(def_line(function.name, params), doc_text(block_doc(cls)), tuple(body))


# --------------------------------------------------------------------------- stages


def block_names(stage) -> tuple[str, str]:
    """How a stack names its blocks: the stage's part of the Keras prefix, which the stack
    takes as `name` (keras.applications' `conv2`, Keras 2's RegNet `Stage_0_XBlock`), and the
    block's, with `{number}` (from 1) or `{index}` (from 0): `_block{number}`, `_{index}`."""
    template = stage.block_names[1]
    at = min(template.find(f) for f in ("{index}", "{number}") if f in template)
    cut = template.rfind("_", 0, at)
    return template[:cut].format(**stage._name_fields(0)), template[cut:]


def _block_name(suffix: str, number: str) -> str:
    """The f-string naming a block by `suffix` (see :func:`block_names`), whose number from 1
    is `number`: "1", "{i}" or "{blocks}"."""
    index = {"1": "0", "{i}": "{i - 1}", "{blocks}": "{blocks - 1}"}[number]
    return 'f"{name}' + suffix.replace("{number}", number).replace("{index}", index) + '"'


def stack_function(
    name: str,
    function: BlockFunction,
    pattern: str | None,
    drop: bool,
    suffix: str = "_block{number}",
):
    """A stage of `function`'s blocks; `pattern` says which applies the stride ("first",
    "last", or None where none does)."""
    widths = function.params()
    dilations = ["dilation"] * function.dilation + ["first_dilation"] * function.first_dilation
    params = ["x", "blocks", *widths, *["stride"] * function.stride, *dilations]
    params += ["shortcut"] * function.takes_shortcut + ["name"]
    params += ["first_block"] * drop
    rest = "dilation" if function.dilation else None
    first = "first_dilation" if function.first_dilation else rest

    def call(target: str, stride: str | None, dilation, number: str, depth: int) -> list[str]:
        """A block's call; `dilation` is its own (with two dilations, its `first_dilation`
        beside the stage's `dilation`)."""
        args = [*widths, *([f"stride={stride}"] if stride else [])]
        if function.two_dilations:
            args += ["dilation=dilation", f"first_dilation={dilation}"]
        elif dilation:
            args.append(f"dilation={dilation}")
        if function.takes_shortcut:
            args.append("shortcut=shortcut")
        args.append(f"name={_block_name(suffix, number)}")
        if drop:
            index = "first_block" if number == "1" else f"first_block + {number[1:-1]} - 1"
            args.append(f"drop_rate=drop_path_rate({index})")
        return statement(target, Apply(function.name, tuple(args), helper=True), "x", depth)

    if pattern == "first" or (pattern is None and first != rest):
        body = call("x", "stride" if pattern else None, first, "1", 1)
        body += [f"{INDENT}for i in range(2, blocks + 1):"]
        body += call("x", "1" if pattern else None, rest, "{i}", 2)
        body.append(f"{INDENT}return x")
    elif pattern == "last":
        # The first block dilates as the stage before, the last strides: a one-block stage's
        # only block does both.
        loop, last = rest, rest
        if first != rest:
            loop = f"{first} if i == 1 else {rest}"
            last = f"{rest} if blocks > 1 else {first}"
        body = [f"{INDENT}for i in range(1, blocks):", *call("x", "1", loop, "{i}", 2)]
        body += call("return", "stride", last, "{blocks}", 1)
    else:
        body = [f"{INDENT}for i in range(1, blocks + 1):", *call("x", None, rest, "{i}", 2)]
        body.append(f"{INDENT}return x")
    first, last = (_block_name(suffix, n)[2:-1] for n in ("1", "{blocks}"))
    doc = f"A stage: `blocks` blocks by `{function.name}`, named `{first}` to `{last}`"
    if "{blocks - 1}" in last:  # too long a name to break well: the second instead
        second = suffix.format(number=2, index=1)
        doc = f"A stage: `blocks` blocks by `{function.name}`, named `{first}`, "
        doc += f"`{{name}}{second}` and so on"
    if pattern:
        doc += f"; the {pattern} applies the stride"
    if function.two_dilations:
        doc += "; the first block's first convolution dilates by `first_dilation` (the stage "
        doc += "before's), the rest by `dilation`"
    elif function.first_dilation:
        doc += "; the first dilates by `first_dilation` (the stage before's), the others by "
        doc += "`dilation`"
    if function.takes_shortcut:
        doc += "; `shortcut` is their shortcut function"
    if drop:
        doc += "; `first_block` is the first's index in the whole network (stochastic depth)"
    return Function(def_line(name, params), doc_text(doc + "."), tuple(body))


def stage_call(call: StageCall, function: BlockFunction, name: str, pattern: str | None, drop):
    """`x = stack(x, blocks=..., name=...)` for the plan's stage call, checked against what
    Keras adds: the blocks' names and where the stack strides."""
    stage = call.stage
    strided_at = {"first": 0, "last": stage.blocks - 1, None: None}[pattern]
    position = 0
    for run in stage.runs:
        if run.first_index != call.first_index + position:
            raise PlanError(f"stage `{stage.name}` numbers its blocks out of order")
        for offset in range(run.count) if run.count <= 2 else (0, run.count - 1):
            if position + offset != strided_at and run.block.stride != 1:
                raise PlanError(f"stage `{stage.name}` strides where its stack does not")
        position += run.count
    prefix, suffix = block_names(stage)
    for number in (0, stage.blocks - 1):
        named = suffix.format(number=number + 1, index=number)
        if stage.keras_prefix(number) != prefix + named:
            raise PlanError(f"stage `{stage.name}` names its blocks unlike its stack")
    values = {"filters": call.mid_channels, "out_filters": call.out_channels, **call.options}
    args = [f"blocks={call.blocks}", *(f"{p}={values[p]}" for p in function.params())]
    if function.stride:
        args.append(f"stride={call.stride}")
    if function.dilation:
        dilation = call.options["dilation"]
        args.append(f"dilation={dilation}")
        if function.first_dilation:
            args.append(f"first_dilation={call.first_dilation or dilation}")
    if function.takes_shortcut:
        index = next(i for i, c in enumerate(function.calls) if c is call)
        args.append(f"shortcut={function.shortcuts[index].name}")
    args.append(f"name={literal(prefix)}")
    if drop:
        args.append(f"first_block={call.first_index}")
    return statement("x", Apply(name, tuple(args), helper=True), "x")
