"""resdsl: a compiler from `.res` specs of residual networks to PyTorch and Keras 3 code.

The phases, each a module: :mod:`resdsl.language.parser` (text to syntax tree),
:mod:`resdsl.language.extends` (a spec's chain of parents, merged), :mod:`resdsl.language.resolve`
(typing against the tables of :mod:`resdsl.language.schema`), :mod:`resdsl.elaboration.elaborate`
(shapes, parameters, MACs), :mod:`resdsl.validation.passes` (validation), and the backends.
:mod:`resdsl.driver` runs them in order.
"""

from __future__ import annotations

import os

from resdsl.diagnostics.core import Diagnostic, render_text
from resdsl.driver import Result, analyze_file, analyze_text
from resdsl.ir import Network

__all__ = ["Network", "SpecError", "__version__", "analyze", "build", "compile", "load"]
__version__ = "0.1.0"


class SpecError(Exception):
    """A spec with errors; `diagnostics` holds them all, `str()` renders them as text."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]):
        self.diagnostics = diagnostics
        self.sources = sources
        super().__init__(render_text(diagnostics, sources).rstrip())


def _looks_like_text(path_or_text: str) -> bool:
    return "{" in path_or_text or "\n" in path_or_text


def analyze(path_or_text: str | os.PathLike, base: str | os.PathLike | None = None) -> Result:
    """Every phase on a file path or on spec text; never raises on bad input. Spec text finds
    the parents it `extends` in `base` (a folder; the current one by default)."""
    if isinstance(path_or_text, os.PathLike) or not _looks_like_text(path_or_text):
        return analyze_file(os.fspath(path_or_text))
    if base is None:
        return analyze_text(path_or_text)
    # As if the text were a file in `base`: parents resolve there, and only there.
    folder = os.path.abspath(os.fspath(base))
    return analyze_text(path_or_text, os.path.join(folder, "<string>"))


def load(path_or_text: str | os.PathLike, base: str | os.PathLike | None = None) -> Network:
    """The elaborated network of a spec (a path, or text whose `extends` resolve in `base`);
    raises :class:`SpecError` when it has errors."""
    result = analyze(path_or_text, base)
    if not result.ok:
        raise SpecError(result.diagnostics, result.sources)
    return result.network


def compile(
    path_or_text: str | os.PathLike,
    backend: str = "torch",
    base: str | os.PathLike | None = None,
) -> str:
    """The generated module's source for `backend` ("torch" or "keras"); raises
    :class:`SpecError` when the spec has errors or the backend cannot express it (E701)."""
    return _emit(path_or_text, backend, base)[0]


def build(
    path_or_text: str | os.PathLike,
    backend: str = "torch",
    num_classes: int | None = None,
    base: str | os.PathLike | None = None,
):
    """The model itself: the spec compiled for `backend`, imported from memory (no file is
    written) and built by its `build_model(num_classes)`; a `torch.nn.Module` or a
    `keras.Model`. Needs the framework installed. Raises as :func:`compile`."""
    from resdsl.codegen.generated import import_source

    code, network = _emit(path_or_text, backend, base)
    module = import_source(
        code,
        f"_resdsl_built_{backend}_{network.name}",
        f"<resdsl {backend} {network.source.file}>",
    )
    return module.build_model(num_classes)


def _emit(
    path_or_text: str | os.PathLike, backend: str, base: str | os.PathLike | None
) -> tuple[str, Network]:
    """`backend`'s module for the spec, and its network."""
    from resdsl.codegen.backends import get_backend
    from resdsl.driver import backend_diagnostics

    target = get_backend(backend)
    result = analyze(path_or_text, base)
    if result.ok:
        result.diagnostics += backend_diagnostics(result.network, target)
    if not result.ok:
        raise SpecError(result.diagnostics, result.sources)
    return target.emit(result.network), result.network
