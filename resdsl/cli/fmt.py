"""`resdsl fmt`: rewrite specs in the canonical layout (see :mod:`resdsl.tooling.formatter`)."""

from __future__ import annotations

import difflib
import sys

import click

from resdsl.cli._common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, inputs
from resdsl.diagnostics.core import render_text, use_color
from resdsl.files import atomic_write
from resdsl.language.parser import read_source


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--check", is_flag=True, help="change nothing; show a diff and exit 1 if any file would change"
)
def fmt(paths: tuple[str, ...], check: bool) -> None:
    """Rewrite specs in the canonical layout.

    PATHS are spec files, or folders searched for *.res files.

    Files with syntax errors are reported and left untouched. Exit status: 0 when every file
    is (or now is) formatted, 1 when `--check` found one to change or a file has errors.
    """
    from resdsl.diagnostics.core import Diagnostics
    from resdsl.tooling.formatter import FormatError, format_text

    status = EXIT_OK
    changed = 0
    files, refused = inputs(paths)
    for path in refused:
        click.echo(f"error: `{path}` links to a file outside the folder; not rewritten", err=True)
        status = EXIT_USAGE
    for path in files:
        diags = Diagnostics()
        sources: dict[str, str] = {}
        text = read_source(path, diags, sources)
        if text is None:
            sys.stderr.write(render_text(diags, sources, color=use_color(sys.stderr)))
            status = max(status, EXIT_USAGE if any(d.code == "E001" for d in diags) else EXIT_SPEC)
            continue
        try:
            formatted = format_text(text, path)
        except FormatError as error:
            sys.stderr.write(
                render_text(error.diagnostics, {path: text}, color=use_color(sys.stderr))
            )
            status = max(status, EXIT_SPEC)
            continue
        if formatted == text:
            continue
        changed += 1
        if check:
            diff = difflib.unified_diff(
                text.splitlines(keepends=True),
                formatted.splitlines(keepends=True),
                fromfile=path,
                tofile=f"{path} (formatted)",
            )
            sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in diff)
            status = max(status, EXIT_SPEC)
            continue
        try:
            atomic_write(path, formatted)
        except OSError as error:
            click.echo(f"error: cannot write `{path}`: {error.strerror or error}", err=True)
            status = EXIT_USAGE
    verb = "would reformat" if check else "reformatted"
    click.echo(f"{verb} {changed} of {len(files)} spec{'s' * (len(files) != 1)}", err=True)
    sys.exit(status)
