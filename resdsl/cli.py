"""The `resdsl` command line.

Exit status: 0 when all is well, 1 when a spec has errors, 2 for usage and I/O errors.
Heavy frameworks are imported only by the commands that run models, never by `check`,
`ir` or `compile`.
"""

from __future__ import annotations

import json
import os
import sys

import click

from . import __version__
from .diagnostics import render_github, render_json, render_text, use_color
from .driver import Result, analyze_file, backend_diagnostics, refused_result, scan

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


# Commands that need heavy imports live in their own modules and load only when invoked, so
# `resdsl check` stays fast: name -> "module:attribute" under resdsl.commands.
LAZY_COMMANDS = {
    "port-weights": "port_weights:port_weights",
    "train": "train:train",
    "compare": "compare:compare",
    "summary": "summary:summary",
    "diff": "diff:diff",
    "graph": "graph:graph",
    "fmt": "fmt:fmt",
    "export": "export:export",
    "import": "import_:import_",
    "lsp": "lsp:lsp",
    "eval": "evaluate:evaluate",
    "predict": "evaluate:predict",
}


class _Group(click.Group):
    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self._lazy()])

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in self._lazy():
            import importlib

            module, _, attribute = LAZY_COMMANDS[name].partition(":")
            command = getattr(importlib.import_module(f"resdsl.commands.{module}"), attribute)
        return command

    @staticmethod
    def _lazy() -> list[str]:
        import importlib.util

        return [
            name
            for name, target in LAZY_COMMANDS.items()
            if importlib.util.find_spec(f"resdsl.commands.{target.partition(':')[0]}")
        ]

    def main(self, *args, **kwargs):
        # TensorFlow's INFO and WARNING lines are noise to a command's user unless asked for;
        # a value the user set wins. Set before any command can import TensorFlow (see
        # resdsl.tf_startup for the lines it prints before reading the variable).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # click exits 2 on usage errors already; keep tracebacks away from users on I/O errors.
        try:
            return super().main(*args, **kwargs)
        except BrokenPipeError:  # `resdsl ir x | head`
            sys.stderr.close()
            sys.exit(EXIT_OK)


_EPILOG = """\b
Shell completion (commands, options, file names):
  bash  eval "$(_RESDSL_COMPLETE=bash_source resdsl)"   # in ~/.bashrc
  zsh   eval "$(_RESDSL_COMPLETE=zsh_source resdsl)"    # in ~/.zshrc
  fish  _RESDSL_COMPLETE=fish_source resdsl | source    # in ~/.config/fish/completions/resdsl.fish
"""


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(__version__, prog_name="resdsl")
def main() -> None:
    """Compile .res specs of residual networks to PyTorch and Keras 3 code."""


FORMATS = click.Choice(["text", "json", "github"])


def _report(results: list[Result], fmt: str, stream=None) -> int:
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


def _inputs(paths: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(spec files, links refused): see :func:`resdsl.driver.scan`."""
    files, refused = scan(list(paths))
    if not files and not refused:
        raise click.UsageError("no .res files found in " + ", ".join(paths))
    return files, refused


def _limits(max_params: int | None) -> dict:
    return {} if max_params is None else {"max_params": max_params}


@main.command()
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
    targets = [_backend(name) for name in dict.fromkeys(backends)]
    files, refused = _inputs(paths)
    if unsafe_fixes and not fix:
        raise click.UsageError("--unsafe-fixes applies with --fix")
    if fix:
        from .fixes import fix_file

        for path in files:
            try:
                count = fix_file(path, lambda p: analyze_file(p, roots), unsafe_fixes)
            except OSError as error:
                click.echo(f"error: cannot write `{path}`: {error.strerror or error}", err=True)
                sys.exit(EXIT_USAGE)
            if count:
                click.echo(f"fixed {count} problem{'s' * (count != 1)} in {path}", err=True)
    results = [analyze_file(path, roots, **_limits(max_params)) for path in files]
    for result in [r for r in results if r.ok]:
        for target in targets:
            result.diagnostics += backend_diagnostics(result.network, target)
    results += [refused_result(path) for path in refused]
    status = _report(results, fmt)
    if fmt == "text" and not quiet:
        bad = sum(1 for r in results if not r.ok)
        warnings = sum(1 for r in results for d in r.diagnostics if d.severity == "warning")
        summary = f"checked {len(results)} spec{'s' * (len(results) != 1)}: "
        summary += f"{bad} with errors" if bad else "all valid"
        if warnings:
            summary += f", {warnings} warning{'s' * (warnings != 1)}"
        click.echo(summary, err=True)
    sys.exit(status)


@main.command()
@click.argument("path", required=False)
@click.option("--schema", is_flag=True, help="print the JSON Schema of the elaborated IR")
@click.option("--spec", "level", flag_value="spec", help="print the typed spec instead")
@click.option("--format", "fmt", type=FORMATS, default="text", help="how to print diagnostics")
def ir(path: str | None, schema: bool, level: str | None, fmt: str) -> None:
    """Print the elaborated IR of a spec as JSON."""
    from .ir import Network, NetworkSpec

    if schema:
        model = NetworkSpec if level == "spec" else Network
        click.echo(json.dumps(model.model_json_schema(), indent=2, sort_keys=True))
        return
    if path is None:
        raise click.UsageError("give a spec, or --schema")
    result = analyze_file(path)
    status = _report([result], fmt)
    if not result.ok:
        sys.exit(status)
    node = result.spec if level == "spec" else result.network
    click.echo(node.model_dump_json(indent=2))


def _backend(name: str):
    """The backend called `name`; a usage error names the installed ones."""
    from .backend import available, exists, get_backend

    if not exists(name):
        raise click.BadParameter(
            f"unknown backend `{name}`; installed: {', '.join(sorted(available()))}",
            param_hint="--backend",
        )
    return get_backend(name)


@main.command()
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
    target = _backend(backend)
    result = analyze_file(path, roots, **_limits(max_params))
    if result.ok:
        result.diagnostics += backend_diagnostics(result.network, target)
    # Code written to stdout keeps stdout to itself: the diagnostics (warnings) go to stderr.
    status = _report([result], fmt, sys.stderr if output is None and result.ok else None)
    if not result.ok:
        sys.exit(status)
    code = target.emit(result.network)
    if output is None:
        sys.stdout.write(code)
        return
    from .files import atomic_write

    try:
        atomic_write(output, code)
    except OSError as error:
        click.echo(f"error: cannot write `{output}`: {error.strerror or error}", err=True)
        sys.exit(EXIT_USAGE)


def _entry() -> None:  # pragma: no cover - console-script shim
    main()


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
