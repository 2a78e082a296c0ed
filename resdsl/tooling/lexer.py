"""A Pygments lexer for `.res` specs, registered under the `pygments.lexers` entry point, so
`pygmentize -l res spec.res` and any Pygments-based tool highlight specs.

The word lists are generated from the schema and the block registry into
:mod:`resdsl.tooling.lexer_words` (`make words`; a test fails where they are stale), so that
highlighting imports nothing of the compiler: Pygments loads every plugin lexer to look one
up, so importing the schema here would slow down every highlight where resdsl is installed.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from resdsl.tooling.lexer_words import CONSTANTS, KINDS, SETTINGS

__all__ = ["CONSTANTS", "KINDS", "SETTINGS", "ResLexer"]


class ResLexer(RegexLexer):
    """Specs of residual networks for resdsl."""

    name = "resdsl"
    aliases: ClassVar[list[str]] = ["res", "resdsl"]
    filenames: ClassVar[list[str]] = ["*.res"]
    mimetypes: ClassVar[list[str]] = ["text/x-resdsl"]

    tokens: ClassVar[dict] = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (
                r"\b(network)(\s+)([A-Za-z_][A-Za-z_0-9]*)",
                bygroups(Keyword.Declaration, Whitespace, Name.Class),
            ),
            (
                r"\b(stage)(\s+)([A-Za-z_][A-Za-z_0-9]*)",
                bygroups(Keyword.Declaration, Whitespace, Name.Function),
            ),
            (r"\bextends\b", Keyword.Namespace),
            (r'"[^"\\\n\r]*"', String.Double),
            (r"[0-9]+(x[0-9]+)+(?![A-Za-z_0-9])", Number.Integer),
            (r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", Number.Float),
            (r"[+-]?[0-9]+[eE][+-]?[0-9]+", Number.Float),
            (r"[+-]?[0-9]+", Number.Integer),
            (r"\b(x)\b", Operator),
            (r"/", Operator),
            (
                r"([A-Za-z_][A-Za-z_0-9]*)(\s*)(:)",
                bygroups(Name.Attribute, Whitespace, Punctuation),
            ),
            (words(SETTINGS, prefix=r"\b", suffix=r"\b"), Keyword),
            (words(CONSTANTS, prefix=r"\b", suffix=r"\b"), Keyword.Constant),
            (words(KINDS, prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (r"\b[A-D]\b", Name.Builtin),  # shortcut policies
            (r"[A-Za-z_][A-Za-z_0-9]*", Name),
            (r"[{}():,]", Punctuation),
            (r".", Text),
        ],
    }
