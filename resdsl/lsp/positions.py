"""Positions in a spec: the compiler's offsets (code points) to LSP's line and character, in
the encoding client and server agreed ("utf-16" unless the client offers another), and back.
Lines break where LSP breaks them: `\\n`, `\\r\\n`, `\\r`."""

from __future__ import annotations

import bisect
import re

from lsprotocol import types as lsp

_NEWLINE = re.compile(r"\r\n|\n|\r")


class LineIndex:
    """Character offsets of a text (as the compiler's spans count them) to LSP positions, in
    the negotiated encoding ("utf-16", "utf-8" or "utf-32"), and back."""

    def __init__(self, text: str, encoding: str = "utf-16"):
        self.text = text
        self.encoding = encoding
        self.starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]

    def _units(self, chars: str) -> int:
        if self.encoding == "utf-32" or chars.isascii():
            return len(chars)
        if self.encoding == "utf-8":
            return len(chars.encode("utf-8", "surrogatepass"))
        return len(chars) + sum(1 for c in chars if ord(c) > 0xFFFF)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, max(0, offset)) - 1

    def line_end(self, line: int) -> int:
        """The offset where line `line`'s text ends (before its line break)."""
        start = self.starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        while end > start and self.text[end - 1] in "\r\n":
            end -= 1
        return end

    def position(self, offset: int) -> lsp.Position:
        offset = max(0, min(offset, len(self.text)))
        line = self.line_of(offset)
        offset = min(offset, self.line_end(line))  # inside a `\r\n`: the end of the line
        return lsp.Position(line=line, character=self._units(self.text[self.starts[line] : offset]))

    def offset(self, position: lsp.Position) -> int:
        if position.line >= len(self.starts):
            return len(self.text)
        start, end = self.starts[position.line], self.line_end(position.line)
        line = self.text[start:end]
        if self.encoding == "utf-32" or line.isascii():
            return start + min(position.character, len(line))
        units = 0
        for i, char in enumerate(line):
            if units >= position.character:
                return start + i
            units += self._units(char)
        return end

    def range(self, start: int, end: int) -> lsp.Range:
        return lsp.Range(start=self.position(start), end=self.position(max(start, end)))
