"""The pipeline, phase by phase: read and parse the spec and its `extends` chain
(:mod:`resdsl.language.extends`), type it (:mod:`resdsl.language.resolve`), elaborate
(:mod:`resdsl.elaboration.elaborate`), validate (:mod:`resdsl.validation.passes`).

Every entry point returns a :class:`Result` holding whatever was reached plus all diagnostics
and the source texts needed to render them. Nothing here raises on bad input.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from resdsl.diagnostics import core as dx
from resdsl.diagnostics.core import Diagnostic, Diagnostics, Label
from resdsl.elaboration.elaborate import elaborate
from resdsl.ir import Network, NetworkSpec, Span
from resdsl.language.extends import load_merged
from resdsl.language.parser import read_source
from resdsl.language.resolve import build_spec
from resdsl.language.schema import MAX_PARAMS
from resdsl.validation.passes import run_passes

if TYPE_CHECKING:
    from resdsl.codegen.backends import Backend


@dataclass
class Result:
    file: str
    spec: NetworkSpec | None = None
    network: Network | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.network is not None and not any(d.severity == "error" for d in self.diagnostics)


def analyze_file(
    path: str,
    roots: tuple[str, ...] = (),
    max_params: int = MAX_PARAMS,
    input_shape: tuple[int, int, int] | None = None,
) -> Result:
    """Run every phase on the spec at `path`; parents may come from its folder and `roots`.
    A network of more than `max_params` parameters is an error (E605). `input_shape`
    (channels, height, width) replaces the spec's `input` (`resdsl summary --input`)."""
    diags = Diagnostics()
    result = Result(file=path)
    text = read_source(path, diags, result.sources)
    if text is not None:
        _analyze(text, path, diags, result, roots, max_params, input_shape)
    result.diagnostics = _via_extends(diags.collected(), path, result.sources)
    return result


def analyze_text(
    text: str,
    file: str = "<string>",
    roots: tuple[str, ...] = (),
    max_params: int = MAX_PARAMS,
) -> Result:
    """Run every phase on spec text; a parent named by `extends` is read relative to the
    current directory (and must lie inside it or `roots`)."""
    diags = Diagnostics()
    result = Result(file=file)
    result.sources[file] = text
    _analyze(text, file, diags, result, roots, max_params)
    result.diagnostics = _via_extends(diags.collected(), file, result.sources)
    return result


_EXTENDS = re.compile(r'\bextends\s+("[^"\n]*")')


def _via_extends(items: list[Diagnostic], file: str, sources: dict[str, str]) -> list[Diagnostic]:
    """Diagnostics located in a parent spec, each with a note at the `extends` of the spec that
    was checked: the parent may be fine on its own, and this says which child brought it in."""
    text = sources.get(file)
    match = _EXTENDS.search(text) if text else None
    if match is None or not any(d.span and d.span.file != file for d in items):
        return items
    start, end = match.span(1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    span = Span(
        file=file,
        line=line,
        column=column,
        end_line=line,
        end_column=column + end - start,
        start=start,
        end=end,
    )
    note = Label(span, f"via `extends` from {os.path.basename(file)}")
    return [
        replace(d, notes=(*d.notes, note)) if d.span and d.span.file != file else d for d in items
    ]


def _analyze(
    text: str,
    file: str,
    diags: Diagnostics,
    result: Result,
    roots: tuple[str, ...],
    max_params: int,
    input_shape: tuple[int, int, int] | None = None,
) -> None:
    merged = load_merged(text, file, diags, result.sources, roots)
    if merged is None:
        return
    # After a syntax error (the parser recovers at the next statement) or a duplicate (E105),
    # the rest is still resolved, so that the file's other errors are reported too; nothing is
    # elaborated from it.
    damaged = diags.has_errors
    spec = build_spec(merged, diags)
    if spec is None or damaged:
        return
    if input_shape is not None:
        spec = spec.model_copy(update={"input": input_shape})
    result.spec = spec
    # The content hash covers the parents too: changing resnet50.res changes resnet101's code.
    network = elaborate(spec, "\n".join(result.sources.values()))
    run_passes(network, diags)
    if network.params > max_params:
        diags.add(
            dx.E_TOO_BIG,
            f"the network has {network.params:,} parameters ({network.params * 4 / 2**30:,.0f} "
            f"GiB in float32); the limit is {max_params:,}",
            network.span,
            help="if a machine of yours holds it, raise the limit with `--max-params N`",
        )
    result.network = network


def backend_diagnostics(network: Network, backend: Backend) -> list[Diagnostic]:
    """An E701 for each thing `backend` reports it cannot express in `network` (see
    :meth:`resdsl.codegen.backends.Backend.unsupported`), at the network's declaration. The built-in
    backends express every network that validates; a plugin may not."""
    diags = Diagnostics()
    for problem in backend.unsupported(network):
        diags.add(
            dx.E_BACKEND,
            f"the {backend.name} backend cannot express {problem}",
            network.span,
            label=f"compiled for {backend.name}",
            help="compile with another backend (`--backend`); from torch or keras, this is a "
            "bug: please report it",
        )
    return diags.collected()


def spec_files(paths: list[str]) -> list[str]:
    """Files named, and every `*.res` under directories named, in a stable order; links found
    in a directory that lead outside it are left out (see :func:`scan`)."""
    return scan(paths)[0]


def scan(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files to read, links refused): the files named, and every `*.res` under directories
    named, in a stable order. A `*.res` found in a directory that is a symlink to a file outside
    that directory is refused rather than read (or, by `fmt`, rewritten)."""
    files: list[str] = []
    refused: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        root = os.path.realpath(path)
        for folder, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(n for n in names if n.endswith(".res")):
                found = os.path.join(folder, name)
                real = os.path.realpath(found)
                inside = os.path.commonpath([real, root]) == root
                (files if inside else refused).append(found)
    return files, refused


def refused_result(path: str) -> Result:
    """The result for a link that a directory scan refused to follow."""
    diags = Diagnostics()
    diags.add(
        dx.E_IO,
        f"cannot read `{path}`: a link to a file outside the folder being checked",
        None,
        help="check the linked file where it lives, or copy it into the folder",
    )
    return Result(file=path, diagnostics=diags.collected())
