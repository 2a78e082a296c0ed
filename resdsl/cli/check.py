"""`resdsl check`: validate specs, in CI too (text, JSON, GitHub annotations); `--fix`
applies the safe suggestions first."""

from __future__ import annotations

import sys

import click

from resdsl.cli._common import (
    EXIT_USAGE,
    FORMATS,
    MAX_PARAMS,
    ROOTS,
    backend_named,
    inputs,
    limits,
    report,
)
from resdsl.driver import analyze_file, backend_diagnostics, refused_result


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=FORMATS,
    default="text",
    show_default=True,
    help="text for people, json for tools, github for workflow annotations",
)
@click.option("-q", "--quiet", is_flag=True, help="print nothing when every spec is fine")
@click.option(
    "--backend",
    "-b",
    "backends",
    multiple=True,
    help="also check that this backend can compile each spec (repeatable)",
)
@click.option(
    "--fix",
    is_flag=True,
    help="apply the safe suggestions to the files (a name that differs only in case, a "
    "misspelling with one close option), then check them",
)
@click.option(
    "--unsafe-fixes",
    is_flag=True,
    help="with --fix, also apply suggestions that guess among several close options",
)
@ROOTS
@MAX_PARAMS
def check(
    paths: tuple[str, ...],
    fmt: str,
    quiet: bool,
    backends: tuple[str, ...],
    fix: bool,
    unsafe_fixes: bool,
    roots: tuple[str, ...],
    max_params: int | None,
) -> None:
    """Validate specs (files, or directories of *.res files)."""
    targets = [backend_named(name) for name in dict.fromkeys(backends)]
    files, refused = inputs(paths)
    if unsafe_fixes and not fix:
        raise click.UsageError("--unsafe-fixes applies with --fix")
    if fix:
        from resdsl.diagnostics.fixes import fix_file

        for path in files:
            try:
                count = fix_file(path, lambda p: analyze_file(p, roots), unsafe_fixes)
            except OSError as error:
                click.echo(f"error: cannot write `{path}`: {error.strerror or error}", err=True)
                sys.exit(EXIT_USAGE)
            if count:
                click.echo(f"fixed {count} problem{'s' * (count != 1)} in {path}", err=True)
    results = [analyze_file(path, roots, **limits(max_params)) for path in files]
    for result in [r for r in results if r.ok]:
        for target in targets:
            result.diagnostics += backend_diagnostics(result.network, target)
    results += [refused_result(path) for path in refused]
    status = report(results, fmt)
    if fmt == "text" and not quiet:
        bad = sum(1 for r in results if not r.ok)
        warnings = sum(1 for r in results for d in r.diagnostics if d.severity == "warning")
        summary = f"checked {len(results)} spec{'s' * (len(results) != 1)}: "
        summary += f"{bad} with errors" if bad else "all valid"
        if warnings:
            summary += f", {warnings} warning{'s' * (warnings != 1)}"
        click.echo(summary, err=True)
    sys.exit(status)
