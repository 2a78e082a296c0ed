"""`resdsl ir`: the elaborated IR of a spec (or its typed spec, or the JSON Schema) as JSON."""

from __future__ import annotations

import json
import sys

import click

from resdsl.cli._common import FORMATS, report
from resdsl.driver import analyze_file


@click.command()
@click.argument("path", required=False)
@click.option("--schema", is_flag=True, help="print the JSON Schema of the elaborated IR")
@click.option("--spec", "level", flag_value="spec", help="print the typed spec instead")
@click.option("--format", "fmt", type=FORMATS, default="text", help="how to print diagnostics")
def ir(path: str | None, schema: bool, level: str | None, fmt: str) -> None:
    """Print the elaborated IR of a spec as JSON."""
    from resdsl.ir import Network, NetworkSpec

    if schema:
        model = NetworkSpec if level == "spec" else Network
        click.echo(json.dumps(model.model_json_schema(), indent=2, sort_keys=True))
        return
    if path is None:
        raise click.UsageError("give a spec, or --schema")
    result = analyze_file(path)
    status = report([result], fmt)
    if not result.ok:
        sys.exit(status)
    node = result.spec if level == "spec" else result.network
    click.echo(node.model_dump_json(indent=2))
