"""Phase 1: bytes to the syntax tree (:class:`resdsl.ir.SpecFile`), or located diagnostics.

The Lark parser is built once per process (LALR, positions propagated). The transformer only
builds nodes; every problem becomes a diagnostic, never an exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from resdsl import grammars
from resdsl.diagnostics import core as dx
from resdsl.diagnostics.core import Diagnostics
from resdsl.ir import (
    Arg,
    Call,
    Dims,
    Name,
    NetworkDecl,
    Number,
    Setting,
    Span,
    SpecFile,
    StageDecl,
    String,
)

MAX_FILE_BYTES = 1 << 20  # 1 MiB: the largest spec in the library is under 1 KiB
# Tokens (words, numbers, sizes, strings, punctuation; not comments): the largest spec in the
# library has about 150. LALR parsing costs about 10 microseconds a token, so this bounds any
# input to well under a second and a few megabytes.
MAX_TOKENS = 4096
_TOKEN = re.compile(r'#[^\n]*|"[^"\n]*"|[A-Za-z0-9_.+-]+|\S')


_LARK_OPTIONS = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}


def _grammar_file(name: str) -> str:
    """A file of the `resdsl.grammars` package (read beside its `__init__`, as the backends
    read their templates: importlib.resources would cost a `check` a few milliseconds)."""
    return os.path.join(os.path.dirname(grammars.__file__), name)


@lru_cache(maxsize=1)
def grammar_text() -> str:
    with open(_grammar_file("resdsl.lark"), encoding="utf-8") as handle:
        return handle.read()


def _tables_key() -> str:
    """What the prebuilt tables depend on: the grammar's text and Lark's version."""
    import lark

    digest = hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()
    return f"grammar sha256 {digest}, lark {lark.__version__}"


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The parser, from the prebuilt LALR tables when they match the grammar and this Lark.

    Building the tables takes most of a short `resdsl check`; loading them takes about a
    millisecond. They are JSON (see :func:`_to_json`; no pickle, so nothing in them can run),
    and `make grammar` regenerates them. On a mismatch the grammar is simply built, so stale
    tables cost time, never correctness.
    """
    try:
        with open(_grammar_file("resdsl.tables"), encoding="utf-8") as handle:
            header, _, body = handle.read().partition("\n")
        if header == f"# {_tables_key()}":
            saved = json.loads(body, object_hook=_from_json)
            return Lark._load_from_dict(saved["data"], saved["memo"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return Lark(grammar_text(), **_LARK_OPTIONS)


def build_tables() -> str:
    """The text of grammars/resdsl.tables for the current grammar and Lark (`make grammar`)."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    parser = Lark(grammar_text(), **_LARK_OPTIONS)
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    body = json.dumps(_to_json({"data": data, "memo": memo}), separators=(",", ":"))
    return f"# {_tables_key()}\n{body}\n"


# Lark's serialised tables hold tuples and integer keys, which JSON lacks: they are tagged.
_TUPLE, _ITEMS = "$tuple", "$items"


def _to_json(value):
    """`value` in JSON's types: a tuple becomes {"$tuple": [...]}, and a dict with a key that
    is not a string becomes {"$items": [[key, value], ...]}; :func:`_from_json` undoes it."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return {_ITEMS: [[_to_json(k), _to_json(v)] for k, v in value.items()]}
        if len(value) == 1 and next(iter(value)) in (_TUPLE, _ITEMS):
            raise ValueError(f"a dict keyed {next(iter(value))!r} would read back as a tag")
        return {key: _to_json(v) for key, v in value.items()}
    if isinstance(value, tuple):
        return {_TUPLE: [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _from_json(obj: dict):
    """The object_hook that reads :func:`_to_json`'s tags back (inner objects come first)."""
    if len(obj) == 1:
        if _TUPLE in obj:
            return tuple(obj[_TUPLE])
        if _ITEMS in obj:
            return dict(obj[_ITEMS])
    return obj


def read_source(path: str, diags: Diagnostics, sources: dict[str, str]) -> str | None:
    """The text of the spec at `path`, added to `sources`; None, with a diagnostic, when it
    cannot be read or is not a spec's text."""
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(f"`{path}` is a directory")
        # Opening a FIFO would wait for a writer forever, and a device never ends: only
        # regular files are read (a missing file falls through to open's own error).
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            raise OSError(0, "not a regular file (a FIFO, device or socket)")
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # one byte past the limit is enough to refuse it
    except OSError as error:
        reason = error.strerror or str(error)
        diags.add(
            dx.E_IO,
            f"cannot read `{path}`: {reason}",
            None,
            help="give the path of a readable `.res` file",
        )
        return None
    text = decode(data, path, diags)
    if text is not None:
        sources[path] = text
    return text


def decode(data: bytes, file: str, diags: Diagnostics) -> str | None:
    """Bytes to text, refusing what cannot be a spec with a located diagnostic."""
    if len(data) > MAX_FILE_BYTES:
        diags.add(
            dx.E_TOO_LARGE,
            f"file is {len(data):,} bytes; specs are limited to {MAX_FILE_BYTES:,}",
            _point(file, "", 0),
            help="a spec describes one network in a few dozen lines; is this the right file?",
        )
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        prefix = data[: error.start].decode("utf-8", errors="replace")
        diags.add(
            dx.E_ENCODING,
            f"byte 0x{data[error.start]:02x} at offset {error.start} is not valid UTF-8",
            _point(file, prefix, len(prefix)),
            help="save the spec as UTF-8 text",
        )
        return None
    if "\x00" in text:
        offset = text.index("\x00")
        diags.add(
            dx.E_ENCODING,
            "file contains a NUL byte; it looks binary, not a spec",
            _point(file, text, offset),
            help="save the spec as UTF-8 text",
        )
        return None
    return text


def parse(text: str, file: str, diags: Diagnostics) -> SpecFile | None:
    """Text to the syntax tree; every syntax error a diagnostic (see
    :func:`_parse_recovering`), None where the file cannot be read to its end."""
    if not text.strip() or _only_comments(text):
        diags.add(
            dx.E_EMPTY,
            "no network in this file",
            _point(file, text, 0),
            help="a spec starts with `network NAME {`",
        )
        return None
    beyond = _beyond_token_limit(text)
    if beyond is not None:
        diags.add(
            dx.E_TOO_MANY_TOKENS,
            f"more than {MAX_TOKENS:,} tokens; resdsl reads no further",
            _point(file, text, beyond),
            label=f"token {MAX_TOKENS + 1:,}",
            help="a spec describes one network in a few hundred tokens; is this the right file?",
        )
        return None
    tree = _parse_recovering(text, file, diags)
    if tree is None:
        return None
    network = _Builder(file, diags).transform(tree)
    return SpecFile(path=file, network=network)


# Syntax errors reported from one file before resdsl stops looking for more.
MAX_SYNTAX_ERRORS = 20


def _parse_recovering(text: str, file: str, diags: Diagnostics):
    """The parse tree of `text`, reporting every syntax error: after each, the statement it is
    in (the setting's or the stage's line; a stage's whole braces where the line opens them) is
    blanked, offsets kept, and the text parsed again, so the next setting or stage line is read
    as usual. None where the file ends inside the network or the network's own line is wrong:
    nothing follows to recover at. The tree of a file with syntax errors lacks the statements
    that did not parse: the resolve phase then reports no missing setting or stage (they may be
    on those lines)."""
    current, last = text, -1
    for _ in range(MAX_SYNTAX_ERRORS):
        try:
            return lark_parser().parse(current)
        except UnexpectedInput as error:
            offset = _error_offset(error, current)
            # No progress, or in the braces added at the end: what is left cannot be read.
            if offset <= last or (len(current) > len(text) and offset >= len(text)):
                return None
            _syntax_error(error, current, file, diags)
            token = getattr(error, "token", None)
            if isinstance(error, UnexpectedEOF) or getattr(token, "type", None) == "$END":
                # The braces left open are closed, once, to read what came before the end.
                opened = _depth(current, "{", "}")
                if opened <= 0 or current.endswith("}"):
                    return None
                current, last = current + "\n" + "}" * opened, offset
                continue
            closed = _close_stage_before(current, offset)
            if closed is not None:  # a stage inside a stage's braces: they were left open
                current, last = closed, offset
                continue
            through = None
            if current[offset : offset + 1] == '"':  # a string left open: to its next quote
                close = current.find('"', offset + 1)
                through = close + 1 if close > 0 else None
            repaired = _without_statement(current, offset, through)
            if repaired is None:  # a line of closing braces: the statement before it is wrong
                previous = current.rfind("\n", 0, current.rfind("\n", 0, offset) + 1)
                repaired = _without_statement(current, max(previous, 0)) if previous > 0 else None
            if repaired is None:
                return None
            current, last = repaired, offset
    return None


def _error_offset(error: UnexpectedInput, text: str) -> int:
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        return error.token.start_pos
    position = getattr(error, "pos_in_stream", None)
    return len(text) if position is None else position


_CODE = re.compile(r'"[^"\n]*"|#[^\n]*|[(){}]')


def _brackets(line: str) -> list[str]:
    """The brackets of a line, outside strings and comments."""
    return [m.group() for m in _CODE.finditer(line) if m.group() in "(){}"]


def _without_statement(text: str, offset: int, through: int | None = None) -> str | None:
    """`text` with the statement at `offset` blanked (spaces; newlines and offsets kept; to
    the line of offset `through` at least, where given), or None where there is none to
    blank: the network's own line, or nothing but a brace."""
    start = text.rfind("\n", 0, offset) + 1
    # A call spread over lines: the statement starts at the line of its open parenthesis.
    while start > 0 and _depth(text[:start], "(", ")") > 0:
        start = text.rfind("\n", 0, start - 1) + 1
    if text[start:].lstrip().startswith("network") and _depth(text[:start], "{", "}") == 0:
        return None
    end = text.find("\n", max(offset, through or 0) - (1 if through else 0))
    end = len(text) if end < 0 else end
    opened = _depth(text[start:end], "{", "}")
    if opened > 0:  # a stage's braces open here: they go, to their closing brace
        depth = 0
        for match in _CODE.finditer(text, start):
            if match.group() == "{":
                depth += 1
            elif match.group() == "}":
                depth -= 1
                if depth == 0:
                    end = match.end()
                    break
        else:
            return None
    kept = max(0, -opened)  # a line closing braces it did not open keeps them
    blanked = []
    for char in reversed(text[start:end]):
        if char == "}" and kept:
            kept -= 1
            blanked.append(char)
        else:
            blanked.append(char if char == "\n" else " ")
    replaced = "".join(reversed(blanked))
    if replaced == text[start:end]:
        return None
    return text[:start] + replaced + text[end:]


def _close_stage_before(text: str, offset: int) -> str | None:
    """Where the line at `offset` is a stage's (`stage NAME: ...`) inside another stage's
    braces, `text` with those braces closed in the indentation before it; else None."""
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:offset]
    indent = len(line) - len(line.lstrip(" \t"))
    if not re.match(r"stage\s+[A-Za-z_]", line.lstrip()) or indent == 0:
        return None
    if _depth(text[:start], "{", "}") < 2:
        return None
    return text[: start + indent - 1] + "}" + text[start + indent :]


def _depth(text: str, opening: str, closing: str) -> int:
    depth = 0
    for bracket in _brackets(text):
        depth += (bracket == opening) - (bracket == closing)
    return depth


def _beyond_token_limit(text: str) -> int | None:
    """The offset of the first token past MAX_TOKENS, or None. Counted by a regular expression
    before the parser spends time on them; it splits as the grammar does, except that it keeps
    `a-1` whole, which the grammar rejects at once as a syntax error."""
    count = 0
    for match in _TOKEN.finditer(text):
        if match.group().startswith("#"):
            continue
        count += 1
        if count > MAX_TOKENS:
            return match.start()
    return None


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("#") for line in text.splitlines())


# --------------------------------------------------------------------------- spans


def _point(file: str, text: str, offset: int, length: int = 1) -> Span:
    """A span of `length` characters at `offset`, with line and column computed from `text`."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(
        file=file,
        line=line,
        column=column,
        end_line=line,
        end_column=column + length,
        start=offset,
        end=offset + length,
    )


def _token_span(file: str, token: Token) -> Span:
    return Span(
        file=file,
        line=token.line,
        column=token.column,
        end_line=token.end_line,
        end_column=token.end_column,
        start=token.start_pos,
        end=token.end_pos,
    )


def _meta_span(file: str, meta) -> Span:
    return Span(
        file=file,
        line=meta.line,
        column=meta.column,
        end_line=meta.end_line,
        end_column=meta.end_column,
        start=meta.start_pos,
        end=meta.end_pos,
    )


# --------------------------------------------------------------------------- syntax errors

_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "a whole number",
    "NUMBER": "a number",
    "DIMS": "a size such as `3x224x224`",
    "STRING": 'a quoted file name such as `"resnet50.res"`',
    "$END": "end of file",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    for terminal in lark_parser().terminals:
        if terminal.name == name and terminal.pattern.type == "str":
            return f"`{terminal.pattern.value}`"
    return name.lower()


def _expected(names) -> str:
    words = sorted({_describe_terminal(n) for n in names})
    if len(words) <= 1:
        return words[0] if words else "nothing"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _syntax_error(error: UnexpectedInput, text: str, file: str, diags: Diagnostics) -> None:
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        shown = repr(char)[1:-1] if not char.isprintable() else char
        assignment = _assignment(text, error.pos_in_stream) if char == "=" else None
        diags.add(
            dx.E_UNEXPECTED_CHAR,
            f"unexpected character `{shown}`" + (": settings take no `=`" if assignment else ""),
            _point(file, text, error.pos_in_stream),
            label="not part of the language",
            help=assignment or (f"expected {_expected(error.allowed)}" if error.allowed else None),
        )
    elif isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        diags.add(
            dx.E_UNEXPECTED_EOF,
            "the file ends before the network does",
            _point(file, text, len(text.rstrip()), 1),
            label=f"expected {_expected(_acceptable(error))}",
            help="is a closing `}` missing?",
        )
    elif isinstance(error, UnexpectedToken):
        token = error.token
        assignment = _assignment(text, token.start_pos) if token.type == "COLON" else None
        diags.add(
            dx.E_SYNTAX,
            f"unexpected `{token}`" + (": settings take no `:`" if assignment else ""),
            _token_span(file, token),
            label=f"expected {_expected(_acceptable(error))}",
            help=assignment
            or _syntax_help(error, text)
            or "a setting reads `key value`; a stage `stage NAME: BLOCKS x WIDTH / STRIDE`",
        )
    else:  # pragma: no cover - Lark has no other subclasses
        diags.add(dx.E_SYNTAX, str(error), _point(file, text, 0))


def _acceptable(error: UnexpectedInput) -> set[str]:
    """The tokens the parser can take here: LALR merges lookaheads, so `expected` may name
    tokens (`)` after a setting's value) that could not actually follow; `accepts` is exact."""
    return getattr(error, "accepts", None) or getattr(error, "expected", None) or set()


_SETTING_THEN = re.compile(r"[ \t]*([A-Za-z_][A-Za-z_0-9]*)[ \t]*$")


def _assignment(text: str, offset: int) -> str | None:
    """Help for `classes = 7` or `input: 1x64x64` (a setting written as an assignment): the
    line as it should read; None where the `=` or `:` follows anything but a setting's key."""
    line_start = text.rfind("\n", 0, offset) + 1
    key = _SETTING_THEN.fullmatch(text, line_start, offset)
    if key is None or key.group(1) in ("stage", "network"):
        return None
    line_end = text.find("\n", offset)
    value = text[offset + 1 : line_end if line_end >= 0 else len(text)].split("#")[0].strip()
    return f"a setting is its key, a space and its value: `{key.group(1)} {value}`"


def _syntax_help(error: UnexpectedToken, text: str = "") -> str | None:
    expected = set(_acceptable(error))
    if expected == {"NETWORK"}:
        return "a spec starts with `network NAME {`"
    if expected == {"NAME"} and error.token.type in ("INT", "NUMBER", "DIMS"):
        word = re.match(r"[A-Za-z0-9_]*", text[error.token.start_pos :]).group()
        digits = re.match(r"[0-9]*", word).group()
        rest = word[len(digits) :].lstrip("_")
        example = f"{rest}{digits}" if rest else f"n{digits}"
        return f"names start with a letter or `_`, then letters, digits and `_` (e.g. `{example}`)"
    if "COLON" in expected and error.token.type in ("INT", "DIMS"):
        return "a stage reads `stage NAME: BLOCKS x WIDTH / STRIDE`"
    if "X" in expected:
        return (
            "a stage reads `stage NAME: BLOCKS x WIDTH / STRIDE`, e.g. `stage layer2: 4 x 128 / 2`"
        )
    if error.token.type == "NAME" and expected & {"NAME", "NUMBER", "DIMS", "STRING"}:
        return "each setting takes one value; `key value`, or `key kind(arg: value, ...)`"
    return None


# --------------------------------------------------------------------------- tree builder


def _bounded_int(digits: str) -> int:
    # Python refuses to convert over 4,300 digits; anything past 18 is absurd anyway and the
    # limits pass reports it, so keep the number finite and cheap.
    return int(digits) if len(digits) <= 18 else 10**18


@v_args(meta=True)
class _Builder(Transformer):
    """Parse tree to syntax nodes. Builds only; checks belong to the resolve phase."""

    def __init__(self, file: str, diags: Diagnostics):
        super().__init__()
        self.file = file
        self.diags = diags

    def _name(self, token: Token) -> Name:
        return Name(text=str(token), span=_token_span(self.file, token))

    def _number(self, token: Token) -> Number:
        return Number(value=float(token), text=str(token), span=_token_span(self.file, token))

    def start(self, meta, children):
        return children[0]

    def network(self, meta, children):
        name, extends, *members = children
        return NetworkDecl(
            name=self._name(name),
            extends=extends,
            settings=tuple(m for m in members if isinstance(m, Setting)),
            stages=tuple(m for m in members if isinstance(m, StageDecl)),
            span=_meta_span(self.file, meta),
        )

    def extends(self, meta, children):
        token = children[0]
        return String(text=str(token)[1:-1], span=_token_span(self.file, token))

    def stage(self, meta, children):
        name, (blocks, width), stride, body = children
        return StageDecl(
            name=self._name(name),
            blocks=blocks,
            width=width,
            stride=stride,
            settings=body or (),
            span=_meta_span(self.file, meta),
        )

    def size_spaced(self, meta, children):
        return self._number(children[0]), self._number(children[1])

    def size_compact(self, meta, children):
        # `4x128`: split the DIMS token into two numbers with their own spans.
        token = children[0]
        text = str(token)
        left, _, right = text.partition("x")
        span = _token_span(self.file, token)
        if "x" in right:
            self.diags.add(
                dx.E_SYNTAX,
                f"`{text}` is not a stage size",
                span,
                label="expected BLOCKS x WIDTH",
                help="a stage reads `stage NAME: BLOCKS x WIDTH / STRIDE`",
            )
            right = right.partition("x")[0]
        first = span.model_copy(
            update={"end_column": span.column + len(left), "end": span.start + len(left)}
        )
        second = span.model_copy(
            update={
                "column": span.column + len(left) + 1,
                "start": span.start + len(left) + 1,
            }
        )
        return (
            Number(value=float(left), text=left, span=first),
            Number(value=float(right), text=right, span=second),
        )

    def stage_stride(self, meta, children):
        return self._number(children[0])

    def stage_body(self, meta, children):
        return tuple(children)

    def setting(self, meta, children):
        key, value = children
        return Setting(key=self._name(key), value=value, span=_meta_span(self.file, meta))

    def call(self, meta, children):
        name, *args = children
        return Call(
            name=self._name(name),
            args=tuple(a for a in args if a is not None),
            span=_meta_span(self.file, meta),
        )

    def arg(self, meta, children):
        name, value = children
        return Arg(name=self._name(name), value=value, span=_meta_span(self.file, meta))

    def name(self, meta, children):
        return self._name(children[0])

    def number(self, meta, children):
        return self._number(children[0])

    def dims(self, meta, children):
        token = children[0]
        return Dims(
            parts=tuple(_bounded_int(p) for p in str(token).split("x")),
            text=str(token),
            span=_token_span(self.file, token),
        )

    def string(self, meta, children):
        token = children[0]
        return String(text=str(token)[1:-1], span=_token_span(self.file, token))
