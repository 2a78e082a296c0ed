"""The canonical layout of a `.res` file, as `resdsl fmt` writes it.

The layout, one rule each:

* two-space indent per level of braces; no blank lines after `{` or before `}`;
* within one pair of braces, setting values start in one column (the longest key plus one);
* exactly one blank line where settings give way to stages (or back); elsewhere a blank line the
  author left is kept, several collapse into one;
* canonical spacing: `stage name: N x W / S`, `kind(a: 1, b: 2)`, `{ key value }` for a stage
  body holding one setting and no comment, one setting a line otherwise;
* every comment is kept: a full-line comment stays above what followed it, re-indented; a
  trailing comment stays at the end of its line, and the trailing comments of consecutive lines
  at one depth line up two spaces past the longest of those lines, as long as each then ends
  within 100 columns (the project's line length): a comment that would not starts a new
  alignment from its line on. A comment inside a setting that is joined onto one line moves
  above it.

The parser drops comments, so they are collected through a lexer callback on a parser built
from the same grammar (which also keeps every other token, with its position); the structure
comes from the core's syntax tree. Formatting is idempotent and changes no token other than
the `4x128` stage size (written `4 x 128`) and a trailing comma in an argument list.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token

from resdsl.diagnostics.core import Diagnostic, Diagnostics
from resdsl.ir import Call, Dims, Name, Number, Setting, StageDecl, String, Value
from resdsl.language.parser import grammar_text, parse

INDENT = "  "
# Aligning trailing comments never carries a line past this column (see `_Printer._render`).
LINE = 100


@dataclass
class _Comment:
    text: str
    blank_before: bool  # a blank line separated it from what came before
    end: int  # where it ends in the source


@dataclass
class _Attached:
    leading: list[_Comment] = field(default_factory=list)
    trailing: list[_Comment] = field(default_factory=list)


# The comments of the text being lexed in this thread (see `_token_parser`).
_lexing = threading.local()


def _keep_comment(token: Token) -> Token:
    _lexing.comments.append(token)
    return token


@lru_cache(maxsize=1)
def _token_parser() -> Lark:
    """A parser of the core's grammar that keeps every token and reports comments.

    Built once: its lexer callback, fixed when Lark builds the lexer, appends to a list that
    :func:`lex` sets per call and per thread. Only COMMENT gets a callback: Lark chains a user
    callback on NAME with its keyword check in a way that skips some tokens, so the others come
    from the tree.
    """
    return Lark(
        grammar_text(),
        parser="lalr",
        keep_all_tokens=True,
        lexer_callbacks={"COMMENT": _keep_comment},
    )


def lex(text: str) -> tuple[list[Token], list[Token]]:
    """The tokens of a spec that parses, and its comments, each in source order."""
    comments: list[Token] = []
    _lexing.comments = comments
    try:
        tree = _token_parser().parse(text)
    finally:
        del _lexing.comments
    tokens = sorted(tree.scan_values(lambda v: isinstance(v, Token)), key=lambda t: t.start_pos)
    return tokens, comments


class FormatError(Exception):
    """A spec that does not parse; `diagnostics` holds the core's account of it."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("spec has syntax errors")


def format_text(text: str, file: str = "<string>") -> str:
    """The canonical layout of `text`; raises :class:`FormatError` when it does not parse."""
    diags = Diagnostics()
    tree = parse(text, file, diags)
    if tree is None or diags.has_errors:
        raise FormatError(list(diags))
    tokens, comments = lex(text)
    return _Printer(text, tokens, comments).network(tree.network)


# --------------------------------------------------------------------------- values


def render_value(value: Value) -> str:
    if isinstance(value, Call):
        args = ", ".join(f"{a.name.text}: {render_value(a.value)}" for a in value.args)
        return f"{value.name.text}({args})"
    if isinstance(value, String):
        return f'"{value.text}"'
    if isinstance(value, Name | Number | Dims):
        return value.text
    raise TypeError(type(value).__name__)  # pragma: no cover - the syntax tree has no others


# --------------------------------------------------------------------------- printer


@dataclass
class _Line:
    depth: int
    code: str  # empty for a blank line
    trailing: str = ""  # the trailing comment(s), joined
    comment_only: bool = False


class _Printer:
    def __init__(self, text: str, tokens: list[Token], comments: list[Token]):
        self.text = text
        self.tokens = tokens
        self.starts = {t.start_pos: i for i, t in enumerate(tokens)}
        self.attached: dict[int, _Attached] = {}
        self.tail: list[_Comment] = []  # comments after the last token
        self._attach(comments)
        self.lines: list[_Line] = []

    # -- comments

    def _attach(self, comments: list[Token]) -> None:
        index = 0
        previous_end = 0
        for comment in comments:
            while index < len(self.tokens) and self.tokens[index].start_pos < comment.start_pos:
                index += 1
            before = self.tokens[index - 1] if index > 0 else None
            if before is not None:
                previous_end = max(previous_end, before.end_pos)
            note = _Comment(
                str(comment).rstrip(),
                self._blank_between(previous_end, comment.start_pos),
                comment.end_pos,
            )
            if before is not None and before.end_line == comment.line:
                self.attached.setdefault(index - 1, _Attached()).trailing.append(note)
            elif index < len(self.tokens):
                self.attached.setdefault(index, _Attached()).leading.append(note)
            else:
                self.tail.append(note)
            previous_end = comment.end_pos

    def _blank_between(self, start: int, end: int) -> bool:
        """Whether a whole empty line lies between two positions (comment lines are not empty)."""
        if start == 0:
            return False
        lines = self.text[start:end].split("\n")
        return any(not line.strip() for line in lines[1:-1])

    def _range(self, start_pos: int, end_pos: int) -> range:
        first = self.starts[start_pos]
        last = first
        while last + 1 < len(self.tokens) and self.tokens[last + 1].end_pos <= end_pos:
            last += 1
        return range(first, last + 1)

    def _blank_before(self, token_index: int) -> bool:
        """Whether a blank line precedes the token or its first leading comment."""
        attached = self.attached.get(token_index)
        if attached and attached.leading:
            return attached.leading[0].blank_before
        previous = self.tokens[token_index - 1]
        start = previous.end_pos
        trailing = self.attached.get(token_index - 1)
        if trailing and trailing.trailing:
            start = trailing.trailing[-1].end
        return self._blank_between(start, self.tokens[token_index].start_pos)

    def _emit(
        self, depth: int, code: str, tokens: range, blank: bool = False, comment_depth=None
    ) -> None:
        """One line of code made of `tokens`; their comments go above it or at its end."""
        above: list[_Comment] = []
        trailing: list[str] = []
        for i in tokens:
            attached = self.attached.get(i)
            if attached is None:
                continue
            above.extend(attached.leading)
            if i == tokens[-1]:
                trailing.extend(c.text for c in attached.trailing)
            else:
                above.extend(_Comment(c.text, False, c.end) for c in attached.trailing)
        if blank:
            self._blank()
        for number, note in enumerate(above):
            if note.blank_before and number > 0:
                self._blank()
            depth_here = depth if comment_depth is None else comment_depth
            self.lines.append(_Line(depth_here, note.text, comment_only=True))
        first = self.attached.get(tokens[0])
        if (
            first
            and first.leading
            and self._blank_between(first.leading[-1].end, self.tokens[tokens[0]].start_pos)
        ):
            self._blank()
        self.lines.append(_Line(depth, code, "  ".join(trailing)))

    def _blank(self) -> None:
        if self.lines and self.lines[-1].code:
            self.lines.append(_Line(0, ""))

    # -- structure

    def network(self, decl) -> str:
        open_index = self._find("{", decl.span.start)
        header = f"network {decl.name.text}"
        if decl.extends is not None:
            header += f' extends "{decl.extends.text}"'
        self._emit(0, header + " {", range(self.starts[decl.span.start], open_index + 1))
        members = sorted([*decl.settings, *decl.stages], key=lambda m: m.span.start)
        width = max((len(s.key.text) for s in decl.settings), default=0)
        previous = None
        for member in members:
            first = self.starts[member.span.start]
            blank = previous is not None and (
                isinstance(member, Setting) != isinstance(previous, Setting)
                or self._blank_before(first)
            )
            if isinstance(member, Setting):
                self._setting(member, 1, width, blank)
            else:
                self._stage(member, 1, blank)
            previous = member
        close = len(self.tokens) - 1
        self._close(0, close)
        for note in self.tail:
            if note.blank_before:
                self._blank()
            self.lines.append(_Line(0, note.text, comment_only=True))
        return self._render()

    def _find(self, value: str, start_pos: int) -> int:
        index = self.starts[start_pos]
        while self.tokens[index].type == "STRING" or str(self.tokens[index]) != value:
            index += 1
        return index

    def _close(self, depth: int, index: int) -> None:
        """A closing brace; comments above it belong to the body, one level deeper."""
        attached = self.attached.get(index)
        blank = bool(attached and attached.leading and attached.leading[0].blank_before)
        blank = blank and not self.lines[-1].code.endswith("{")
        self._emit(depth, "}", range(index, index + 1), blank, comment_depth=depth + 1)

    def _setting(self, setting: Setting, depth: int, width: int, blank: bool) -> None:
        code = f"{setting.key.text.ljust(width)} {render_value(setting.value)}"
        self._emit(depth, code, self._range(setting.span.start, setting.span.end), blank)

    def _stage(self, stage: StageDecl, depth: int, blank: bool) -> None:
        head = f"stage {stage.name.text}: {stage.blocks.text} x {stage.width.text}"
        if stage.stride is not None:
            head += f" / {stage.stride.text}"
        tokens = self._range(stage.span.start, stage.span.end)
        size_end = (stage.stride or stage.width).span.end
        body = [i for i in tokens if self.tokens[i].start_pos >= size_end]
        if not body:  # no braces
            self._emit(depth, head, tokens, blank)
            return
        open_index, close_index = body[0], body[-1]
        header_tokens = range(tokens[0], open_index + 1)
        quiet = not any(self.attached.get(i) for i in range(open_index, close_index)) and not (
            self.attached.get(close_index) and self.attached[close_index].leading
        )
        if quiet and len(stage.settings) <= 1:
            if stage.settings:
                setting = stage.settings[0]
                inside = f"{{ {setting.key.text} {render_value(setting.value)} }}"
            else:
                inside = "{}"
            self._emit(depth, f"{head} {inside}", tokens, blank)
            return
        self._emit(depth, head + " {", header_tokens, blank)
        width = max((len(s.key.text) for s in stage.settings), default=0)
        for number, setting in enumerate(stage.settings):
            first = self.starts[setting.span.start]
            self._setting(setting, depth + 1, width, number > 0 and self._blank_before(first))
        self._close(depth, close_index)

    # -- output

    def _render(self) -> str:
        """Lines to text; trailing comments of consecutive lines at one depth share a column,
        unless that would carry one of them past LINE: that line starts a new column."""
        out: list[str] = []
        run: list[_Line] = []

        def code(line: _Line) -> str:
            return INDENT * line.depth + line.code

        def fits(lines: list[_Line]) -> bool:
            commented = [ln for ln in lines if ln.trailing]
            column = max((len(code(ln)) for ln in commented), default=0)
            return all(column + 2 + len(ln.trailing) <= LINE for ln in commented)

        def flush() -> None:
            column = max((len(code(ln)) for ln in run if ln.trailing), default=0)
            for ln in run:
                out.append(f"{code(ln).ljust(column)}  {ln.trailing}" if ln.trailing else code(ln))
            run.clear()

        for line in self.lines:
            if not line.code:
                flush()
                out.append("")
                continue
            if run and run[-1].depth != line.depth:
                flush()
            # Greedy, and from the lines' text alone, so formatting stays idempotent.
            if line.trailing and any(ln.trailing for ln in run) and not fits([*run, line]):
                flush()
            run.append(line)
        flush()
        return "\n".join(out).rstrip("\n") + "\n"
