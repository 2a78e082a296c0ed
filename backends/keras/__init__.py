"""The Keras 3 backend: a :class:`resdsl.ir.Network` to a standalone functional-model module.

The module reads like keras.applications' resnet.py: a function per block class
(`bottleneck_block`), the shortcut functions the blocks call, each testing the block's widths
and stride (`project`), a function per stage layout (`stack`), and `build_model`, which lays
out the stem, one `stack` call per stage and the head.

The structure is the plan's (:mod:`resdsl.codegen.plan`), the same as the PyTorch module's:
which block functions exist and which values are their parameters (groups, dilation, ECA's
kernel, the widths that stages set), which shortcut functions exist with their `if` chains,
what each stage call gives its blocks, and the docstrings. This module renders that plan in
Keras: every line of layers comes from the IR's layer lists through one emitter per layer type
(`emitters.py`), each value as the plan's field says (a literal, or a parameter of the
function by :meth:`BlockFunction.names`), names the IR's (`layer.keras`, a block's layers under
its `{stage}_block{n}` prefix), so :func:`resdsl.interop.weights.layer_pairs` pairs every layer
with weights by construction. What Keras adds is checked here: the blocks of a function name
their layers alike, the stages name their blocks as keras.applications and stride where their
stack does. Anti-aliased blocks stride by a pool after a convolution and blocks at stride 1
have none: one function builds both, the pool under `if stride > 1` (with timm's two
dilations, `or first_dilation != dilation`). Where stages give one block class different
shortcuts (PyTorch's make_stage takes `shortcut`), the block function takes the shortcut
function as its `shortcut` argument.

Channel attention is a helper of the module (`squeeze_excite`, `efficient_channel_attention`)
whose layers are named after the IR's (`se_reduce`, `eca_conv`, ...); the blur pool is a small
layer of the module without weights (`BlurPool2D`); a group-norm network's `norm` is Keras'
GroupNormalization. Only what the network uses is emitted.

PyTorch's conventions are reproduced where Keras' defaults differ: convolutions that stride (and
all of a pre-activation block's, as keras' V2 nets) get an explicit symmetric ``ZeroPadding2D``
and a valid convolution (Keras' "same" pads only after at stride 2); norm momentum is converted
(PyTorch 0.1 is Keras 0.9); a stem's max pool after an activation that can be negative pads with
-inf; average pools that round up and ignore padding use Keras' "same" pooling, which does
exactly that for a 2x2 window at stride 2 on Keras' backends, and where a network's pool strides
by more than 2 (where "same" pads before too) a small layer of the module without weights
(`CeilAveragePooling2D`); a convolution that strides and dilates at once (Keras' refuses) runs
at stride 1 and keeps every `stride`-th pixel.

The backend is four modules: this one (the backend, the helpers the module template writes,
the module's assembly and `build_model`), `statements.py` (literals, statements, `def` lines),
`emitters.py` (one emitter per layer type) and `functions.py` (the shortcut, block and stage
functions). Compiling never imports keras or tensorflow.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from resdsl.codegen.backends import command_lines, regenerate_command
from resdsl.codegen.emitters import EMITTERS as PLUGIN_EMITTERS
from resdsl.codegen.layout import INDENT
from resdsl.codegen.plan import Plan
from resdsl.codegen.words import ACTIVATION_NAMES
from resdsl.ir import ConvLayer, GlobalPoolLayer, Network, NormLayer, PoolLayer, weighted

from .emitters import Context, Scope, layer_applies
from .functions import (
    VARIABLES,
    block_function,
    block_functions_of,
    block_names,
    stack_function,
    stage_call,
)
from .statements import Function, PlanError, chain, def_line, doc_text, float_literal, literal

# From this many blocks, the generated module raises Python's recursion limit (Keras walks
# the graph recursively; ResNet-1202 needs it, ResNet-152 does not).
DEEP_GRAPH_BLOCKS = 100


class KerasBackend:
    """Keras 3 functional models, channels-last, on the tensorflow, torch or jax backends."""

    name = "keras"
    suffix = ".py"

    def __init__(self) -> None:
        # The last network planned: `compile` asks for `unsupported`, then `emit`.
        self._last: tuple[Network, object, list[str]] | None = None

    def _plan(self, network: Network):
        if self._last is None or self._last[0] is not network:
            self._last = (network, *plan(network))
        return self._last[1], self._last[2]

    def emit(self, network: Network, command: str | None = None) -> str:
        """The generated module's text; its docstring says to regenerate it with `command`
        (`resdsl compile` gives the command line that wrote it), by default
        `resdsl compile SPEC --backend keras`. Raises ValueError where :meth:`unsupported`
        reports problems."""
        module, problems = self._plan(network)
        if problems:
            raise ValueError("the keras backend cannot express " + "; ".join(problems))
        regenerate = command_lines(command or regenerate_command(network, self.name), "    ")
        return _template().render({**module._asdict(), "regenerate": regenerate})

    def unsupported(self, network: Network) -> list[str]:
        """What the plan cannot rebuild exactly from the network's layers."""
        return list(self._plan(network)[1])


# --------------------------------------------------------------------------- the plan


class ConvHelper(NamedTuple):
    """`conv`, with the parameters the network uses and nothing else."""

    head: str
    pad_doc: str
    padding: str
    explicit: str
    init: tuple[str, ...]
    options: tuple[str, ...]
    subsample: bool  # some call may stride and dilate at once
    # the layer: Keras' Conv2D, or, choosing by `standardized`, StandardizedConv2D (BiT's)
    layer: str = "layers.Conv2D"


class NormHelper(NamedTuple):
    """`norm`: batch norm (with PyTorch's momentum converted) or group norm, the network's."""

    group: bool
    groups: int
    group_size: int | None
    kind: str  # the network's: batch, group, evonorm_s0 or frn
    epsilon: str
    momentum: str
    torch_momentum: str
    zero: bool


class AttentionHelper(NamedTuple):
    """`squeeze_excite`, `efficient_channel_attention` or `global_context`: the gate of
    squeeze-excitation (of global context: "" where it adds), how their 1x1 convolutions ask
    `conv` for a bias, and ECA's kernel initializer (if any)."""

    gate: str = "sigmoid"
    bias: str = ""
    init: str = ""
    activation: str = "relu"  # squeeze-excitation's, between its convolutions

    @property
    def activation_name(self) -> str:
        return ACTIVATION_NAMES[self.activation]


class SelectiveHelper(NamedTuple):
    """`selective_kernel`, `split_attention` or `aggregated_paths`: the paths' activation,
    whether they and the attention have norms, and how its convolutions ask `conv` for a bias
    (the paths' the network's, the attention's none)."""

    activation: str
    norm: bool
    bias: str = ""
    attn_bias: str = ""


class DropPath(NamedTuple):
    rate: str
    blocks: int
    formula: str


class Module(NamedTuple):
    """Everything the template lays out, every string computed here."""

    name: str
    version: str
    source: str
    sha256: str
    input_shape: str
    classes: int
    recursion_limit: bool
    conv: ConvHelper
    norm: NormHelper | None
    squeeze_excite: AttentionHelper | None
    make_divisible: bool
    limits: bool  # `make_divisible` takes a round limit and a minimum (select's attention)
    eca: AttentionHelper | None
    global_context: AttentionHelper | None
    bilinear: AttentionHelper | None
    aggregated: SelectiveHelper | None
    selective_kernel: SelectiveHelper | None
    split_attention: SelectiveHelper | None
    channel_pad: bool
    minus_inf_padding: bool
    blur_pool: bool
    ceil_pool: bool
    ceil_max_pool: bool
    conv_eps: str | None  # weight standardization's, where convolutions are standardized
    drop_path: DropPath | None
    plugin_helpers: tuple[str, ...]
    functions: tuple[Function, ...]
    ops: bool = False  # `keras.ops` (a composite layer's split)


# --------------------------------------------------------------------------- the module


def plan(network: Network) -> tuple[Module | None, list[str]]:
    """The module's plan, or what the network uses that the plan cannot express."""
    problems = _unsupported(network)
    if problems:
        return None, problems
    try:
        return _module(network), []
    except PlanError as error:
        return None, [str(error)]


def _unsupported(network: Network) -> list[str]:
    # Elaboration makes every ceil-mode pool a block's `stride`x`stride` average, unpadded: a
    # shortcut's (ResNet-D) or its branch's anti-aliasing (`anti_alias avg`).
    for stage in network.stages:
        for run in stage.runs:
            pools = [la.pool for la in run.block.layers if isinstance(la, PoolLayer)]
            if any(p.ceil and (p.kernel, p.padding) != (p.stride, 0) for p in pools):
                return [f"a ceil-mode pool in `{stage.name}` other than a stride-sized window"]
    for layer in (*network.stem.layers, *network.head.layers):
        pool = layer.pool if isinstance(layer, PoolLayer) else None
        if pool is not None and pool.ceil and (pool.kind, pool.padding) != ("max", 0):
            return ["a pool that rounds up outside a block, other than Caffe's unpadded max pool"]
    return []


def _ceil_pool_strides(network: Network) -> set[int]:
    """The strides of the network's ceil-mode average pools (in blocks only)."""
    return {
        layer.pool.stride
        for stage in network.stages
        for run in stage.runs
        for layer in run.block.layers
        if isinstance(layer, PoolLayer) and layer.pool.ceil
    }


def _module(network: Network) -> Module:
    from resdsl import __version__

    plan = Plan(network)
    if plan.problems:
        raise PlanError(plan.problems[0])
    conventions = network.conventions
    # Every layer with weights: convolutions (squeeze-excitation's included) and norms.
    layers = [*weighted(network.stem.layers), *weighted(network.head.layers)]
    for stage in network.stages:
        for run in stage.runs:
            layers += weighted(run.block.layers)
    convs = [layer.conv for layer in layers if isinstance(layer, ConvLayer)]
    if any(
        isinstance(la, NormLayer) and la.kind not in (conventions.norm, "layer") for la in layers
    ):
        raise PlanError("norms of another kind than the network's")
    ctx = Context(
        activation=conventions.activation,
        normalised=conventions.norm != "none",
        kaiming=conventions.init == "kaiming",
        classes=network.classes,
        bias={c.bias for c in convs},
        ceil_pool_layer=bool(_ceil_pool_strides(network) - {2}),
    )
    drop = conventions.stochastic_depth > 0
    block_functions = block_functions_of(plan, ctx)

    # Stack functions, one per block function and stride pattern; `stack` where only one.
    patterns: dict[tuple, str] = {}
    for function in block_functions:
        for call in function.calls:
            pattern = call.stage.strided_block if function.stride else None
            name = function.name.replace("_block", "_stack", 1)
            if any(k[0] == function.name and k[1] != pattern for k in patterns):
                name += f"_{pattern}"
            patterns.setdefault((function.name, pattern), name)
    if len(patterns) == 1:
        patterns = dict.fromkeys(patterns, "stack")

    functions: list[Function] = []
    written: set[str] = set()
    for function in block_functions:
        for shortcut in function.shortcuts:
            if shortcut is None or shortcut.name in written:
                continue
            written.add(shortcut.name)
            doc = doc_text("The path from a block's input to its addition.")
            params = [VARIABLES[s] if len(shortcut.sources) > 1 else "x" for s in shortcut.sources]
            head = def_line(shortcut.name, [*params, *shortcut.params])
            functions.append(Function(head, doc, shortcut.body))
        functions.append(block_function(function, ctx, drop))
        suffixes = {block_names(call.stage)[1] for call in plan.stages}
        if len(suffixes) > 1:
            raise PlanError("stages whose blocks are named in several ways")
        for (owner, pattern), name in patterns.items():
            if owner == function.name:
                functions.append(stack_function(name, function, pattern, drop, *suffixes))
    stage_calls: list[str] = []
    for call in plan.stages:
        function = next(f for f in block_functions if f.cls is call.block)
        pattern = call.stage.strided_block if function.stride else None
        name = patterns[(function.name, pattern)]
        stage_calls += stage_call(call, function, name, pattern, drop)
    functions.append(_build_model(network, ctx, stage_calls))

    norm = None
    if "norm" in ctx.uses:
        norm = NormHelper(
            group=conventions.norm == "group",
            groups=conventions.norm_groups,
            group_size=conventions.norm_group_size,
            kind=conventions.norm,
            epsilon=float_literal(conventions.norm_eps),
            momentum=float_literal(round(1.0 - conventions.norm_momentum, 12)),
            torch_momentum=float_literal(conventions.norm_momentum),
            zero="norm.zero" in ctx.uses,
        )
    squeeze_excite = None
    if "squeeze_excite" in ctx.uses:
        if len(ctx.gates) != 1:
            raise PlanError("squeeze-excitation with several gates")
        (gate,) = ctx.gates
        if len(ctx.se_activations) != 1:
            raise PlanError("squeeze-excitation with several activations")
        (se_activation,) = ctx.se_activations
        if len(ctx.bias) > 1:
            ctx.uses.add("conv.bias")
        squeeze_excite = AttentionHelper(
            gate=gate, bias=", bias=True" * (len(ctx.bias) > 1), activation=se_activation
        )
    eca = None
    if "efficient_channel_attention" in ctx.uses:
        init = ""
        if ctx.kaiming:
            init = 'keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")'
        eca = AttentionHelper(init=init)
    global_context = None
    if "global_context" in ctx.uses:
        if len(ctx.fuses) != 1:
            raise PlanError("global context fused both by adding and by scaling")
        if len(ctx.bias) > 1:
            ctx.uses.add("conv.bias")
        gate = "sigmoid" if ctx.fuses == {"scale"} else ""
        global_context = AttentionHelper(gate=gate, bias=", bias=True" * (len(ctx.bias) > 1))
    bilinear = None
    if "bilinear_attention" in ctx.uses:
        if len(ctx.bilinear_bias) != 1:
            raise PlanError("bilinear attention with and without biases")
        (biased,) = ctx.bilinear_bias
        mixed = len(ctx.bias) > 1
        if mixed and biased:
            ctx.uses.add("conv.bias")
        bilinear = AttentionHelper(bias=", bias=True" * (mixed and biased))
    aggregated = None
    if "aggregated_paths" in ctx.uses:
        biased = "aggregated_paths.bias" in ctx.uses
        mixed = len(ctx.bias) > 1
        if mixed and biased:
            ctx.uses.add("conv.bias")
        aggregated = SelectiveHelper(
            activation=conventions.activation,
            norm=ctx.normalised,
            bias=", bias=True" * (mixed and biased),
        )
    selective_kernel = _selective_helper("selective_kernel", conventions.activation, ctx)
    split_attention = _selective_helper("split_attention", "relu", ctx)
    drop_path = None
    if drop:
        formula = "DROP_PATH_RATE * index / (TOTAL_BLOCKS - 1)"
        drop_path = DropPath(
            rate=float_literal(conventions.stochastic_depth),
            blocks=network.total_blocks,
            formula=formula if network.total_blocks > 1 else "DROP_PATH_RATE",
        )
    shape = network.input
    return Module(
        name=network.name,
        version=__version__,
        source=network.source.file,
        sha256=network.source.sha256,
        input_shape=f"({shape.height}, {shape.width}, {shape.channels})",
        classes=network.classes,
        recursion_limit=network.total_blocks >= DEEP_GRAPH_BLOCKS,
        conv=_conv_helper(ctx),
        norm=norm,
        squeeze_excite=squeeze_excite,
        make_divisible="make_divisible" in ctx.uses,
        limits="make_divisible.limits" in ctx.uses,
        eca=eca,
        global_context=global_context,
        bilinear=bilinear,
        aggregated=aggregated,
        selective_kernel=selective_kernel,
        split_attention=split_attention,
        channel_pad="ChannelPad" in ctx.uses,
        minus_inf_padding="MinusInfPadding2D" in ctx.uses,
        blur_pool="BlurPool2D" in ctx.uses,
        ceil_pool="CeilAveragePooling2D" in ctx.uses,
        ceil_max_pool="CeilMaxPooling2D" in ctx.uses,
        conv_eps=float_literal(network.conventions.conv_eps)
        if network.conventions.conv_eps is not None
        else None,
        drop_path=drop_path,
        plugin_helpers=tuple(
            e.helper for op, e in PLUGIN_EMITTERS["keras"].items() if f"plugin:{op}" in ctx.uses
        ),
        functions=tuple(functions),
        ops="ops" in ctx.uses,
    )


def _selective_helper(helper: str, activation: str, ctx: Context) -> SelectiveHelper | None:
    """`selective_kernel` or `split_attention` (`helper`), where the module calls it: its
    paths' activation, and how its convolutions ask `conv` for a bias where the network's
    convolutions do not agree on one (the attention's 1x1s: none in the selective kernel, one
    in split attention)."""
    if helper not in ctx.uses:
        return None
    mixed = len(ctx.bias) > 1
    if mixed:
        ctx.uses.add("conv.bias")
    attention_bias = helper == "split_attention"
    return SelectiveHelper(
        activation=activation,
        norm="norm" in ctx.uses,
        bias=str(f"{helper}.bias" in ctx.uses) if mixed else "",
        attn_bias=f", bias={attention_bias}" if mixed else "",
    )


def _conv_helper(ctx: Context) -> ConvHelper:
    """`conv` with the parameters the emitted calls use."""

    def used(option: str) -> bool:
        return f"conv.{option}" in ctx.uses

    defaults = {
        "groups": "1",
        "dilation": "1",
        "pad": "False",
        "pad_by": "None",
        "bias": "False",
        "zero": "False",
        "standardized": "False",
    }
    params = ["x", "filters", "kernel", "name", "stride=1"]
    params += [f"{option}={value}" for option, value in defaults.items() if used(option)]
    options = ["dilation_rate=dilation"] * used("dilation") + ["groups=groups"] * used("groups")
    options.append("use_bias=bias" if len(ctx.bias) > 1 else f"use_bias={min(ctx.bias)}")
    init: tuple[str, ...] = ()
    if ctx.kaiming:
        init = (
            "# He et al.'s normal initialization, scaled by the fan-out (torchvision's).",
            'init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")',
        )
        zero = '"zeros" if zero else init' if used("zero") else "init"
        options.append(f"kernel_initializer={zero}")
    elif used("zero"):
        options.append('kernel_initializer="zeros" if zero else "glorot_uniform"')
    same = "dilation * (kernel - 1) // 2" if used("dilation") else "(kernel - 1) // 2"
    explicit = ["stride > 1", "pad"] if used("pad") else ["stride > 1"]
    if used("pad_by"):  # an even kernel: PyTorch pads by half of it on both sides
        explicit.append("pad_by is not None")
    asks = " or ".join(f"`{name}`" for name in ("pad", "pad_by") if used(name))  # at most 2
    return ConvHelper(
        head=def_line("conv", params),
        pad_doc=f" or {asks} asks" if asks else "",
        padding=f"{same} if pad_by is None else pad_by" if used("pad_by") else same,
        explicit=f"({' or '.join(explicit)})" if len(explicit) > 1 else explicit[0],
        init=init,
        options=tuple(options),
        subsample=used("subsample"),
        layer="(StandardizedConv2D if standardized else layers.Conv2D)"
        if used("standardized")
        else "layers.Conv2D",
    )


def _build_model(network: Network, ctx: Context, stage_calls: list[str]) -> Function:
    """`build_model`: the stem, the stages and the head, the stem and head read from the IR's
    layer lists with their numbers and names as literals."""
    scope = Scope()
    body: list[str] = []
    if network.total_blocks >= DEEP_GRAPH_BLOCKS:
        limit = 10 * network.total_blocks + 1000
        body += [
            f"{INDENT}# Keras walks the layer graph recursively: this deep a net needs more than "
            "Python's default.",
            f"{INDENT}sys.setrecursionlimit(max(sys.getrecursionlimit(), {limit}))",
        ]
    body.append(f"{INDENT}inputs = keras.Input(shape=input_shape or INPUT_SHAPE)")
    body += chain(layer_applies(network.stem.layers, scope, ctx), "inputs", "x", "x")
    body += stage_calls
    # keras.applications' options: the head's layers before its pool (a pre-activation net's
    # final norm) belong to the features; without the top, an optional global pool ends it.
    head = list(network.head.layers)
    pooled = next(i for i, layer in enumerate(head) if isinstance(layer, GlobalPoolLayer))
    body += chain(layer_applies(head[:pooled], scope, ctx), "x", "x", "x")
    name = literal(network.name)
    body += [
        f"{INDENT}if not include_top:",
        f'{INDENT * 2}if pooling == "avg":',
        f'{INDENT * 3}x = layers.GlobalAveragePooling2D(name="avg_pool")(x)',
        f'{INDENT * 2}elif pooling == "max":',
        f'{INDENT * 3}x = layers.GlobalMaxPooling2D(name="max_pool")(x)',
        f"{INDENT * 2}return keras.Model(inputs, x, name={name})",
    ]
    body += chain(layer_applies(head[pooled:], scope, ctx), "x", "x", "outputs")
    body.append(f"{INDENT}return keras.Model(inputs, outputs, name={name})")
    params = (
        "num_classes: int | None = None",
        "input_shape: tuple | None = None",
        "include_top: bool = True",
        "pooling: str | None = None",
        "classifier_activation: str | None = None",
    )
    signature = def_line("build_model", list(params), " -> keras.Model")
    doc = (
        f"The `{network.name}` network for channels-last images of `input_shape`, with a linear "
        'classifier of `num_classes` outputs (logits; `classifier_activation`, e.g. "softmax", '
        "applies one); defaults from the spec. As keras.applications: without `include_top`, "
        'the last feature map, pooled by `pooling` ("avg" or "max") where given.'
    )
    return Function(signature, doc_text(doc), tuple(body))


@lru_cache(maxsize=1)
def _template():
    from resdsl.codegen.backends import template_environment

    return template_environment(Path(__file__).parent / "templates").get_template("model.py.j2")


__all__ = ["KerasBackend", "plan"]
