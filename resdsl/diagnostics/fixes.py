"""`resdsl check --fix`: the suggestions that diagnostics carry, applied to the files they name.

A suggestion is an edit (a span and its replacement) with an applicability
(:class:`resdsl.diagnostics.core.Suggestion`): `safe` ones are applied, `unsafe` ones only when the
user asks. A file is fixed in rounds, because a fix can reveal what the first error hid (an
argument misspelt in a call whose kind was misspelt too); each round writes the file
atomically, and a file is only ever edited by the suggestions located in it, never in a parent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from resdsl.diagnostics.core import Diagnostic, Suggestion
from resdsl.files import atomic_write

MAX_ROUNDS = 10  # a fix reveals at most a few more; a bound, so no file can make this loop


def suggestions_in(
    diagnostics: Iterable[Diagnostic], file: str, unsafe: bool = False
) -> list[Suggestion]:
    """The suggestions of `diagnostics` located in `file` that may be applied."""
    return [
        s
        for d in diagnostics
        for s in d.suggestions
        if s.span.file == file and (unsafe or s.applicability == "safe")
    ]


def apply(text: str, suggestions: Iterable[Suggestion]) -> tuple[str, int]:
    """`text` with `suggestions` applied, and how many were: in order of position, each but
    those that overlap an earlier one (a later round sees them again)."""
    chosen: list[Suggestion] = []
    for suggestion in sorted(suggestions, key=lambda s: (s.span.start, s.span.end)):
        if chosen and suggestion.span.start < chosen[-1].span.end:
            continue
        chosen.append(suggestion)
    for suggestion in reversed(chosen):
        span = suggestion.span
        text = text[: span.start] + suggestion.replacement + text[span.end :]
    return text, len(chosen)


def fix_file(path: str, analyze: Callable, unsafe: bool = False) -> int:
    """Apply the suggestions of `analyze(path)`'s diagnostics to the file at `path`, round after
    round until none is left; how many were applied. Raises OSError when it cannot be
    written."""
    fixed = 0
    for _ in range(MAX_ROUNDS):
        result = analyze(path)
        text = result.sources.get(path)
        found = suggestions_in(result.diagnostics, path, unsafe)
        if text is None or not found:
            break
        new, count = apply(text, found)
        if new == text:
            break
        with open(path, "rb") as handle:  # the parser drops a byte-order mark: keep it
            bom = handle.read(3) == b"\xef\xbb\xbf"
        atomic_write(path, ("\ufeff" if bom else "") + new)
        fixed += count
    return fixed
