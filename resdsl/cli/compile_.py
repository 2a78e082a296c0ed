"""`resdsl compile`: a standalone PyTorch or Keras module from a spec."""

from __future__ import annotations

import sys

import click

from resdsl.cli._common import (
    EXIT_USAGE,
    FORMATS,
    MAX_PARAMS,
    ROOTS,
    backend_named,
    limits,
    report,
)
from resdsl.driver import analyze_file, backend_diagnostics


@click.command()
@click.argument("path")
@click.option(
    "--backend",
    "-b",
    default="torch",
    show_default=True,
    help="target: torch or keras (or any installed resdsl.backends plugin)",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="write here (atomically) instead of to standard output",
)
@click.option("--format", "fmt", type=FORMATS, default="text", help="how to print diagnostics")
@ROOTS
@MAX_PARAMS
def compile(
    path: str,
    backend: str,
    output: str | None,
    fmt: str,
    roots: tuple[str, ...],
    max_params: int | None,
) -> None:
    """Generate a standalone PyTorch or Keras module from a spec."""
    target = backend_named(backend)
    result = analyze_file(path, roots, **limits(max_params))
    if result.ok:
        result.diagnostics += backend_diagnostics(result.network, target)
    # Code written to stdout keeps stdout to itself: the diagnostics (warnings) go to stderr.
    status = report([result], fmt, sys.stderr if output is None and result.ok else None)
    if not result.ok:
        sys.exit(status)
    code = _emit(target, result.network, path, backend, output)
    if output is None:
        sys.stdout.write(code)
        return
    from resdsl.files import atomic_write

    try:
        atomic_write(output, code)
    except OSError as error:
        click.echo(f"error: cannot write `{output}`: {error.strerror or error}", err=True)
        sys.exit(EXIT_USAGE)


def _emit(target, network, path: str, backend: str, output: str | None) -> str:
    """The module, its docstring naming the command line that wrote it (the spec's path and
    `-o` as given) where the backend takes one (the built-in two do; a plugin may not)."""
    import inspect

    from resdsl.codegen.backends import regenerate_command

    if "command" not in inspect.signature(target.emit).parameters:
        return target.emit(network)
    return target.emit(network, command=regenerate_command(network, backend, path, output))
