"""`resdsl lsp`: the language server for editors (see :mod:`resdsl.lsp.protocol`), on stdio.

pygls is imported only here, when the command runs: `resdsl check` never loads it.
"""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--stdio", is_flag=True, help="speak LSP on standard input and output (the only transport)"
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="also allow parents (`extends`) from this folder (repeatable)",
)
def lsp(stdio: bool, roots: tuple[str, ...]) -> None:
    """Run the language server (diagnostics, hover, completion, ...) for editors.

    Speaks the Language Server Protocol on standard input and output; start it from an
    editor, not a terminal. Needs the `lsp` extra: pip install 'resdsl[lsp]'.
    """
    from resdsl.cli.extras import require

    require(
        "lsp", "lsp", "pygls"
    )  # imported by the server when it starts, not by resdsl.lsp.server
    from resdsl.lsp.protocol import serve

    serve(roots)
