"""The words of a spec's text, read by a tolerant scan (:func:`scan`): completion runs on text
being typed, which no parser accepts, and hover, inlay hints and the outline keep working
while the text does not parse."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# --------------------------------------------------------------------------- the words of a text

_TOKENS = re.compile(
    r"""(?P<comment>\#[^\r\n]*)
    |(?P<string>"[^"\r\n]*"?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<number>[+-]?(?:[0-9]|\.[0-9])[A-Za-z0-9_.+-]*)
    |(?P<newline>\r\n|\n|\r)
    |(?P<space>[^\S\r\n]+)
    |(?P<punct>.)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # "word", "number", "string" or "punct"
    text: str
    start: int
    end: int


@dataclass
class Statement:
    """A setting, a stage's header or the network's header, as words: one a line by
    convention, ended also by a brace (a line break inside parentheses does not end one).
    A statement that starts with `stage` is taken for a stage's header at any depth, so that
    a brace left open while typing does not hide the stages after it."""

    depth: int  # braces open before it: 0 outside the network, 1 in it, 2 in a stage's body
    tokens: list[Tok] = field(default_factory=list)
    end: int = 0  # after its last word, or after the `}` that closes the body it opens

    def word(self, i: int) -> str | None:
        tok = self.tokens[i] if i < len(self.tokens) else None
        return tok.text if tok is not None and tok.kind == "word" else None

    @property
    def head(self) -> str | None:
        return self.word(0)


@dataclass
class Scan:
    """The statements of a text; and, for a text cut at the cursor, where the cursor is."""

    statements: list[Statement]
    current: Statement  # the statement the text ends in (possibly empty)
    in_comment: bool  # the text ends inside a comment


def scan(text: str) -> Scan:
    """The words of `text` grouped in statements, with how deep in braces each one is: a
    tolerant scan for what the cursor is on (any text is accepted; nothing is checked)."""
    statements: list[Statement] = []
    opened: list[Statement] = []  # statements whose `{` is still open
    current = Statement(0)
    depth = parens = 0
    in_comment = False
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup
        in_comment = kind == "comment"
        if kind in ("space", "comment"):
            continue
        if kind == "newline":
            if parens == 0 and current.tokens:
                statements.append(current)
                current = Statement(depth)
            continue
        tok = Tok(kind, match.group(), match.start(), match.end())
        if tok.text == "{":
            current.tokens.append(tok)
            current.end = tok.end
            statements.append(current)
            opened.append(current)
            depth, parens = depth + 1, 0
            current = Statement(depth)
        elif tok.text == "}":
            if current.tokens:
                statements.append(current)
            depth, parens = max(0, depth - 1), 0
            if opened:
                opened.pop().end = tok.end
            current = Statement(depth)
        else:
            parens += {"(": 1, ")": -1}.get(tok.text, 0)
            parens = max(parens, 0)
            current.tokens.append(tok)
            current.end = tok.end
    if current.tokens:
        statements.append(current)
    return Scan(statements, current, in_comment)


def at(statements: list[Statement], offset: int) -> tuple[Statement, int] | None:
    """The statement and word index at `offset` (a word ending there counts)."""
    touching = None
    for statement in statements:
        for i, tok in enumerate(statement.tokens):
            if tok.start <= offset < tok.end:
                return statement, i
            if tok.end == offset and tok.kind != "punct":
                touching = statement, i
    return touching
