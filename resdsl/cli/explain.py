"""`resdsl explain [CODE]`: a diagnostic code's page in the terminal (what it means, an example
that triggers it, how to fix it), as rustc's `--explain`; without a code, every code with its
title. The text is the site's page of the code (:mod:`resdsl.tooling.docs`)."""

from __future__ import annotations

import sys

import click

from resdsl.cli._common import EXIT_USAGE


@click.command()
@click.argument("code", required=False)
def explain(code: str | None) -> None:
    """Explain a diagnostic code, e.g. `resdsl explain E201`; without one, list every code."""
    from resdsl.diagnostics.core import CODES
    from resdsl.tooling import docs

    if code is None:
        click.echo(docs.code_list(), nl=False)
        return
    wanted = code.strip().upper()
    if wanted not in CODES:
        import difflib

        near = difflib.get_close_matches(wanted, list(CODES), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]}?)" if near else ""
        click.echo(
            f"error: no diagnostic code `{code}`{hint}; `resdsl explain` lists them", err=True
        )
        raise SystemExit(EXIT_USAGE)
    from rich.console import Console
    from rich.markdown import Markdown

    # Off a terminal rich lays out 80 columns, which would wrap the rendered diagnostic's lines.
    width = None if sys.stdout.isatty() else 120
    Console(highlight=False, width=width).print(Markdown(docs.code_page(wanted, site=False)))
