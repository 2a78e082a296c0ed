"""What the language server says of the language: the documentation of settings, kinds and
arguments (from the schema, the block registry and the language reference), completion items,
and Markdown turned into plain text for clients that take no Markdown."""

from __future__ import annotations

import inspect
import re

from lsprotocol import types as lsp

from resdsl.blocks import RECIPES
from resdsl.ir import Span, String
from resdsl.language import schema
from resdsl.language.values import on_off
from resdsl.lsp.scanner import Statement
from resdsl.tooling.catalogue import SETTING_DEFAULTS, SYNTAX, default_text, describe_reader

# --------------------------------------------------------------------------- documentation


def closure(reader) -> dict:
    try:
        return inspect.getclosurevars(reader).nonlocals
    except (TypeError, ValueError):  # pragma: no cover - a builtin as a reader
        return {}


def kinds_of(key: str) -> tuple[str, dict[str, schema.Kind]] | None:
    """(what the kind is called, the table of kinds) for a setting that takes a kind: read
    from the setting's reader, as the language reference reads it."""
    field_ = schema.FIELDS.get(key)
    bound = closure(field_.reader) if field_ else {}
    return (bound["what"], bound["kinds"]) if "kinds" in bound else None


def options_of(reader) -> tuple[str, ...]:
    """The words a reader accepts, when it takes one of a few (choices and switches)."""
    if reader is on_off:
        return ("on", "off")
    bound = closure(reader)
    if "options" in bound:
        return tuple(bound["options"])
    if "kinds" in bound:
        return tuple(bound["kinds"])
    return ()


def arguments(key: str, kind: str) -> dict:
    """The arguments `kind` of setting `key` takes, as the reference lists them (basic blocks
    leave out the bottleneck-only ones)."""
    found = kinds_of(key)
    if found is None or kind not in found[1]:
        return {}
    readers = found[1][kind].readers
    if key == "block":
        skipped = RECIPES[kind].inapplicable
        return {a: r for a, r in readers.items() if a not in skipped}
    return dict(readers)


def _shortcut_words() -> dict[str, str]:
    """The shortcut policies in words, from the reference's paragraph about them."""
    paragraph = SYNTAX.split("Shortcut policies", 1)[-1].replace("\n", " ")
    paragraph = paragraph.split(":", 1)[-1]
    out = {}
    for part in paragraph.split(";"):
        match = re.match(r"\s*`([^`]+)`\s*(.*)", part)
        if match and match.group(1) in schema.SHORTCUTS:
            out[match.group(1)] = match.group(2).strip().rstrip(".")
    return out


SHORTCUT_WORDS = _shortcut_words()


def arguments_text(key: str, kind: str) -> str:
    found = kinds_of(key)
    args = arguments(key, kind)
    if found is None or not args:
        return "no arguments"
    defaults = found[1][kind].defaults
    return "; ".join(
        f"`{a}` ({default_text(defaults.get(a), key)}; {describe_reader(r)})"
        for a, r in args.items()
    )


def setting_doc(key: str) -> str:
    field_ = schema.FIELDS[key]
    where = " and ".join(
        w for w, ok in (("network", field_.network), ("stage", field_.stage)) if ok
    )
    out = [
        f"**`{key}`** (setting, {where})",
        "",
        f"values: {describe_reader(field_.reader)}  ",
        f"default: {SETTING_DEFAULTS.get(key, 'none')}",
    ]
    found = kinds_of(key)
    if found is not None:
        out += ["", f"{found[0]}s and their arguments (default; values):", ""]
        out += [f"- `{kind}`: {arguments_text(key, kind)}" for kind in found[1]]
    return "\n".join(out)


def kind_doc(key: str, kind: str) -> str:
    found = kinds_of(key)
    what = found[0] if found else key
    out = [f"**`{kind}`** ({what}, `{key}`)", ""]
    if key == "shortcut" and kind in SHORTCUT_WORDS:
        out += [f"`{kind}`: {SHORTCUT_WORDS[kind]}.", ""]
    if key == "block":  # the recipe says what the kind is
        out += [f"`{kind}`: {RECIPES[kind].summary}.", ""]
    out.append(f"arguments (default; values): {arguments_text(key, kind)}")
    return "\n".join(out)


def argument_doc(key: str, kind: str, arg: str) -> str | None:
    found = kinds_of(key)
    reader = arguments(key, kind).get(arg)
    if found is None or reader is None:
        return None
    default = default_text(found[1][kind].defaults.get(arg), key)
    meaning = RECIPES[kind].docs.get(arg) if key == "block" else None
    return (
        f"**`{arg}`** (argument of {found[0]} `{kind}`)\n\n"
        + (f"{meaning[0].upper()}{meaning[1:]}.\n\n" if meaning else "")
        + f"values: {describe_reader(reader)}  \ndefault: {default}"
    )


def string_node(text: str) -> String:
    span = Span(file="", line=1, column=1, end_line=1, end_column=1, start=0, end=0)
    return String(text=text, span=span)


def call_at(statement: Statement, i: int) -> tuple[str, bool] | None:
    """Inside the parentheses of `KEY KIND(...)` at word `i`: (KIND, whether at an argument's
    value rather than its name); None outside them."""
    tokens = statement.tokens
    if len(tokens) < 3 or tokens[2].text != "(" or tokens[1].kind != "word" or i <= 2:
        return None
    if any(t.text == ")" for t in tokens[2:i]):
        return None
    previous = tokens[i - 1].text
    return tokens[1].text, previous == ":"


def item(
    label: str,
    kind: lsp.CompletionItemKind,
    doc: str | None = None,
    insert: str | None = None,
    detail: str | None = None,
) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None,
        insert_text=insert,
    )


def setting_item(key: str) -> lsp.CompletionItem:
    return item(
        key,
        lsp.CompletionItemKind.Property,
        setting_doc(key),
        f"{key} ",
        detail=describe_reader(schema.FIELDS[key].reader).replace("\\|", "|"),
    )


def keyword_item(word: str, doc: str) -> lsp.CompletionItem:
    return item(word, lsp.CompletionItemKind.Keyword, doc, f"{word} ")


# --------------------------------------------------------------------------- plain text

_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_RULE_CELL = re.compile(r":?-{3,}:?")
_CODE = re.compile(r"(`[^`]*`)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w\\])_(\S(?:.*?\S)?)_(?!\w)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")


def _plain_line(line: str) -> str:
    """One line of Markdown without emphasis (`**x**`, `_x_`) or escapes (`\\|`), and
    without the two trailing spaces of a line break; `code` keeps its backticks, which read as
    quotes in plain text."""
    parts = _CODE.split(_STRONG.sub(r"\1", line))  # `**` may hold a code span
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = _ESCAPE.sub(r"\1", _ITALIC.sub(r"\1", parts[i]))
    return "".join(parts).rstrip()


def _plain_table(lines: list[str]) -> list[str]:
    """A Markdown table as aligned columns: the rule and empty header rows dropped."""
    rows = []
    for line in lines:
        cells = [_plain_line(c.strip()) for c in _CELL_SPLIT.split(line.strip()[1:-1])]
        if all(_RULE_CELL.fullmatch(c) or not c for c in cells):
            continue
        rows.append(cells)
    widths = [
        max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows), default=0))
    ]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]


def plain_text(markdown: str) -> str:
    """What the server writes in Markdown (hover, completion documentation), for a client that
    takes plain text only: no emphasis or escapes, tables as aligned columns, lists and
    paragraphs as they are."""
    out: list[str] = []
    table: list[str] = []
    for line in [*markdown.split("\n"), None]:
        if line is not None and line.strip().startswith("|") and line.strip().endswith("|"):
            table.append(line)
            continue
        if table:
            out += _plain_table(table)
            table = []
        if line is not None:
            out.append(_plain_line(line))
    return "\n".join(out)
