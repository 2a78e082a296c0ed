"""The pipeline, phase by phase: read, parse, resolve `extends`, type, elaborate, validate.

Every entry point returns a :class:`Result` holding whatever was reached plus all diagnostics
and the source texts needed to render them. Nothing here raises on bad input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import diagnostics as dx
from .diagnostics import Diagnostic, Diagnostics
from .elaborate import elaborate
from .ir import Network, NetworkSpec, Span
from .parser import decode, parse
from .passes import run_passes
from .resolve import Merged, build_spec, merge, parent_path

MAX_EXTENDS_DEPTH = 16


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


def _io_span(file: str) -> Span:
    return Span(file=file, line=1, column=1, end_line=1, end_column=1, start=0, end=0)


def read_source(path: str, diags: Diagnostics, sources: dict[str, str]) -> str | None:
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(f"`{path}` is a directory")
        with open(path, "rb") as handle:
            data = handle.read(1 << 20 | 1)  # one byte past the limit is enough to refuse it
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


def analyze_file(path: str) -> Result:
    """Run every phase on the spec at `path`."""
    diags = Diagnostics()
    result = Result(file=path)
    text = read_source(path, diags, result.sources)
    if text is not None:
        _analyze(text, path, diags, result)
    result.diagnostics = diags.items
    return result


def analyze_text(text: str, file: str = "<string>") -> Result:
    """Run every phase on spec text; a parent named by `extends` is read relative to the
    current directory."""
    diags = Diagnostics()
    result = Result(file=file)
    result.sources[file] = text
    _analyze(text, file, diags, result)
    result.diagnostics = diags.items
    return result


def _analyze(text: str, file: str, diags: Diagnostics, result: Result) -> None:
    merged = _load_merged(text, file, diags, result.sources, chain=[])
    if merged is None or diags.has_errors:
        return
    spec = build_spec(merged, diags)
    if spec is None:
        return
    result.spec = spec
    # The content hash covers the parents too: changing resnet50.res changes resnet101's code.
    network = elaborate(spec, "\n".join(result.sources.values()))
    run_passes(spec, network, diags)
    result.network = network


def _load_merged(
    text: str, file: str, diags: Diagnostics, sources: dict[str, str], chain: list[str]
) -> Merged | None:
    tree = parse(text, file, diags)
    if tree is None:
        return None
    decl = tree.network
    parent = None
    if decl.extends is not None:
        path = parent_path(file, decl.extends)
        key = os.path.realpath(path)
        if key in chain or key == os.path.realpath(file):
            diags.add(
                dx.E_EXTENDS_CYCLE,
                f"`{file}` extends `{path}`, which extends it back",
                decl.extends.span,
                label="this closes a cycle",
                help="a spec cannot extend itself or one of its own children",
            )
            return None
        if len(chain) >= MAX_EXTENDS_DEPTH:
            diags.add(
                dx.E_EXTENDS_DEPTH,
                f"more than {MAX_EXTENDS_DEPTH} specs deep in `extends`",
                decl.extends.span,
                help="extend a spec nearer the root of the chain",
            )
            return None
        if not os.path.isfile(path):
            diags.add(
                dx.E_PARENT_MISSING,
                f"parent spec `{path}` not found",
                decl.extends.span,
                label="no such file",
                help="`extends` names a file relative to this spec's folder",
            )
            return None
        parent_text = read_source(path, diags, sources)
        if parent_text is None:
            return None
        parent = _load_merged(parent_text, path, diags, sources, [*chain, os.path.realpath(file)])
        if parent is None:
            return None
    return merge(decl, parent, diags)


def spec_files(paths: list[str]) -> list[str]:
    """Files named, and every `*.res` under directories named, in a stable order."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                found += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".res")]
            files += found
        else:
            files.append(path)
    return files
