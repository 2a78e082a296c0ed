"""What the commands share: how diagnostics are printed and the exit status they call for,
the inputs a directory stands for, the backend a name picks, the options several commands take,
and loading a spec or exiting with its diagnostics. Exit status: 0 when all is well, 1 when a
spec has errors, 2 for usage and I/O errors."""

from __future__ import annotations

import sys

import click

from resdsl.diagnostics.core import render_github, render_json, render_text, use_color
from resdsl.driver import Result, analyze_file, scan
from resdsl.ir import Network
from resdsl.language.schema import MAX_INPUT_CHANNELS, MAX_INPUT_SIZE

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
    from resdsl.codegen.backends import available, exists, get_backend

    if not exists(name):
        raise click.BadParameter(
            f"unknown backend `{name}`; installed: {', '.join(sorted(available()))}",
            param_hint="--backend",
        )
    return get_backend(name)


def load_or_exit(path: str, input_shape: tuple[int, int, int] | None = None) -> Network:
    """The elaborated network of `path` (for another input size with `input_shape`); on errors,
    print them and exit 1 (2 for I/O)."""
    result = analyze_file(path, input_shape=input_shape)
    status = report([result], "text")
    if not result.ok:
        sys.exit(status or EXIT_SPEC)
    return result.network


def input_option(ctx, param, value: str | None) -> tuple[int, int, int] | None:
    """Click callback: `CxHxW` to (channels, height, width)."""
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"`{value}` is not CxHxW, e.g. 3x160x160")
    c, h, w = (int(p) for p in parts)
    if c > MAX_INPUT_CHANNELS or max(h, w) > MAX_INPUT_SIZE:
        raise click.BadParameter(
            f"`{value}` is beyond the limits ({MAX_INPUT_CHANNELS} channels, "
            f"{MAX_INPUT_SIZE} pixels a side)"
        )
    return c, h, w
