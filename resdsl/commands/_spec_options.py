"""What the spec commands share: how diagnostics are printed and what their exit status is,
the inputs a directory stands for, the backend a name picks, and the options they have in
common. Exit status: 0 when all is well, 1 when a spec has errors, 2 for usage and I/O
errors."""

from __future__ import annotations

import sys

import click

from ..diagnostics import render_github, render_json, render_text, use_color
from ..driver import Result, scan

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2

# Where `extends` may find parents besides the folder of the spec named.
ROOTS = click.option(
    "--root",
    "roots",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="also allow parents (`extends`) from this folder (repeatable)",
)
MAX_PARAMS = click.option(
    "--max-params",
    type=click.IntRange(min=1),
    default=None,
    help="refuse networks with more parameters (default 10,000,000,000)",
)


FORMATS = click.Choice(["text", "json", "github"])


def report(results: list[Result], fmt: str, stream=None) -> int:
    """Print every diagnostic of `results` in `fmt`, to `stream` if given, else JSON and GitHub
    annotations to stdout and text to stderr; the exit status they call for."""
    diagnostics = [d for r in results for d in r.diagnostics]
    sources: dict[str, str] = {}
    for r in results:
        sources.update(r.sources)
    if fmt == "json":
        (stream or sys.stdout).write(render_json(diagnostics))
    elif fmt == "github":
        (stream or sys.stdout).write(render_github(diagnostics))
    else:
        stream = stream or sys.stderr
        stream.write(render_text(diagnostics, sources, color=use_color(stream)))
    if any(d.code == "E001" for d in diagnostics):
        return EXIT_USAGE
    if any(d.severity == "error" for d in diagnostics):
        return EXIT_SPEC
    return EXIT_OK


def inputs(paths: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(spec files, links refused): see :func:`resdsl.driver.scan`."""
    files, refused = scan(list(paths))
    if not files and not refused:
        raise click.UsageError("no .res files found in " + ", ".join(paths))
    return files, refused


def limits(max_params: int | None) -> dict:
    return {} if max_params is None else {"max_params": max_params}


def backend_named(name: str):
    """The backend called `name`; a usage error names the installed ones."""
    from ..backend import available, exists, get_backend

    if not exists(name):
        raise click.BadParameter(
            f"unknown backend `{name}`; installed: {', '.join(sorted(available()))}",
            param_hint="--backend",
        )
    return get_backend(name)
