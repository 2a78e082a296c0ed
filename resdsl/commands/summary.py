"""`resdsl summary`: a table of a network's stages (and blocks) with their totals."""

from __future__ import annotations

import json
import sys

import click

from .. import report
from ._common import input_option, load_or_exit


@click.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="print the table as JSON")
@click.option("--blocks", is_flag=True, help="a row for every block under its stage")
@click.option("--layers", is_flag=True, help="a row for every layer under its block (and blocks)")
@click.option(
    "--input",
    "input_shape",
    metavar="CxHxW",
    callback=input_option,
    help="another input size than the spec's, e.g. 3x160x160",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="images per batch, for the activation memory",
)
def summary(
    path: str,
    as_json: bool,
    blocks: bool,
    layers: bool,
    input_shape: tuple[int, int, int] | None,
    batch: int,
) -> None:
    """Table of stages: shapes, parameters, MACs, activations, receptive fields.

    Per stage (and with --blocks per block, with --layers per layer): output shape, parameters,
    multiply-accumulates, activation memory for --batch images in float32 (what a forward pass
    writes; training keeps it for the backward pass and doubles it with gradients) and
    receptive field, then the totals, which equal the generated models'.
    """
    network = load_or_exit(path, input_shape)
    if as_json:
        data = report.summary_data(network, blocks, layers, batch)
        click.echo(json.dumps(data, indent=2))
        return
    if sys.stdout.isatty():
        _rich_table(network, blocks, layers, batch)
        return
    click.echo(report.summary_text(network, blocks, layers, batch), nl=False)


def _rich_table(network, blocks: bool, layers: bool, batch: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{network.name}: input {network.input}, {network.classes} classes",
        caption=report.totals_line(network, batch),
    )
    for header in report.HEADERS:
        table.add_column(
            header,
            justify="right" if header in report.RIGHT else "left",
            no_wrap=header != "layers",
        )
    for row, cells in zip(
        report.rows(network, blocks, layers),
        report.table_cells(network, blocks, layers, batch),
        strict=True,
    ):
        table.add_row(*cells, style="dim" if row.level in ("block", "layer") else None)
    Console().print(table)
