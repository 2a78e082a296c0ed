"""Generated Keras source text: literals, the statements that apply layers (laid out by
:mod:`resdsl.codegen.layout`, as ruff formats them), `def` lines, docstrings and functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

from resdsl.codegen.layout import INDENT, LINE, Call, comment, docstring, flat, layout


class PlanError(ValueError):
    """Something the plan cannot express, reported through `unsupported`."""


class Function(NamedTuple):
    """A generated function: its `def` line(s), its docstring (wrapped) and its body's lines."""

    head: str
    doc: str
    body: tuple[str, ...]


# --------------------------------------------------------------------------- source text


def literal(text: str) -> str:
    """A Python string literal of `text`."""
    return json.dumps(text, ensure_ascii=False)


def prefixed(text: str) -> str:
    """An f-string literal of `text` under the enclosing function's `name` argument."""
    return "f" + literal("{name}_" + text.replace("{", "{{").replace("}", "}}"))


def float_literal(value: float) -> str:
    return repr(float(value))


class Apply(NamedTuple):
    """One layer (or helper) on one input: a Keras layer is `func(*args)(input)`, a helper of
    the module `func(input, *args)`."""

    func: str
    args: tuple[str, ...] = ()
    helper: bool = False
    comment: str = ""
    guard: str = ""  # a condition the statement runs under (`stride > 1`)


class Statements(NamedTuple):
    """Several statements where a chain has one apply (a composite layer's): `write(target,
    source, depth)` gives their lines, the last assigning to `target` (or returning)."""

    write: Callable[[str, str, int], list[str]]


def statement(target: str, apply: Apply | Statements, source: str, depth: int = 1) -> list[str]:
    """`target = ...` (or `return ...` when `target` is "return"), laid out as ruff formats it
    (:func:`resdsl.codegen.layout.layout`); under an `if` where the apply has a guard."""
    if isinstance(apply, Statements):
        return apply.write(target, source, depth)
    if apply.guard:
        if target != source:  # skipped, the statement would leave `target` unset
            raise PlanError("a layer that runs only where the block strides, first or last")
        pad = INDENT * depth
        lines = comment(apply.comment, pad) if apply.comment else []
        inner = Apply(apply.func, apply.args, apply.helper)
        return [*lines, f"{pad}if {apply.guard}:", *statement(target, inner, source, depth + 1)]
    lead = "return " if target == "return" else f"{target} = "
    args = (source, *apply.args) if apply.helper else apply.args
    pad = INDENT * depth
    lines = comment(apply.comment, pad) if apply.comment else []
    call = Call(apply.func, args)
    if apply.helper:
        return [*lines, *layout(lead, call, depth)]
    # a layer applied to its input: where the line is too long but the layer fits on its own,
    # ruff splits the last brackets, the input's, first
    head = f"{pad}{lead}{flat(call)}("
    if len(f"{head}{source})") > LINE and len(head) <= LINE:
        return [*lines, head, f"{pad}{INDENT}{source}", f"{pad})"]
    return [*lines, *layout(lead, call, depth, f"({source})")]


def chain(applies: list[Apply], source: str, target: str, last: str, depth: int = 1) -> list:
    """Applies in order, the first on `source`, the others on `target`; the last assigns to
    `last` (or returns)."""
    lines: list[str] = []
    for number, apply in enumerate(applies):
        into = last if number == len(applies) - 1 else target
        lines += statement(into, apply, source if number == 0 else target, depth)
    return lines


def def_line(name: str, params: list[str], returns: str = "") -> str:
    """A `def` line (or lines) as ruff formats it."""
    return "\n".join(layout(f"def {name}", Call("", tuple(params)), 0, f"{returns}:"))


def doc_text(text: str, depth: int = 1) -> str:
    """A docstring, its first line without its indent (the template indents it)."""
    return "\n".join(docstring(text, depth))[len(INDENT * depth) :]
