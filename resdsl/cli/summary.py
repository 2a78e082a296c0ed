"""`resdsl summary`: a table of a network's stages (and blocks) with their totals."""

from __future__ import annotations

import json
import sys

import click

from resdsl.cli._common import input_option, load_or_exit
from resdsl.tooling import report


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
    help="images per batch: for the activation memory (default 1), for --signal (default 8)",
)
@click.option(
    "--signal",
    is_flag=True,
    help="signal propagation at initialisation, a row per block (PyTorch's generated model)",
)
@click.option(
    "--png",
    type=click.Path(dir_okay=False),
    help="with --signal, plot the four statistics against depth to this file (.png, .svg, .pdf)",
)
def summary(
    path: str,
    as_json: bool,
    blocks: bool,
    layers: bool,
    input_shape: tuple[int, int, int] | None,
    batch: int | None,
    signal: bool,
    png: str | None,
) -> None:
    """Table of stages: shapes, parameters, MACs, activations, receptive fields.

    Per stage (and with --blocks per block, with --layers per layer): output shape, parameters,
    multiply-accumulates, activation memory for --batch images in float32 (what a forward pass
    writes; training keeps it for the backward pass and doubles it with gradients) and
    receptive field, then the totals, which equal the generated models'.

    With --signal: for every block of the freshly initialised PyTorch model, in training mode,
    on a batch of random images, the average channel squared mean and variance of its output,
    its residual branch's variance and the norm of its input's gradient (a mean-squared loss on
    random targets): Brock et al.'s signal-propagation plots.
    """
    if png and not signal:
        raise click.UsageError("--png plots the signal: give --signal too")
    if signal and batch is not None and batch < 2:
        raise click.UsageError("--signal needs --batch 2 or more: a variance over one image")
    network = load_or_exit(path, input_shape)
    if signal:
        _signal(network, batch or 8, as_json, png)
        return
    batch = batch or 1
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


def _signal(network, batch: int, as_json: bool, png: str | None) -> None:
    from resdsl.cli.extras import require
    from resdsl.interop.weight_files import refuse

    require("summary --signal", "torch", "torch")
    if png:
        require("summary --signal --png", "plot", "matplotlib")
        from resdsl.charts.style import format_of

        try:
            format_of(png)
        except ValueError as error:
            refuse(str(error))
    from resdsl.tooling.signal import signal_propagation, signal_text

    rows = signal_propagation(network, batch=batch)
    if png:
        from resdsl.charts.signal import signal_figure
        from resdsl.charts.style import write

        try:
            write(signal_figure({network.name: rows}), png)
        except OSError as error:
            refuse(f"cannot write `{png}`: {error.strerror or error}")
        click.echo(f"wrote {png}", err=True)
    if as_json:
        data = {"network": network.name, "batch": batch, "blocks": [r.as_dict() for r in rows]}
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(signal_text(network, rows), nl=False)
