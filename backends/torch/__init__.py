"""The PyTorch backend: an elaborated network to a standalone module that imports only torch.

The generated module reads like torchvision's resnet.py: one class per block class, the
shortcut functions, `make_stage` (torchvision's `_make_layer`: one call per stage with the real
block count, so ResNet-152's module is as long as ResNet-50's), the model class and
`build_model`.

The structure is the plan's (:mod:`resdsl.codegen.plan`), shared with the Keras backend: the
block classes and the values they take, the shortcut functions and their cases, the stage
calls, the docstrings. This module renders it: :class:`TorchPlan` adds what only PyTorch has,
the modules as the attributes they occupy (a dotted IR name `conv1.3` is index 3 of Sequential
`conv1`), the shortcut attribute (`downsample`) and the model class's name; the jinja2 templates
lay the text out. Nothing is decided from a block type's name and no name is derived here:
every attribute is a layer's `torch` name from the IR, every value a layer's or the plan's.

* Stage calls: where a block needs two dilations at once, the class takes timm's convention
  (`dilation` the stage's, `first_dilation` the block's own) and anti-aliases where
  `stride != 1 or first_dilation != dilation`; elsewhere torchvision's, one `dilation` that
  make_stage replaces.
* Helpers: `BlurPool2d`, `SqueezeExcite`, `EfficientChannelAttention`, `GlobalContext`,
  `BilinearAttention`, `ConvNormAct`, `SelectiveKernel`, `SplitAttn` (timm's attribute names,
  so timm's state dicts load; `selective`), `AggregatedPaths` (`aggregated`) and
  `make_divisible` are written only into modules that use them; what they
  compute rather than take (a blur pool's padding, squeeze-excitation's 1x1 biased
  convolutions) is checked against the IR too (`emitters.implied`), and so is the network's
  norm, which the module's `norm` helper builds (batch or group norm).
* Shortcuts: pre-activation blocks' shortcuts read the pre-activated input or (shortcut
  `source` "input") the block's input; a class meeting both tells them apart by the type of
  the module, `FromInput` for the latter.
* `zero_last_norm`: the layers the IR marks `zero_init` (the last norm of a post-activation
  branch, the last convolution of a pre-activation one, as timm's ResNetV2) start at zero.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from resdsl import __version__
from resdsl.codegen.arguments import OPTION_DEFAULTS
from resdsl.codegen.backends import command_lines, regenerate_command
from resdsl.codegen.emitters import EMITTERS as PLUGIN_EMITTERS
from resdsl.codegen.layout import INDENT, LINE, Call, Choice, docstring, flat, layout
from resdsl.codegen.plan import TORCH_TESTS, BlockClass, Outcome, ShortcutFunction
from resdsl.codegen.words import ACTIVATION_NAMES, block_doc
from resdsl.ir import Network, flatten

from . import aggregated, composites, selective
from .emitters import float_literal, module_call
from .plan import _ACTIVATION, TorchPlan, _is_helper, _Unit
from .stages import (
    make_stage,
    stage_container,
    stage_holder,
    stage_init,
    stage_loop,
)

_GATES = {"sigmoid": "nn.Sigmoid()", "hard_sigmoid": "nn.Hardsigmoid()"}
_INIT_DOC = {
    "kaiming": "torchvision's: He normal (fan out) convolutions, unit norms, default Linear.",
    "glorot": "keras': Glorot uniform convolutions and Linear, zero biases, unit norms.",
}


# --------------------------------------------------------------------------- rendering


def _register(
    plan: TorchPlan, units: list[_Unit], seen: dict[str, _Unit], where: str = "stride != 1"
) -> list[str]:
    """`self.attr = module` for each unit not registered yet; a unit met again (the activation
    that a block or the model shares) is the module registered first. `_optional` units are
    registered `where` the class says (see `_registered`)."""
    lines = []
    for unit in units:
        if unit.children is not None:  # a container: its modules by name, in order
            if unit.attr in seen:
                plan.problem(f"two different layers named `{unit.attr}`")
            seen[unit.attr] = unit
            lines += layout(f"self.{unit.attr} = ", _container_call(plan, unit.children), 2)
            continue
        if unit.attr in seen:
            if (seen[unit.attr].ops, seen[unit.attr].fields) != (unit.ops, unit.fields):
                plan.problem(f"two different layers named `{unit.attr}`")
            continue
        if unit.ops == ["branches"] and not _is_helper(unit.fields[0]):
            values = unit.fields[0]
            lines += _register(
                plan,
                [_Unit(a, [op], [f], False) for a, op, f in composites.shared(values)],
                seen,
            )
            lines += composites.register(values, plan.activation)
            continue
        seen[unit.attr] = unit
        lines += layout(f"self.{unit.attr} = ", _module(plan, unit, where), 2)
    return lines


def _module(plan: TorchPlan, unit: _Unit, where: str = "stride != 1") -> str | Call | Choice:
    """The module expression of one unit (not a container)."""
    if unit.named:
        return selective.unit_call(unit.ops, unit.fields)
    if unit.ops == ["branches"] and aggregated.is_aggregated(unit.fields[0]):
        return aggregated.aggregated_call(unit.fields[0])
    if unit.ops == ["branches"]:
        return selective.selective_call(unit.fields[0])
    parts = [
        module_call(op, values, plan.activation)
        for op, values in zip(unit.ops, unit.fields, strict=True)
    ]
    module = Call("nn.Sequential", tuple(parts)) if unit.sequential else parts[0]
    if unit.optional:  # as timm: an identity where the block does not stride
        module = Choice(module, where, "nn.Identity()")
    return module


def _container_call(plan: TorchPlan, children: list[_Unit]) -> Call:
    """`nn.Sequential(OrderedDict(name=module, ...))`: a container's modules under their names
    (timm's `stem.conv1`, `head.fc`); the features are flattened after a global pool."""
    modules: list[str | Call] = []
    for child in children:
        if child.children is not None or child.optional or not child.attr.isidentifier():
            plan.problem(f"module `{child.attr}` in a container")
            continue
        modules.append(_keyword(child.attr, _module(plan, child)))
        # to a vector of features: after the pool, or after a 1x1 convolution classifier
        # (timm's ResNetV2), which takes the pooled map
        classifies = child.ops == ["linear"] and child.fields[0].get("conv")
        if (child.ops == ["global_pool"] and not _conv_classifier(children)) or classifies:
            modules.append("flatten=nn.Flatten(1)")
    return Call("nn.Sequential", (Call("OrderedDict", tuple(modules)),))


def _keyword(name: str, module: str | Call | Choice) -> str | Call:
    """`name=module`, laid out as the module's call."""
    if isinstance(module, Call):
        return Call(f"{name}={module.head}", module.args)
    return f"{name}={flat(module)}"


def _statements(units: list[_Unit], conv_last: bool = False) -> list[list[_Unit]]:
    """Units grouped into chained statements, one convolution each: a norm and an activation
    join the convolution before them, or with `conv_last` (a pre-activation branch, which ends
    with a convolution) the one after them. Parameter-free reshapes stand alone."""
    groups: list[list[_Unit]] = []
    for unit in units:
        last = groups[-1] if groups else None
        if (
            last is None
            or not unit.chains
            or not last[-1].chains
            or (conv_last and last[-1].convolves)
            or (not conv_last and unit.convolves and any(u.convolves for u in last))
        ):
            groups.append([unit])
        else:
            last.append(unit)
    return groups


def _apply(units: list[_Unit], value: str) -> str:
    for unit in units:
        value = f"self.{unit.attr}({value})"
    return value


def _render_class(plan: TorchPlan, cls: BlockClass) -> str:
    pre, branch, post = plan.parts[id(cls)]
    seen: dict[str, _Unit] = {}
    init = []
    where = "stride != 1"
    if "first_dilation" in cls.takes:
        # timm's: the first convolution dilates as the stage unless the stage says otherwise.
        init.append(f"{INDENT * 2}first_dilation = first_dilation or dilation")
        where = "stride != 1 or first_dilation != dilation"
    first = any(block.shortcut_first for block in cls.blocks)
    if plan.downsample and first:
        init.append(f"{INDENT * 2}self.{plan.downsample} = downsample")
    init += _register(plan, pre + branch, seen, where)
    if plan.downsample and not first:
        init.append(f"{INDENT * 2}self.{plan.downsample} = downsample")
    init += _register(plan, post, seen)
    both = len(cls.sources) > 1
    if both:
        init.append(f"{INDENT * 2}self.reads_input = isinstance(downsample, FromInput)")
    if plan.drop_path:
        init.append(
            f"{INDENT * 2}self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()"
        )

    if cls.keeps_only:  # RegNetZ's: no shortcut where the shape changes
        init.append(f"{INDENT * 2}self.residual = in_channels == out_channels and stride == 1")
    forward, value, identity = [], "x", "x"
    if pre:
        forward.append(f"out = {_apply(pre, 'x')}")
        value = "out"
        if cls.identity_source == "preactivated":  # timm's RegNetV: the identity adds `out`
            forward[-1] = f"x = out = {_apply(pre, 'x')}"
    if plan.downsample and cls.adds:
        source = "out" if cls.sources == {"preactivated"} else "x"
        if both:
            source = "x if self.reads_input else out"
        attr = plan.downsample
        forward.append(f"shortcut = x if self.{attr} is None else self.{attr}({source})")
        identity = "shortcut"
    # A pre-activation branch ends with a convolution (before any attention): its norms and
    # activations join the convolution after them.
    chained = [op for unit in branch if unit.chains for op in unit.ops]
    conv_last = bool(chained) and chained[-1] == "conv"
    for group in _statements(branch, conv_last):
        if group[0].ops == ["branches"] and not _is_helper(group[0].fields[0]):
            forward += composites.forward(group[0].fields[0], value)
        else:
            forward.append(f"out = {_apply(group, value)}")
        value = "out"
    residual = "self.drop_path(out)" if plan.drop_path else "out"
    total = f"{residual} + {identity}" if cls.adds else residual
    if cls.keeps_only:
        forward += ["if self.residual:", f"{INDENT}out = {total}"]
        total = "out"
    forward.append(f"return {_apply(post, total)}")

    signature = ["self", "in_channels: int", "mid_channels: int", "out_channels: int"]
    signature.append("stride: int = 1")
    if plan.downsample:
        signature.append("downsample: nn.Module | None = None")
    signature += [
        f"{name}: int = {default}" if default is not None else f"{name}: int | None = None"
        for name, default in ((n, OPTION_DEFAULTS[n]) for n in cls.takes)
    ]
    if plan.drop_path:
        signature.append("drop_path: float = 0.0")
    return _render(
        "block.py.j2",
        name=cls.name,
        doc=docstring(block_doc(cls), 1),
        signature=layout("def __init__", Call("", tuple(signature)), 1, " -> None:"),
        init=init,
        forward=[f"{INDENT * 2}{line}" for line in forward],
        # `f.c.1` is `f.c[1]`: an indexed Sequential's member
        zero=[re.sub(r"\.(\d+)", r"[\1]", x.torch) for x in cls.zero],
    )


def _shortcut_module(plan: TorchPlan, outcome: Outcome | None, marks: bool) -> str | Call:
    if outcome is None:
        return "None"
    if plan.shortcut_named:  # timm's ResNetV2: `downsample.pool`, `downsample.conv`
        names = [x.torch.partition(".")[2] for x in plan.examples[outcome].layers]
        modules = tuple(
            _keyword(name, module_call(op, dict(values), plan.activation))
            for name, (op, values) in zip(names, outcome.layers, strict=True)
        )
        return Call("nn.Sequential", (Call("OrderedDict", modules),))
    if plan.shortcut_unit:  # byobnet's: a ConvNormAct without its activation
        ops, fields = zip(*outcome.layers, strict=True)
        return selective.unit_call(list(ops), [dict(values) for values in fields])
    parts = tuple(module_call(op, dict(values), plan.activation) for op, values in outcome.layers)
    if plan.shortcut_alone and len(parts) == 1:
        return parts[0]
    return Call("FromInput" if marks and outcome.source == "input" else "nn.Sequential", parts)


def _render_function(plan: TorchPlan, function: ShortcutFunction) -> str:
    body = []
    for case in function.chain:
        module = _shortcut_module(plan, case.outcome, function.marks)
        condition = case.condition(TORCH_TESTS)
        if condition is None:
            body += layout("return ", module, 1)
        else:
            body.append(f"{INDENT}if {condition}:")
            body += layout("return ", module, 2)
    outcomes = set(function.cases.values())
    if outcomes == {None}:
        returns, doc = "None", "A block's shortcut: always the identity."
    elif None in outcomes:
        returns = "nn.Module | None"
        doc = "A block's shortcut: None for the identity, else the module its input goes through."
    else:
        returns, doc = "nn.Module", "A block's shortcut: the module its input goes through."
    params = ("in_channels: int", "out_channels: int", "stride: int")
    return _render(
        "shortcut.py.j2",
        signature=layout(f"def {function.name}", Call("", params), 0, f" -> {returns}:"),
        doc=doc,
        body=body,
    )


def _title(network: str, source: str) -> str:
    """The docstring's first line, which a long name breaks before `from`."""
    line = f'"""{network}: a residual network generated by resdsl {__version__} from `{source}`.'
    return line[3:] if len(line) <= LINE else line[3:].replace(" from `", "\nfrom `", 1)


def _spec_line(source: str, sha256: str) -> str:
    """The docstring's line naming the spec and its hash, which a long name moves below."""
    line = f"Spec: {source} (sha256 {sha256})"
    return line if len(line) <= LINE else f"Spec: {source}\n(sha256 {sha256})"


def _conv_classifier(units: list[_Unit]) -> bool:
    """Whether the head classifies by a 1x1 convolution on the pooled map (timm's ResNetV2)."""
    inner = [u for unit in units for u in (unit.children or [unit])]
    return any(u.ops == ["linear"] and u.fields[0].get("conv") for u in inner)


def _pools(unit: _Unit) -> bool:
    """Whether a unit is the head's global pool, or a container that holds it."""
    units = unit.children if unit.children is not None else [unit]
    return any(u.ops == ["global_pool"] for u in units)


def _aggregated(plan: TorchPlan) -> dict | None:
    """`AggregatedPaths`' template values (its convolutions' bias), where a block has them."""
    layers = [x for x in flatten(plan.layers()) if getattr(x, "merge", None) == "sum"]
    if not layers:
        return None
    biases = {x.paths[0].layers[0].conv.bias for x in layers}
    if len(biases) > 1:
        plan.problem("aggregated paths with and without biases")
    return {"bias": min(biases)}


def _bilinear_bias(plan: TorchPlan) -> bool:
    """Whether bilinear attention's 1x1s have biases (the network's rule for normed ones)."""
    layers = [x for x in flatten(plan.layers()) if x.op == "bat"]
    biases = {x.reduce.conv.bias for x in layers}
    if len(biases) > 1:
        plan.problem("bilinear attention with and without biases")
    return biases.pop()


def _render_module(plan: TorchPlan) -> str:
    network = plan.network
    conventions = network.conventions
    seen: dict[str, _Unit] = {}
    stem_init = _register(plan, plan.stem, seen)
    head_init = _register(plan, plan.head, seen)
    # forward_features: the stem, the stages and what the head does before its pool (a
    # pre-activation net's final norm); forward: that, then the pool and the classifier.
    stem = [f"x = {_apply(group, 'x')}" for group in _statements(plan.stem)]
    container = stage_container(plan)
    stages = (
        [f"x = self.{container}(x)"]
        if container
        else [f"x = self.{call.attr}(x)" for call in plan.stages]
    )
    features = [*stem, *stages]
    head = _statements(plan.head)
    pooled = next(i for i, group in enumerate(head) if _pools(group[0]))
    features += [f"x = {_apply(group, 'x')}" for group in head[:pooled]]
    features[-1] = "return " + features[-1].removeprefix("x = ")
    forward = ["x = self.forward_features(x)"]
    conv_classifier = _conv_classifier(plan.head)
    for group in head[pooled:]:
        forward.append(f"x = {_apply(group, 'x')}")
        if group[0].ops == ["global_pool"] and not conv_classifier:
            forward.append("x = torch.flatten(x, 1)")  # to a vector of features
        elif group[0].ops == ["linear"] and conv_classifier:
            forward.append("x = torch.flatten(x, 1)")  # the 1x1 classifier's map to a vector
    forward[-1] = "return " + forward[-1].removeprefix("x = ")

    zero_note = None
    if conventions.zero_last_norm:
        zero_note = (
            "zero_last_norm: each residual branch starts at zero (its last norm's weight in\n"
            "post-activation blocks, its last convolution's weight in pre-activation ones)."
        )
    return _render(
        "module.py.j2",
        network=network.name,
        source=network.source.file,
        regenerate=regenerate_command(network, "torch"),
        title=_title(network.name, network.source.file),
        spec=_spec_line(network.source.file, network.source.sha256),
        input=str(network.input),
        classes=network.classes,
        params=f"{network.params:,}",
        blocks=network.total_blocks,
        init_scheme=conventions.init,
        zero_note=zero_note,
        pad_channels=plan.pad_channels,
        from_input=plan.from_input,
        functional=plan.pad_channels
        or any(plan.uses(op) for op in ("blur", "bat", "gc"))
        or conventions.conv_eps is not None,
        standardized=conventions.conv_eps is not None,
        conv_eps=float_literal(conventions.conv_eps or 0.0),
        has_norm=plan.uses("norm"),
        group_norm=conventions.norm == "group",
        norm_kind=conventions.norm,
        norm_class={
            "group": "nn.GroupNorm",
            "evonorm_s0": "EvoNormS0",
            "frn": "FilterResponseNorm",
        }.get(conventions.norm, "nn.BatchNorm2d"),
        norm_groups=conventions.norm_groups,
        norm_group_size=conventions.norm_group_size,
        eps=float_literal(conventions.norm_eps),
        momentum=float_literal(conventions.norm_momentum),
        blur_pool=plan.uses("blur"),
        squeeze_excite=plan.uses("se"),
        make_divisible=plan.divisible,
        limits=plan.limits,
        gate=_GATES[plan.gate],
        se_act=_ACTIVATION[plan.se_activation],
        se_act_name=ACTIVATION_NAMES[plan.se_activation],
        eca=plan.uses("eca"),
        global_context=plan.uses("gc")
        and {"mlp": f"mlp_{plan.fuse}", "scale": plan.fuse == "scale"},
        bilinear=plan.uses("bat") and {"bias": _bilinear_bias(plan)},
        aggregated=_aggregated(plan),
        conv_norm_act=plan.conv_norm_act,
        selective_kernel=plan.selective_kernel,
        split_attention=plan.split_attention,
        activation=plan.activation,
        bias=plan.helper_bias,
        drop_path=plan.drop_path,
        drop_path_rate=float_literal(conventions.stochastic_depth),
        total_blocks=network.total_blocks,
        plugin_helpers=[
            e.helper for op, e in PLUGIN_EMITTERS["torch"].items() if e.helper and plan.uses(op)
        ],
        block_classes=[_render_class(plan, c) for c in plan.classes],
        functions=[_render_function(plan, f) for f in plan.functions],
        stride_last=plan.stride_last,
        **make_stage(plan),
        model=plan.model,
        stem_init=stem_init,
        stage_init=stage_init(plan),
        ordered_dict=plan.uses("gc")
        or plan.uses("bat")
        or bool(_aggregated(plan))
        or plan.block_key is not None
        or plan.shortcut_named
        or stage_holder(plan) is not None
        or any(unit.children is not None for unit in (*plan.stem, *plan.head)),
        head_init=head_init,
        forward=[f"{INDENT * 2}{line}" for line in forward],
        forward_features=[f"{INDENT * 2}{line}" for line in features],
        stem_forward=[f"{INDENT * 2}{line}" for line in stem],
        stage_loop=stage_loop(plan),
        glorot=conventions.init == "glorot",
        init_doc=_INIT_DOC[conventions.init],
        zero_last=any(c.zero for c in plan.classes),
    )


# --------------------------------------------------------------------------- templates


@lru_cache(maxsize=1)
def _environment():
    from resdsl.codegen.backends import template_environment

    return template_environment(Path(__file__).parent / "templates")


def _render(template: str, **values) -> str:
    return _environment().get_template(template).render(**values)


class TorchBackend:
    """PyTorch: a standalone module with the model class and `build_model`."""

    name = "torch"
    suffix = ".py"

    def __init__(self) -> None:
        # The last network planned, its problems and its text: `compile` asks for
        # `unsupported` and then `emit`, which should not plan and render twice.
        self._last: tuple[Network, list[str], str] | None = None

    def _build(self, network: Network) -> tuple[list[str], str]:
        if self._last is None or self._last[0] is not network:
            plan = TorchPlan(network)
            # Registering the modules checks shared names agree. Optional sections of the template
            # (a network without norms has no `norm` helper) leave runs of blank lines: two
            # separate top-level definitions, as ruff format writes them.
            text = re.sub(r"\n{4,}", "\n\n\n", _render_module(plan))
            self._last = (network, plan.problems, text)
        return self._last[1], self._last[2]

    def emit(self, network: Network, command: str | None = None) -> str:
        """The generated module's text: deterministic, formatted as ruff format would; its
        docstring says to regenerate it with `command` (`resdsl compile` gives the command
        line that wrote it), by default `resdsl compile SPEC --backend torch`. Raises
        ValueError where :meth:`unsupported` reports problems."""
        problems, text = self._build(network)
        if problems:
            raise ValueError("the torch backend cannot express " + "; ".join(problems))
        if command is not None:
            default = f"Do not edit: regenerate with `{regenerate_command(network, self.name)}`."
            line = f"Do not edit: regenerate with `{command}`."
            if len(line) > LINE:  # the command on a line of its own, as the Keras module does
                line = f"Do not edit: regenerate with:\n\n{command_lines(command, INDENT, LINE)}"
            text = text.replace(default, line, 1)
        return text

    def unsupported(self, network: Network) -> list[str]:
        """What the plan cannot rebuild exactly from the network's layers (nothing, for every
        network that elaboration makes today: the check guards the backend's own logic)."""
        return list(self._build(network)[0])


__all__ = ["TorchBackend"]
