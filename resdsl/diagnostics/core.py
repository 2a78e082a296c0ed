"""Diagnostics: data first, rendered in one place as text, JSON or GitHub annotations.

Every diagnostic has a stable code from :data:`CODES`; the registry is the single source for
the docs' page of each code (:mod:`resdsl.tooling.docs`, `resdsl explain`) and for the golden
test of each code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from resdsl.ir import Span

Severity = Literal["error", "warning"]


class Code(NamedTuple):
    code: str
    severity: Severity
    title: str
    example: str  # a .res snippet that triggers it, for the catalogue and its golden test


CODES: dict[str, Code] = {}


def _code(code: str, severity: Severity, title: str, example: str) -> str:
    CODES[code] = Code(code, severity, title, example)
    return code


_NET = "network n {{\n  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n{body}\n}}\n"


def _net(body: str) -> str:
    return _NET.format(body=body)


# Input and syntax: E0xx
E_IO = _code("E001", "error", "file cannot be read", "")
E_ENCODING = _code("E002", "error", "file is not UTF-8 text", "")
E_TOO_LARGE = _code("E003", "error", "file is too large", "")
E_TOO_MANY_TOKENS = _code("E004", "error", "too many tokens", "")
E_TOO_MANY_DIAGNOSTICS = _code(
    "E005", "error", "too many diagnostics", "network n {\n" + "  depth 1\n" * 52 + "}\n"
)
E_SYNTAX = _code("E010", "error", "syntax error", "network n {\n  input 3x32x32 x\n}\n")
E_UNEXPECTED_CHAR = _code("E011", "error", "unexpected character", "network n {\n  input $\n}\n")
E_UNEXPECTED_EOF = _code(
    "E012", "error", "unexpected end of file", "network n {\n  input 3x32x32\n"
)
E_EMPTY = _code("E013", "error", "no network in file", "# nothing here\n")
# Names and settings: E1xx
E_UNKNOWN_SETTING = _code(
    "E101", "error", "unknown setting", _net("  stage s: 1 x 16\n  clases 10")
)
E_UNKNOWN_KIND = _code(
    "E102",
    "error",
    "unknown block type, shortcut policy or preset",
    _net("  shortcut B\n  stage s: 1 x 16 { block bottlenek }"),
)
E_UNKNOWN_ARG = _code(
    "E103", "error", "unknown argument", _net("  stage s: 1 x 16 { block basic(expansoin: 2) }")
)
E_BAD_VALUE = _code(
    "E104", "error", "value of the wrong kind", _net("  stage s: 1 x 16\n  stochastic_depth on")
)
E_DUPLICATE = _code(
    "E105", "error", "setting or stage given twice", _net("  stage s: 1 x 16\n  stage s: 1 x 16")
)
E_MISSING = _code(
    "E106", "error", "required setting missing", "network n {\n  input 3x32x32\n  stem cifar\n}\n"
)
E_BAD_NAME = _code("E107", "error", "name cannot be used", _net("  stage fc: 1 x 16"))
E_NOT_HERE = _code(
    "E108", "error", "setting not allowed here", _net("  stage s: 1 x 16 { classes 10 }")
)
# extends: E15x
E_PARENT_MISSING = _code(
    "E150", "error", "parent spec not found", 'network n extends "missing.res" {\n}\n'
)
E_EXTENDS_CYCLE = _code("E151", "error", "extends cycle", 'network n extends "self.res" {\n}\n')
E_EXTENDS_DEPTH = _code("E152", "error", "extends chain too deep", "")
E_PARENT_OUTSIDE = _code(
    "E153",
    "error",
    "parent spec outside the spec's folder",
    'network n extends "../secrets.env" {\n}\n',
)
# Stage generators: E16x
_REGNET = (
    "network n {{\n  input 3x224x224\n  classes 10\n  block bottleneck(expansion: 1)\n"
    "  stages regnet({args})\n{body}}}\n"
)
E_STAGES_TWICE = _code(
    "E160",
    "error",
    "stages both listed and generated",
    _REGNET.format(
        args="w0: 24, wa: 36.44, wm: 2.49, depth: 13, group_size: 8",
        body="  stage a: 1 x 24\n",
    ),
)
E_GENERATOR = _code(
    "E161",
    "error",
    "generator makes no usable stages",
    _REGNET.format(args="w0: 24, wa: 36.44, wm: 9.5, depth: 13, group_size: 8", body=""),
)
# Design rule: E2xx
E_HALVE_DOUBLE = _code(
    "E201",
    "error",
    "halve the size, double the width",
    _net("  stage a: 2 x 16\n  stage b: 2 x 16 / 2"),
)
W_UNUSED_WAIVER = _code(
    "W202",
    "warning",
    "waiver not needed",
    _net("  stage a: 2 x 16\n  stage b: 2 x 32 / 2 { waive halve_double }"),
)
# Shortcuts: E3xx
E_IDENTITY_MISMATCH = _code(
    "E301",
    "error",
    "identity shortcut where shapes differ",
    _net("  shortcut identity\n  stage a: 2 x 16\n  stage b: 2 x 32 / 2"),
)
E_PAD_SHRINKS = _code(
    "E302",
    "error",
    "zero-padding shortcut cannot shrink channels",
    _net("  shortcut A\n  stage a: 2 x 32\n  stage b: 2 x 16 / 2 { waive halve_double }"),
)
E_PAD_ODD = _code(
    "E303",
    "error",
    "zero-padding shortcut needs an even channel increase",
    _net("  shortcut A\n  stage a: 2 x 16\n  stage b: 2 x 33 { waive halve_double }"),
)
E_PLAIN_DROP_PATH = _code(
    "E304",
    "error",
    "stochastic depth in a plain network",
    _net("  shortcut none\n  stochastic_depth 0.1\n  stage a: 2 x 16"),
)
E_PLAIN_ZERO_INIT = _code(
    "E305",
    "error",
    "zero_last_norm in a plain network",
    _net("  shortcut none\n  init kaiming(zero_last_norm: on)\n  stage a: 2 x 16"),
)
E_PLAIN_MIXED = _code(
    "E306",
    "error",
    "plain and residual stages in one network",
    _net("  stage a: 2 x 16\n  stage b: 2 x 32 / 2 { shortcut none }"),
)
# Blocks: E4xx
E_BASIC_GROUPS = _code(
    "E401",
    "error",
    "basic blocks support neither groups nor group width",
    _net("  stage a: 2 x 16 { block basic(groups: 2) }"),
)
E_NOT_FOR_KIND = _code(
    "E402",
    "error",
    "argument or setting does not apply to this block kind",
    _net("  stage a: 2 x 16 { block res2net(stride_on: 1x1) }"),
)
E_GROUPS_DIVIDE = _code(
    "E403",
    "error",
    "groups must divide the width",
    _net("  stage a: 2 x 16 { block bottleneck(groups: 3) }"),
)
E_EXPANSION = _code(
    "E404",
    "error",
    "expansion below 1",
    _net("  stage a: 2 x 16 { block bottleneck(expansion: 0.5) }"),
)
E_STRIDE_ON_BASIC = _code(
    "E405",
    "error",
    "stride placement only applies to bottlenecks",
    _net("  stage a: 2 x 16 { block basic(stride_on: 1x1) }"),
)
E_NO_WIDTH = _code(
    "E406",
    "error",
    "inner width rounds to zero",
    _net("  stage a: 2 x 4 { block bottleneck(groups: 2, group_width: 8) }"),
)
E_NORM_GROUPS = _code(
    "E407",
    "error",
    "group norm's groups must divide the channels",
    _net("  norm group(groups: 3)\n  stage a: 2 x 16"),
)
E_MIXED_GATES = _code(
    "E408",
    "error",
    "squeeze-excitation's gates, or global context's fusions, differ between stages",
    _net(
        "  attention se\n  stage a: 1 x 16\n"
        "  stage b: 1 x 32 / 2 { attention se(gate: hard_sigmoid) }"
    ),
)
# Spatial: E5xx
E_VANISHES = _code(
    "E501",
    "error",
    "feature map shrinks below 1x1",
    "network n {\n  input 3x8x8\n  classes 10\n  stem cifar\n  block basic\n"
    "  stage a: 1 x 16 / 4\n  stage b: 1 x 32 / 4 { waive halve_double }\n"
    "  stage c: 1 x 64 / 4 { waive halve_double }\n}\n",
)
W_ODD_SIZE = _code(
    "W502",
    "warning",
    "odd size floored",
    "network n {\n  input 3x30x30\n  classes 10\n  stem cifar\n  block basic\n"
    "  stage a: 1 x 16\n  stage b: 1 x 32 / 2\n  stage c: 1 x 64 / 2\n}\n",
)
E_BLUR_MAP = _code(
    "E503",
    "error",
    "map too small for the blur's reflection padding",
    "network n {\n  input 3x16x16\n  classes 10\n  stem cifar\n  block basic\n"
    "  anti_alias blur(size: 5)\n  stage a: 1 x 16\n  stage b: 1 x 32 / 2\n"
    "  stage c: 1 x 64 / 2\n  stage d: 1 x 128 / 2\n  stage e: 1 x 256 / 2\n}\n",
)
E_BLOCK_SIZE = _code(
    "E504",
    "error",
    "map not a multiple of bilinear attention's block size",
    "network n {\n  input 3x40x40\n  classes 10\n  stem cifar\n  block bottleneck\n"
    "  attention bat(block_size: 8)\n  stage a: 1 x 16\n  stage b: 1 x 32 / 2\n}\n",
)
# Numbers: E6xx
E_NOT_POSITIVE = _code("E601", "error", "value must be positive", _net("  stage a: 0 x 16"))
E_LIMIT = _code(
    "E602", "error", "value beyond the supported limit", _net("  stage a: 1000000000 x 16")
)
E_NOT_INTEGER = _code(
    "E603",
    "error",
    "value must be a whole number",
    _net("  stage a: 2 x 16 { block bottleneck(groups: 2.5) }"),
)
E_RANGE = _code(
    "E604", "error", "value out of range", _net("  stage a: 2 x 16\n  stochastic_depth 1.5")
)
E_TOO_BIG = _code(
    "E605",
    "error",
    "network too large to build",
    _net("  stage a: 10000 x 16384 { block bottleneck }"),
)

# Backends: E7xx
E_BACKEND = _code("E701", "error", "backend cannot express the network", "")


class Label(NamedTuple):
    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None
    label: str = ""  # text under the primary caret
    help: str | None = None
    notes: tuple[Label, ...] = ()  # secondary spans, drawn with `-`
    suggestions: tuple[Suggestion, ...] = ()  # edits that would fix it, for tools

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity


# At most this many diagnostics of one file are kept; the rest are counted, and one E005 says how
# many there were (in every output format), so a broken file cannot flood a CI log.
MAX_PER_FILE = 50


Applicability = Literal["safe", "unsafe"]


class Suggestion(NamedTuple):
    """An edit that fixes a diagnostic, for tools to apply: the text of `span` replaced by
    `replacement`. `safe` (rustc's MachineApplicable, ruff's safe fix) is what the user
    certainly meant, which `resdsl check --fix` applies: a name that differs only in case, or
    the one option close to a misspelt one. `unsafe` is a guess among several: the editor
    offers it, `check --fix` applies it only with `--unsafe-fixes`."""

    span: Span
    replacement: str
    applicability: Applicability = "unsafe"


@dataclass
class Diagnostics:
    """Collects diagnostics across phases; a phase never raises on bad input."""

    items: list[Diagnostic] = field(default_factory=list)
    omitted: int = 0  # beyond MAX_PER_FILE
    _errors: bool = False

    def add(self, code: str, message: str, span: Span | None, **kwargs) -> None:
        self._errors = self._errors or CODES[code].severity == "error"
        if len(self.items) < MAX_PER_FILE:
            self.items.append(Diagnostic(code, message, span, **kwargs))
        else:
            self.omitted += 1

    def collected(self) -> list[Diagnostic]:
        """What was kept, and an E005 for what was not."""
        if not self.omitted:
            return list(self.items)
        last = sorted_diagnostics(self.items)[-1].span
        more = Diagnostic(
            E_TOO_MANY_DIAGNOSTICS,
            f"{self.omitted:,} more diagnostic{'s' * (self.omitted != 1)} in this file; "
            f"the first {MAX_PER_FILE} are shown",
            last,
            label="the last shown",
            help="fix these and run again",
        )
        return [*self.items, more]

    @property
    def has_errors(self) -> bool:
        return self._errors

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def sorted_diagnostics(items: Iterable[Diagnostic]) -> list[Diagnostic]:
    """By file and position; the count of what was left out (E005) last."""

    def key(d: Diagnostic):
        s = d.span
        place = (s.file, s.start, d.code) if s else ("", -1, d.code)
        return (d.code == E_TOO_MANY_DIAGNOSTICS, *place)

    return sorted(items, key=key)


# --------------------------------------------------------------------------- rendering


class _Style:
    def __init__(self, color: bool):
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def severity(self, severity: Severity, text: str) -> str:
        return self._wrap("1;31" if severity == "error" else "1;33", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def gutter(self, text: str) -> str:
        return self._wrap("1;34", text)


def use_color(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


# Control characters from a file name, a name or an echoed source line must not reach a
# terminal raw (an escape sequence could rewrite the screen): each C0 control and DEL is shown
# as its Unicode control picture (ESC as `␛`), each C1 control as `�`. One character for one,
# so carets stay under what they mark.
_PRINTABLE = {c: 0x2400 + c for c in range(0x20)} | {0x7F: 0x2421}
_PRINTABLE |= {c: 0xFFFD for c in range(0x80, 0xA0)}


def printable(text: str) -> str:
    """`text` with every control character replaced by a visible one (see above)."""
    return text.translate(_PRINTABLE)


def _line_text(sources: Mapping[str, str], file: str, line: int) -> str | None:
    text = sources.get(file)
    if text is None:
        return None
    lines = text.split("\n")
    if 1 <= line <= len(lines):
        return lines[line - 1].rstrip("\r")
    return None


def _underline(span: Span, line_text: str, char: str) -> tuple[int, int]:
    start = span.column - 1
    if span.end_line == span.line:
        end = max(span.end_column - 1, start + 1)
    else:
        end = max(len(line_text), start + 1)
    return start, end


# An echoed source line is cut to a window of this many characters around what it marks, so a
# one-line file of a megabyte prints a line, not a megabyte, per diagnostic.
MAX_ECHO = 120


def _window(text: str, start: int, end: int) -> tuple[str, int, int]:
    """`text` cut to at most MAX_ECHO characters around [start, end), `...` where cut, and the
    mark's new start and end."""
    if len(text) <= MAX_ECHO:
        return text, start, end
    left = max(0, min(start - 20, len(text) - MAX_ECHO))
    right = left + MAX_ECHO
    head = "..." if left else ""
    tail = "..." if right < len(text) else ""
    shift = len(head) - left
    cut_end = min(end, right)
    return head + text[left:right] + tail, start + shift, max(cut_end + shift, start + shift + 1)


def render_text(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, str], color: bool = False
) -> str:
    """rustc-style text: location, message, the source line with carets, notes, help (ending with
    `resdsl explain CODE`). (How many
    are shown is bounded where they are collected: see MAX_PER_FILE.)"""
    style = _Style(color)
    return "".join(_render_one(d, sources, style) for d in sorted_diagnostics(diagnostics))


def _render_one(d: Diagnostic, sources: Mapping[str, str], style: _Style) -> str:
    head = style.severity(d.severity, f"{d.severity}[{d.code}]")
    where = f"{printable(d.span.file)}:{d.span.line}:{d.span.column}: " if d.span else ""
    lines = [f"{style.bold(where)}{head}: {style.bold(printable(d.message))}"]
    marks: list[tuple[Span, str, str]] = []
    if d.span is not None:
        marks.append((d.span, "^", d.label))
    marks.extend((n.span, "-", n.message) for n in d.notes)
    shown = [m for m in marks if _line_text(sources, m[0].file, m[0].line) is not None]
    width = len(str(max(m[0].line for m in shown))) if shown else 0
    pad = " " * width
    if shown:
        lines.append(style.gutter(f"{pad} |"))
        previous_file = d.span.file if d.span else None
        for span, char, message in sorted(
            shown, key=lambda m: (m[0].file != previous_file, m[0].file, m[0].line)
        ):
            if span.file != previous_file:
                lines.append(style.gutter(f"{pad} ::: ") + printable(span.file))
                previous_file = span.file
            text = printable((_line_text(sources, span.file, span.line) or "").expandtabs(1))
            start, end = _underline(span, text, char)
            text, start, end = _window(text, start, end)
            lines.append(style.gutter(f"{span.line:>{width}} |") + (f" {text}" if text else ""))
            mark = " " * start + char * (end - start)
            if message:
                mark += f" {printable(message)}"
            painted = style.severity(d.severity, mark) if char == "^" else style.gutter(mark)
            lines.append(style.gutter(f"{pad} |") + f" {painted}")
    # The help line always ends by naming the command that explains the code (rustc's
    # `--explain`): the meaning, an example and the fix, as on the code's page of the docs.
    explain = f"see `resdsl explain {d.code}`"
    if not d.help:
        help_text = explain
    elif d.help.endswith("?"):  # `did you mean `classes`? see ...`
        help_text = f"{printable(d.help)} {explain}"
    else:
        help_text = f"{printable(d.help)}; {explain}"
    lines.append(f"{pad} = {style.bold('help')}: {help_text}")
    return "\n".join(lines) + "\n\n"


def _span_json(span: Span | None) -> dict | None:
    if span is None:
        return None
    return {
        "file": span.file,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
    }


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    items = [
        {
            "code": d.code,
            "severity": d.severity,
            "message": d.message,
            "span": _span_json(d.span),
            "label": d.label,
            "help": d.help,
            "notes": [{"message": n.message, "span": _span_json(n.span)} for n in d.notes],
            "suggestions": [
                {
                    "span": _span_json(s.span),
                    "replacement": s.replacement,
                    "applicability": s.applicability,
                }
                for s in d.suggestions
            ],
        }
        for d in sorted_diagnostics(diagnostics)
    ]
    # JSON escapes C0 controls itself; C1 controls it would write raw.
    text = json.dumps(items, indent=2, ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if 0x80 <= ord(c) < 0xA0 else c for c in text) + "\n"


def _github_escape(text: str, property_value: bool = False) -> str:
    text = printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub workflow commands: one `::error file=...,line=...::message` per diagnostic."""
    out = []
    for d in sorted_diagnostics(diagnostics):
        props = [f"title={_github_escape(f'{d.code} ' + CODES[d.code].title, True)}"]
        if d.span:
            props = [
                f"file={_github_escape(d.span.file, True)}",
                f"line={d.span.line}",
                f"col={d.span.column}",
                f"endLine={d.span.end_line}",
                f"endColumn={d.span.end_column}",
                *props,
            ]
        message = f"[{d.code}] {d.message}" + (f" (help: {d.help})" if d.help else "")
        out.append(f"::{d.severity} {','.join(props)}::{_github_escape(message)}\n")
    return "".join(out)
