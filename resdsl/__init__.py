"""resdsl: a compiler from `.res` specs of residual networks to PyTorch and Keras 3 code.

The phases, each a module: :mod:`resdsl.parser` (text to syntax tree), :mod:`resdsl.extends`
(a spec's chain of parents, merged), :mod:`resdsl.resolve` (typing against the tables of
:mod:`resdsl.schema`), :mod:`resdsl.elaborate` (shapes, parameters, MACs), :mod:`resdsl.passes`
(validation), and the backends. :mod:`resdsl.driver` runs them in order.
"""

from __future__ import annotations

import os

from .diagnostics import Diagnostic, render_text
from .driver import Result, analyze_file, analyze_text
from .ir import Network

__all__ = ["Network", "SpecError", "__version__", "analyze", "compile", "load"]
__version__ = "0.1.0"


class SpecError(Exception):
    """A spec with errors; `diagnostics` holds them all, `str()` renders them as text."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]):
        self.diagnostics = diagnostics
        self.sources = sources
        super().__init__(render_text(diagnostics, sources).rstrip())


def _looks_like_text(path_or_text: str) -> bool:
    return "{" in path_or_text or "\n" in path_or_text


def analyze(path_or_text: str | os.PathLike) -> Result:
    """Every phase on a file path or on spec text; never raises on bad input."""
    if isinstance(path_or_text, os.PathLike) or not _looks_like_text(path_or_text):
        return analyze_file(os.fspath(path_or_text))
    return analyze_text(path_or_text)


def load(path_or_text: str | os.PathLike) -> Network:
    """The elaborated network of a spec; raises :class:`SpecError` when it has errors."""
    result = analyze(path_or_text)
    if not result.ok:
        raise SpecError(result.diagnostics, result.sources)
    return result.network


def compile(path_or_text: str | os.PathLike, backend: str = "torch") -> str:
    """The generated module's source for `backend` ("torch" or "keras")."""
    from .backend import get_backend

    return get_backend(backend).emit(load(path_or_text))
