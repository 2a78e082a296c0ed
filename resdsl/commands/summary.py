"""`resdsl summary`: a table of a network's stages (and blocks) with their totals."""

from __future__ import annotations

import json
import sys

import click

from .. import report
from ._common import load_or_exit


@click.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="print the table as JSON")
@click.option("--blocks", is_flag=True, help="a row for every block under its stage")
def summary(path: str, as_json: bool, blocks: bool) -> None:
    """Table of stages: shapes, parameters, MACs, receptive fields.

    Per stage (and with --blocks per block): output shape, parameters, multiply-accumulates
    and receptive field, then the totals, which equal the generated models'.
    """
    network = load_or_exit(path)
    if as_json:
        click.echo(json.dumps(report.summary_data(network, blocks), indent=2))
        return
    if sys.stdout.isatty():
        _rich_table(network, blocks)
        return
    click.echo(report.summary_text(network, blocks), nl=False)


def _rich_table(network, blocks: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{network.name}: input {network.input}, {network.classes} classes",
        caption=report.totals_line(network),
    )
    for header in report.HEADERS:
        table.add_column(
            header,
            justify="right" if header in report.RIGHT else "left",
            no_wrap=header != "layers",
        )
    for row, cells in zip(
        report.rows(network, blocks), report.table_cells(network, blocks), strict=True
    ):
        table.add_row(*cells, style="dim" if row.level == "block" else None)
    Console().print(table)
