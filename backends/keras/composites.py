"""Composite layers in a Keras block function (:class:`resdsl.ir.BranchLayer`): the same
structure as the PyTorch class's (backends/torch/composites.py), from the same plan
(:class:`resdsl.codegen.arguments.Paths`): the input's channels split with `ops.split`, a loop
that builds each repeated path's layers under names numbered by the path (`{name}_2_{i + 1}_conv`),
the last path on the last split (only in a stage's first block, where `first` says so), and the
outputs concatenated. The block function computes `first` from its input before anything else
(:func:`first_line`).
"""

from __future__ import annotations

from dataclasses import replace

from resdsl.codegen.arguments import (
    Paths,
    aggregated_fields,
    aggregated_problems,
    selective_fields,
    selective_problems,
    split_fields,
    split_problems,
)
from resdsl.codegen.layout import INDENT
from resdsl.ir import BranchLayer

from .emitters import Context, Scope, layer_applies
from .statements import Apply, PlanError, Statements, chain, statement


def needs_first(paths: Paths) -> bool:
    """Whether the function tells a stage's first block from the others."""
    return paths.cascades or paths.first_only


def first_line(names: dict[str, str]) -> str:
    """`first = ...`: a stage's first block strides or widens (the plan's `first_of_stage`),
    in the function's parameters, read before `x` is reassigned."""
    widens = f"{names['in_channels']} != {names['out_channels']}"
    if "stride" not in names:  # no block of the function strides
        return f"{INDENT}first = {widens}"
    return f"{INDENT}first = stride > 1 or {widens}"


class _LoopScope(Scope):
    """A scope whose names of a repeated path's layers are numbered by the loop's `i`."""

    def __init__(self, scope: Scope, templates: dict[str, str]):
        super().__init__(names=scope.names, pad=scope.pad)
        self.templates = templates

    def name(self, keras: str) -> str:
        if keras in self.templates:
            return loop_name(self.templates[keras])
        return super().name(keras)


def loop_name(template: str) -> str:
    """`2_{n}_conv` as the f-string under the function's `name`: `f"{name}_2_{i + 1}_conv"`."""
    escaped = template.replace("{", "{{").replace("}", "}}").replace("{{n}}", "{i + 1}")
    return f'f"{{name}}_{escaped}"'


def selective(layer: BranchLayer, f: dict | None, scope: Scope, ctx: Context) -> Apply:
    """A selective kernel (a composite layer that merges by "select"): a call of the module's
    `selective_kernel`, which names its layers after the layer's prefix (`2` of `2_select`):
    `2_1_conv`, `2_1_bn`, `2_attn_reduce`, ..."""
    problems = selective_problems(layer)
    if problems:
        raise PlanError(problems[0])
    parts = {"conv": "conv", "norm": "bn", "act": ctx.activation}
    prefix = layer.keras.removesuffix("_select")
    paths = [
        f"{prefix}_{k}_{parts[x.op]}" for k, path in enumerate(layer.paths, 1) for x in path.layers
    ]
    extra = [] if layer.split else ["split=False"]
    values = selective_fields(layer)
    return _helper_call("selective_kernel", layer, f, scope, ctx, values, "_select", paths, extra)


def aggregated(layer: BranchLayer, f: dict | None, scope: Scope, ctx: Context) -> Apply:
    """Aggregated paths (a composite layer that merges by "sum"): a call of the module's
    `aggregated_paths`, which names its layers after the layer's (`paths`): `paths_1_1_conv`,
    `paths_1_1_bn`, ..., `paths_sum`."""
    problems = aggregated_problems(layer, ctx.normalised)
    if problems:
        raise PlanError(problems[0])
    parts = {"conv": "conv", "norm": "bn", "act": ctx.activation}
    expected = []
    for k, path in enumerate(layer.paths, 1):
        number = 0  # a norm's and an activation's: the convolution's they follow
        for x in path.layers:
            number += x.op == "conv"
            expected.append(f"{layer.keras}_{k}_{number}_{parts[x.op]}")
    if [x.keras for x in layer.parts()] != expected:
        raise PlanError(f"`{layer.keras}` named otherwise than `aggregated_paths` names its layers")
    values = aggregated_fields(layer)
    if ctx.normalised:
        ctx.uses.add("norm")
    if layer.paths[0].layers[0].conv.bias:
        ctx.uses.add("aggregated_paths.bias")
    args = [scope.value(f, key, values[key]) for key in ("mid_channels", "out_channels")]
    args.append(f"paths={scope.value(f, 'paths', values['paths'])}")
    for key in ("stride", "dilation"):
        value = scope.value(f, key, values[key])
        if value != "1":
            args.append(f"{key}={value}")
    args.append(f"name={scope.name(layer.keras)}")
    ctx.uses |= {"aggregated_paths", "conv.stride", "conv.dilation", "conv.subsample"}
    return Apply("aggregated_paths", tuple(args), helper=True)


def split(layer: BranchLayer, f: dict | None, scope: Scope, ctx: Context) -> Apply:
    """Split attention (a "select" composite whose paths one shared convolution makes): a call
    of the module's `split_attention`, which names its layers after the layer's prefix (`2` of
    `2_splat`): `2_conv`, `2_bn`, `2_attn_reduce`, ..."""
    problems = split_problems(layer)
    if problems:
        raise PlanError(problems[0])
    parts = {"conv": "conv", "norm": "bn", "act": "relu"}
    prefix = layer.keras.removesuffix("_splat")
    shared = [f"{prefix}_{parts[x.op]}" for x in layer.shared]
    values = split_fields(layer)
    return _helper_call("split_attention", layer, f, scope, ctx, values, "_splat", shared, [])


def _helper_call(
    helper: str,
    layer: BranchLayer,
    f: dict | None,
    scope: Scope,
    ctx: Context,
    values: dict,
    suffix: str,
    inner: list[str],
    extra: list[str],
) -> Apply:
    """The call of a "select" composite's helper, which names the composite's layers from its
    prefix (the layer's name less `suffix`): `inner` the paths' (or shared layers') names it
    gives, then the attention's `_attn_reduce`, `_attn_bn`, `_attn_select`. `values` are the
    helper's fields (:func:`selective_fields`, :func:`split_fields`); `extra`, more arguments."""
    attention = layer.attention
    prefix = layer.keras.removesuffix(suffix)
    expected = [*inner, f"{prefix}_attn_reduce", *(f"{prefix}_attn_bn" for _ in attention.norm)]
    expected.append(f"{prefix}_attn_select")
    if not layer.keras.endswith(suffix) or [x.keras for x in layer.parts()] != expected:
        raise PlanError(f"`{layer.keras}` named otherwise than `{helper}` names its layers")
    if attention.norm:
        ctx.uses.add("norm")
    first = layer.shared[0] if layer.shared else layer.paths[0].layers[0]
    if first.conv.bias:
        ctx.uses.add(f"{helper}.bias")
    args = [scope.value(f, key, values[key]) for key in ("out_channels", "attn_channels")]
    if args[1].startswith("make_divisible("):
        ctx.uses.add("make_divisible")
        if attention.round_limit or attention.minimum:
            ctx.uses.add("make_divisible.limits")
    count = "radix" if "radix" in values else "paths"
    for key, default in (("stride", "1"), ("dilation", "1"), ("groups", "1"), (count, "2")):
        value = scope.value(f, key, values[key])
        if value != default:
            args.append(f"{key}={value}")
    args += [*extra, f"name={scope.name(prefix)}"]
    # The helper's convolutions stride, dilate (and, strided, subsample) and group.
    ctx.uses |= {"ops", helper, "conv.stride", "conv.dilation", "conv.groups", "conv.subsample"}
    return Apply(helper, tuple(args), helper=True)


def composite(layer: BranchLayer, fields: dict | None, scope: Scope, ctx: Context):
    """A composite layer's statements in a block function."""
    if layer.shared:
        return split(layer, fields, scope, ctx)
    if layer.merge == "select":
        return selective(layer, fields, scope, ctx)
    if layer.merge == "sum":
        return aggregated(layer, fields, scope, ctx)
    paths = fields["paths"] if fields is not None else None
    if not isinstance(paths, Paths) or scope.names is None:
        raise PlanError("a composite layer outside a block")
    if not layer.split or layer.merge != "concat" or paths.copies < 1:
        raise PlanError("a composite layer other than split paths joined by concatenation")
    templates = {
        x.keras: keras
        for x, (_, _, keras, _) in zip(paths.repeated_layers, paths.repeated, strict=True)
    }
    inner = _LoopScope(scope, templates)
    repeated = layer_applies(
        list(paths.repeated_layers), inner, ctx, [f for *_, f in paths.repeated]
    )
    plain = replace(scope, guard="")  # the last path runs where `first` says, not by the stride
    last = layer_applies(list(paths.last_layers), plain, ctx, [f for *_, f in paths.last])
    ctx.uses.add("ops")

    def write(target: str, source: str, depth: int) -> list[str]:
        pad, body = INDENT * depth, INDENT * (depth + 1)
        lines = [
            f"{pad}splits = ops.split({source}, {paths.copies + 1}, axis=-1)",
            f"{pad}outs = []",
            f"{pad}for i in range({paths.copies}):",
            f"{body}part = splits[i]",
        ]
        if paths.cascades:
            add = Apply("layers.Add", (f"name={loop_name(paths.add)}",))
            lines += [f"{body}if i > 0 and not first:  # the previous path's output, added"]
            lines += statement("part", add, "[outs[-1], part]", depth + 2)
        lines += chain(repeated, "part", "part", "part", depth + 1)
        lines.append(f"{body}outs.append(part)")
        if last and paths.first_only:
            lines += [f"{pad}last = splits[-1]", f"{pad}if first:"]
            lines += chain(last, "last", "last", "last", depth + 1)
            lines.append(f"{pad}outs.append(last)")
        elif last:
            lines += chain(last, "splits[-1]", "last", "last", depth)
            lines.append(f"{pad}outs.append(last)")
        else:
            lines.append(f"{pad}outs.append(splits[-1])")
        concat = Apply("layers.Concatenate", (f"name={scope.name(layer.keras)}",))
        return lines + statement(target, concat, "outs", depth)

    return Statements(write)
