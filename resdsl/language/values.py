"""Readers of setting and argument values: each checks one value of the syntax tree and returns
its Python form, or raises :class:`BadValue` with the diagnostic to report.

A reader is called as `reader(value, what)`, where `what` names the value in messages (for
example "`classes`"). The readers made by :func:`whole_number`, :func:`number_in`,
:func:`positive_number` and :func:`choice` keep their bounds and options in their closure,
where :mod:`resdsl.tooling.catalogue` reads them to document each setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from resdsl.diagnostics import core as dx
from resdsl.ir import Dims, Name, Number, Span, Value

Reader = Callable[[Value, str], Any]


class BadValue(Exception):
    """A value that does not fit; carries the diagnostic to emit. The resolve phase turns it
    into that diagnostic: it never reaches a caller of resdsl."""

    def __init__(
        self,
        code: str,
        message: str,
        span: Span,
        help: str | None = None,
        suggestions: tuple[dx.Suggestion, ...] = (),
    ):
        self.code, self.message, self.span, self.help = code, message, span, help
        self.suggestions = suggestions


def describe(value: Value) -> str:
    """What a value is, for messages: "a call", "a number", ..."""
    return {
        "Call": "a call",
        "Name": "a name",
        "Number": "a number",
        "Dims": "a size",
        "String": "a string",
    }[type(value).__name__]


def alternatives(options: Iterable[str]) -> str:
    """The options quoted and joined for a message: "`a`, `b` or `c`"."""
    quoted = [f"`{o}`" for o in options]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


def spelling(text: str, options: Iterable[str], span: Span) -> tuple[str | None, tuple]:
    """A misspelt `text` at `span`: the "did you mean" help and its suggestion (none when no
    option is close)."""
    found = closest(text, options)
    if found is None:
        return None, ()
    option, applicability = found
    return f"did you mean `{option}`?", (dx.Suggestion(span, option, applicability),)


def closest(text: str, options: Iterable[str]) -> tuple[str, dx.Applicability] | None:
    """The option closest to `text` (difflib's ratio, at least 0.6), and whether replacing `text`
    by it is safe: what the user certainly meant, a name that differs only in case, or a typo
    (one letter added, dropped, changed or two swapped, in a word of four letters or more) with
    no other option within two edits. Digits and underscores must agree: `relu6` is not a typo
    of `relu`. None when no option is close."""
    import difflib  # only for a misspelt word: not imported by every `check`

    options = list(options)
    if len(text) > 2 * max(map(len, options), default=0):
        return None  # nothing is close to a word that long, and comparing it would be slow
    same_case = [o for o in options if o.lower() == text.lower()]
    if same_case and text not in options:
        return same_case[0], "safe"
    ratios = sorted(
        ((difflib.SequenceMatcher(None, text, o).ratio(), o) for o in options), reverse=True
    )
    if not ratios or ratios[0][0] < 0.6:
        return None
    option = ratios[0][1]
    distances = {o: _edits(text.lower(), o.lower()) for o in options}
    typo = (
        distances[option] == 1
        and min(len(text), len(option)) >= 4
        and [c for c in text if not c.isalpha()] == [c for c in option if not c.isalpha()]
        and not any(d <= 2 for o, d in distances.items() if o != option)
    )
    return option, "safe" if typo else "unsafe"


def _edits(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours that turn `a` into `b`
    (the optimal string alignment distance)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def number(value: Value, what: str) -> Number:
    """The value as a number node (not NaN)."""
    if not isinstance(value, Number):
        raise BadValue(
            dx.E_BAD_VALUE,
            f"{what} takes a number, not {describe(value)}",
            value.span,
            help="write a number such as `2` or `0.1`",
        )
    if math.isnan(value.value):
        raise BadValue(
            dx.E_BAD_VALUE,
            f"{what} takes a number",
            value.span,
            help="write a number such as `2` or `0.1`",
        )
    return value


def whole_number(low: int, high: int, *, odd: bool = False) -> Reader:
    """A reader of whole numbers from `low` to `high` (odd ones only, with `odd`)."""

    def read(value: Value, what: str) -> int:
        n = number(value, what)
        if math.isinf(n.value):
            raise BadValue(
                dx.E_LIMIT if n.value > 0 else dx.E_NOT_POSITIVE,
                f"{what} is beyond every limit; the largest allowed is {high:,}",
                value.span,
                help=f"write a whole number from {low:,} to {high:,}",
            )
        if not n.is_int:
            raise BadValue(
                dx.E_NOT_INTEGER,
                f"{what} must be a whole number, not `{n.text}`",
                value.span,
                help=f"write a whole number from {low:,} to {high:,}",
            )
        if n.value < low:
            code = dx.E_NOT_POSITIVE if low >= 1 and n.value <= 0 else dx.E_RANGE
            raise BadValue(
                code,
                f"{what} must be at least {low}, not `{n.text}`",
                value.span,
                help=f"write a whole number from {low:,} to {high:,}",
            )
        if n.value > high:
            raise BadValue(
                dx.E_LIMIT,
                f"{what} is `{n.text}`; the limit is {high:,}",
                value.span,
                help="resdsl refuses sizes no real network uses rather than run out of memory",
            )
        if odd and not int(n.value) % 2:
            raise BadValue(
                dx.E_RANGE,
                f"{what} must be odd, not `{n.text}`",
                value.span,
                help="an odd kernel has a centre, so padding keeps the size",
            )
        return int(n.value)

    return read


def number_in(low: float, high: float, *, high_open: bool = False) -> Reader:
    """A reader of numbers in [low, high], or [low, high) when `high_open`."""

    def read(value: Value, what: str) -> float:
        n = number(value, what).value
        too_high = n >= high if high_open else n > high
        if n < low or too_high or math.isinf(n):
            bracket = ")" if high_open else "]"
            raise BadValue(
                dx.E_RANGE,
                f"{what} must lie in [{low:g}, {high:g}{bracket}, not `{value.text}`",
                value.span,
                help=f"write a number from {low:g} up to {high:g}"
                + (" (excluded)" if high_open else ""),
            )
        return n

    return read


def positive_number(high: float) -> Reader:
    """A reader of numbers above 0 and at most `high`."""

    def read(value: Value, what: str) -> float:
        n = number(value, what).value
        if n <= 0:
            raise BadValue(
                dx.E_NOT_POSITIVE,
                f"{what} must be positive, not `{value.text}`",
                value.span,
                help=f"write a number above 0, at most {high:g}",
            )
        if n > high or math.isinf(n):
            raise BadValue(
                dx.E_LIMIT,
                f"{what} is `{value.text}`; the limit is {high:g}",
                value.span,
                help=f"write a number above 0, at most {high:g}",
            )
        return n

    return read


def choice(*options: str) -> Reader:
    """A reader of one of `options`, written as a name (or a size such as `3x3`)."""

    def read(value: Value, what: str) -> str:
        text = value.text if isinstance(value, Name | Dims) else None
        if text is None:
            raise BadValue(
                dx.E_BAD_VALUE,
                f"{what} takes one of {alternatives(options)}, not {describe(value)}",
                value.span,
                help=f"write one of {alternatives(options)}",
            )
        if text not in options:
            hint, fixes = spelling(text, options, value.span)
            raise BadValue(
                dx.E_BAD_VALUE,
                f"{what} takes one of {alternatives(options)}, not `{text}`",
                value.span,
                help=hint or f"write one of {alternatives(options)}",
                suggestions=fixes,
            )
        return text

    return read


def on_off(value: Value, what: str) -> bool:
    """A switch: `on`, `true` or `yes`; `off`, `false` or `no`."""
    text = value.text if isinstance(value, Name) else None
    if text in ("on", "true", "yes"):
        return True
    if text in ("off", "false", "no"):
        return False
    raise BadValue(
        dx.E_BAD_VALUE, f"{what} takes `on` or `off`", value.span, help="write `on` or `off`"
    )
