"""Composite layers in a PyTorch block class (:class:`resdsl.ir.BranchLayer`): the paths'
modules as the block's attributes, and the loop over them in `forward`.

A path repeated `count` times keeps each of its modules in a ModuleList named as the IR names
them (`convs.{i}`: the list `convs`), as timm's Bottle2neck does, so that timm's state dicts
load; a module the IR names without the path's index (the block's activation) is the block's
own, shared. The last path's modules are attributes of their own (`pool`); where only a stage's
first block has them, the others register an identity in their place. The class tells a stage's
first block by what it can test: it strides or widens (`self.first`).
"""

from __future__ import annotations

from resdsl.codegen.arguments import Paths
from resdsl.codegen.layout import INDENT, Call, Choice, Repeat, comment, layout
from resdsl.codegen.plan import TORCH_TESTS

from .emitters import module_call

# A stage's first block, as the plan's `first_of_stage` tests it: it strides or widens.
FIRST = f"{TORCH_TESTS['step']} or {TORCH_TESTS['grow']}"


def _loop_name(attr: str) -> str:
    """The loop variable of a ModuleList's member: `convs` -> `conv`."""
    return attr[:-1] if attr.endswith("s") and len(attr) > 1 else f"{attr}_module"


def _lists(paths: Paths) -> list[tuple[bool, str, str, dict]]:
    """Each repeated layer as (whether it is a ModuleList's member, else a module the block
    shares; its attribute, op and fields)."""
    out = []
    for op, torch, _, fields in paths.repeated:
        attr, _, index = torch.partition(".")
        out.append((index == "{i}", attr, op, fields))
    return out


def problems(fields: dict) -> list[str]:
    """What this module cannot write of a composite layer."""
    paths = fields["paths"]
    found = []
    if not fields["split"] or fields["merge"] != "concat":
        found.append("a composite layer other than split paths joined by concatenation")
    if not isinstance(paths, Paths) or paths.copies < 1:
        found.append("a composite layer without repeated paths")
        return found
    for _, attr, _, _ in _lists(paths):
        if "{" in attr:
            found.append(f"a path's module named `{attr}`, neither a list's member nor shared")
    if any("." in torch for _, torch, _, _ in paths.last):
        found.append("a last path whose modules are not the block's attributes")
    return found


def shared(fields: dict) -> list[tuple[str, str, dict]]:
    """The modules the paths share with the block, as (attribute, op, fields): the block's
    activation. The block registers them (once, whoever uses them first)."""
    return [
        (attr, op, values) for listed, attr, op, values in _lists(fields["paths"]) if not listed
    ]


def register(fields: dict, activation: str) -> list[str]:
    """`__init__`'s lines for a composite layer: `self.first`, where the paths need it, then
    each ModuleList and the last path's modules (not the shared ones: :func:`shared`)."""
    paths: Paths = fields["paths"]
    lines = []
    if paths.cascades or paths.first_only:
        what = []
        if paths.cascades:
            what.append("adds no path's output to the next path's input")
        if paths.first_only:
            what.append("transforms the last path")
        text = f"A stage's first block (it strides or widens) {' and '.join(what)}."
        lines += comment(text, INDENT * 2)
        lines.append(f"{INDENT * 2}self.first = {FIRST}")
    for listed, attr, op, values in _lists(paths):
        if listed:
            module = Call(
                "nn.ModuleList", (Repeat(module_call(op, values, activation), paths.copies),)
            )
            lines += layout(f"self.{attr} = ", module, 2)
    for op, attr, _, values in paths.last:
        module = module_call(op, values, activation)
        if paths.first_only:
            module = Choice(module, "self.first", "nn.Identity()")
        lines += layout(f"self.{attr} = ", module, 2)
    return lines


def forward(fields: dict, value: str) -> list[str]:
    """`forward`'s lines for a composite layer on `value`, leaving its output in `out`: the
    input's channels in `count + 1` equal splits, each repeated path on its split (plus the
    previous path's output, where the paths cascade), the last path on the last split, the
    outputs concatenated."""
    paths: Paths = fields["paths"]
    lists = _lists(paths)
    members = [(attr, _loop_name(attr)) for listed, attr, _, _ in lists if listed]
    members = list(dict.fromkeys(members))
    applied = "part"
    for listed, attr, _, _ in lists:
        applied = f"{_loop_name(attr) if listed else f'self.{attr}'}({applied})"
    names = ", ".join(name for _, name in members)
    modules = ", ".join(f"self.{attr}" for attr, _ in members)
    lines = [f"splits = torch.chunk({value}, {paths.copies + 1}, 1)", "outs = []"]
    if paths.cascades:
        loop_vars = f"({names})" if len(members) > 1 else names
        zipped = f"zip({modules}, strict=True)" if len(members) > 1 else modules
        lines += [
            f"for i, {loop_vars} in enumerate({zipped}):",
            f"{INDENT}part = splits[i] if i == 0 or self.first else outs[-1] + splits[i]",
            f"{INDENT}outs.append({applied})",
        ]
    else:
        lines += [
            f"for part, {names} in zip(splits[:-1], {modules}, strict=True):",
            f"{INDENT}outs.append({applied})",
        ]
    last = "splits[-1]"
    for _, attr, _, _ in paths.last:
        last = f"self.{attr}({last})"
    lines += [f"outs.append({last})", "out = torch.cat(outs, 1)"]
    return lines


def inner_ops(fields: dict) -> list[str]:
    """The ops of a composite layer's modules (for the helpers the module needs)."""
    paths = fields["paths"]
    if not isinstance(paths, Paths):
        return []
    return [op for op, *_ in (*paths.repeated, *paths.last)]
