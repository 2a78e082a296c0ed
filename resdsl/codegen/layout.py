"""Generated Python laid out as ruff format lays it out, for both backends: a call on one line
where it fits, else its arguments on one indented line, else one per line with a trailing
comma; docstrings wrapped to the line length.

The backends build expressions (:class:`Call`, :class:`Choice`) and lay them out here, so the
generated code is formatted by one set of rules and stays stable under `ruff format`.
"""

from __future__ import annotations

import textwrap
from typing import NamedTuple

LINE = 100  # the project's ruff line length
INDENT = "    "


# The expressions are named tuples, not dataclasses: a frozen dataclass costs a millisecond to
# define, which every `resdsl compile` would pay at import (see the docs' Speed page).


class Call(NamedTuple):
    """A call expression, laid out by :func:`layout` as ruff format would."""

    head: str
    args: tuple[str | Call, ...]


class Choice(NamedTuple):
    """`value if condition else other`: a module that only some blocks of a class have."""

    value: str | Call
    condition: str
    other: str


class Repeat(NamedTuple):
    """`value for _ in range(copies)`: a generator of `copies` modules alike (the sole argument
    of an `nn.ModuleList`)."""

    value: str | Call
    copies: int

    @property
    def loop(self) -> str:
        return f"for _ in range({self.copies})"


def flat(value: str | Call | Choice | Repeat) -> str:
    if isinstance(value, Repeat):
        return f"{flat(value.value)} {value.loop}"
    if isinstance(value, Call):
        return f"{value.head}({', '.join(flat(a) for a in value.args)})"
    if isinstance(value, Choice):
        return f"{flat(value.value)} if {value.condition} else {value.other}"
    return value


def layout(
    prefix: str, value: str | Call | Choice | Repeat, depth: int, suffix: str = ""
) -> list[str]:
    """`prefix value suffix` at `depth` indents: on one line if it fits, else the arguments on
    one indented line, else one per line with a trailing comma (none after a sole argument),
    each laid out the same way. A conditional expression that does not fit goes inside
    parentheses, split before `if` and `else` where it still does not fit."""
    pad = INDENT * depth
    one = f"{pad}{prefix}{flat(value)}{suffix}"
    if len(one) <= LINE:
        return [one]
    if isinstance(value, Repeat):  # the value laid out alone, the loop on the line after
        return [*layout(prefix, value.value, depth), f"{pad}{value.loop}{suffix}"]
    if isinstance(value, Choice):
        inner = f"{pad}{INDENT}{flat(value)}"
        if len(inner) <= LINE:
            return [f"{pad}{prefix}(", inner, f"{pad}){suffix}"]
        return [
            f"{pad}{prefix}(",
            *layout("", value.value, depth + 1),
            f"{pad}{INDENT}if {value.condition}",
            f"{pad}{INDENT}else {value.other}",
            f"{pad}){suffix}",
        ]
    if not isinstance(value, Call) or not value.args:
        return [one]
    head, close = f"{pad}{prefix}{value.head}(", f"{pad}){suffix}"
    inner = f"{pad}{INDENT}{', '.join(flat(a) for a in value.args)}"
    if len(inner) <= LINE:
        return [head, inner, close]
    lines = [head]
    comma = "," if len(value.args) > 1 else ""
    for arg in value.args:
        lines += layout("", arg, depth + 1, comma)
    return [*lines, close]


def docstring(text: str, depth: int) -> list[str]:
    """A docstring at `depth` indents: one line if it fits, else wrapped, quotes on their own."""
    pad = INDENT * depth
    if len(pad) + len(text) + 6 <= LINE:
        return [f'{pad}"""{text}"""']
    lines = textwrap.wrap(text, LINE - len(pad), initial_indent='"""', break_on_hyphens=False)
    if len(lines) == 1:  # fits with the opening quotes only: ruff would join it, too long
        width = LINE - len(pad) - 4
        lines = textwrap.wrap(text, width, initial_indent='"""', break_on_hyphens=False)
    return [pad + line for line in lines] + [f'{pad}"""']


def comment(text: str, pad: str) -> list[str]:
    """A comment wrapped to the line length at indent `pad`."""
    return [
        f"{pad}# {line}"
        for line in textwrap.wrap(text, LINE - len(pad) - 2, break_on_hyphens=False)
    ]
