"""`resdsl graph`: an architecture diagram of a network through Graphviz.

The diagram is built as DOT text here (always available, byte-deterministic); Graphviz's `dot`
program renders it to SVG or PNG when it is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from html import escape

import click

from resdsl.cli._common import load_or_exit
from resdsl.ir import Block, Network
from resdsl.tooling import report

FORMATS = ("svg", "png", "pdf", "dot")

# One colour per shortcut kind, on the edge that carries it.
SHORTCUT_COLORS = {
    "identity": "#7f7f7f",
    "subsample": "#2ca02c",
    "pad": "#ff7f0e",
    "project": "#1f77b4",
    "pool_project": "#9467bd",
}
_FILL = {"stem": "#fde9d9", "stage": "#e3eefa", "block": "#f2f7fd", "head": "#e6f4e6"}


@click.command()
@click.argument("path")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="write here; the suffix picks the format (.svg, .png, .pdf or .dot); "
    "without it, DOT text goes to standard output",
)
@click.option("--blocks", is_flag=True, help="draw every block and its shortcut")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="the format, when the file name's suffix does not say",
)
@click.option(
    "--rankdir",
    type=click.Choice(["TB", "LR"]),
    default="TB",
    show_default=True,
    help="top to bottom, or left to right (wide screens, --blocks)",
)
def graph(path: str, output: str | None, blocks: bool, fmt: str | None, rankdir: str) -> None:
    """Draw a network's architecture with Graphviz.

    Stem, stages (or with --blocks every block and its shortcut), head; every edge labelled
    with the shape it carries. DOT text needs nothing installed; SVG, PNG and PDF need `dot`.
    Without -o, the DOT text goes to standard output.
    """
    network = load_or_exit(path)
    text = to_dot(network, blocks, rankdir)
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    fmt = fmt or os.path.splitext(output)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise click.BadParameter(
            f"cannot tell the format of `{output}`; use .svg, .png, .pdf or .dot, or --format",
            param_hint="--output",
        )
    from resdsl.files import atomic_write

    if fmt == "dot":
        data: bytes | str = text
    else:
        dot = shutil.which("dot")
        if dot is None:
            click.echo(
                "error: Graphviz's `dot` program is not installed, so no "
                f"{fmt.upper()} can be drawn; install Graphviz (https://graphviz.org/download/, "
                f"e.g. `apt-get install graphviz`), or write the DOT text with "
                f"`-o {os.path.splitext(output)[0]}.dot` and render it elsewhere",
                err=True,
            )
            sys.exit(2)
        run = subprocess.run(
            [dot, f"-T{fmt}", *(["-Gdpi=144"] if fmt == "png" else [])],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if run.returncode != 0:
            click.echo(
                f"error: dot failed: {run.stderr.decode(errors='replace').strip()}", err=True
            )
            sys.exit(2)
        data = run.stdout
    try:
        atomic_write(output, data)
    except OSError as error:
        click.echo(f"error: cannot write `{output}`: {error.strerror or error}", err=True)
        sys.exit(2)


# --------------------------------------------------------------------------- DOT


def _label(title: str, *lines: str) -> str:
    """An HTML-like label: a bold title, then smaller lines."""
    rows = [f"<B>{escape(title)}</B>"]
    rows += [f'<FONT POINT-SIZE="10">{escape(line)}</FONT>' for line in lines if line]
    return "<" + "<BR/>".join(rows) + ">"


def _node(name: str, label: str, fill: str, shape: str = "box") -> str:
    return f'  "{name}" [label={label}, shape={shape}, style="rounded,filled", fillcolor="{fill}"];'


def _edge(a: str, b: str, label: str = "", **attrs: str) -> str:
    parts = [f'label="{label}"'] if label else []
    parts += [f'{k}="{v}"' for k, v in attrs.items()]
    return f'  "{a}" -> "{b}"' + (f" [{', '.join(parts)}]" if parts else "") + ";"


def _metrics(params: int, macs: int) -> str:
    return f"{report.human(params)} params, {report.human(macs)} MACs"


def to_dot(network: Network, blocks: bool = False, rankdir: str = "TB") -> str:
    """The diagram as DOT text: top to bottom (or `rankdir` LR, left to right), each edge
    labelled with the shape it carries."""
    lines = [
        f'digraph "{network.name}" {{',
        f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=12, nodesep=0.3, '
        "ranksep=0.25, "
        f"labelloc=t, label=<<B>{escape(network.name)}</B>  "
        f"{escape(_metrics(network.params, network.macs))}, {network.total_blocks} blocks>];",
        '  node [fontname="Helvetica", fontsize=12, margin="0.15,0.06"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555", arrowsize=0.6];',
    ]
    lines.append(_node("input", _label("input", str(network.input)), "#ffffff", "box"))
    stem = network.stem
    stem_lines = [c.strip() for c in report.stem_words(stem).split(",")]
    lines.append(
        _node(
            "stem",
            _label(f"stem ({stem.preset})", *stem_lines, _metrics(stem.params, stem.macs)),
            _FILL["stem"],
        )
    )
    lines.append(_edge("input", "stem", str(network.input)))
    previous, shape = "stem", str(stem.out_shape)
    for index, stage in enumerate(network.stages):
        if not blocks:
            words = report.stage_words(network, index).split("; ")
            lines.append(
                _node(
                    stage.name,
                    _label(stage.name, *words, _metrics(stage.params, stage.macs)),
                    _FILL["stage"],
                )
            )
            lines.append(_edge(previous, stage.name, shape))
            previous, shape = stage.name, str(stage.out_shape)
            continue
        lines.append(f'  subgraph "cluster_{stage.name}" {{')
        lines.append(
            f"    label=<<B>{escape(stage.name)}</B>  "
            f'{escape(_metrics(stage.params, stage.macs))}>; style="rounded,dashed"; '
            'color="#9fb7d3"; labeljust=l;'
        )
        members: list[str] = []
        edges: list[str] = []
        position = 0
        for run in stage.runs:
            for _ in range(run.count):
                name = f"{stage.name}.{position}"
                members.append(_node(name, _block_label(name, run.block), _FILL["block"]))
                edges.append(_edge(previous, name, shape))
                kind = run.block.shortcut.kind
                position += 1
                if kind == "none":  # a plain block: no shortcut, no addition
                    previous, shape = name, str(run.block.out_shape)
                    continue
                add = f"{name}.add"
                members.append(
                    f'  "{add}" [label="+", shape=circle, width=0.25, fixedsize=true, fontsize=11];'
                )
                edges.append(_edge(name, add))
                edges.append(
                    _edge(
                        previous,
                        add,
                        report.shortcut_words(run.block.shortcut),
                        style="dashed",
                        color=SHORTCUT_COLORS[kind],
                        fontcolor=SHORTCUT_COLORS[kind],
                    )
                )
                previous, shape = add, str(run.block.out_shape)
        lines += ["  " + m for m in members]
        lines.append("  }")
        lines += edges
    head = network.head
    lines.append(
        _node(
            "head",
            _label("head", report.head_words(network), _metrics(head.params, head.macs)),
            _FILL["head"],
        )
    )
    lines.append(_edge(previous, "head", shape))
    lines.append(_node("output", _label("output", f"{network.classes} classes"), "#ffffff"))
    lines.append(_edge("head", "output", str(head.classes)))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _block_label(name: str, block: Block) -> str:
    """`layer2.0  se bottleneck` over `256->512 g32 /2: conv1x1 > conv3x3 > conv1x1`: the block's
    type as the summary words it (pre-activation, attention, anti-aliasing included)."""
    convs = " > ".join(_step_words(layer) for layer in block.branch if _step_words(layer))
    words = report.block_words(block).split(", shortcut")[0]
    kind, _, widths = words.rpartition(f" {block.in_channels}->")
    return _label(f"{name}  {kind}", f"{block.in_channels}->{widths}: {convs}")


def _step_words(layer) -> str:
    """A branch's convolution (`conv3x3`), or a composite layer's paths (`conv3x3 x3 of 4
    splits`); "" for the rest."""
    if layer.op == "conv":
        return layer.conv.words().split(" ")[0]
    if layer.op == "branches" and layer.shared:  # split attention: one convolution's slices
        inner = " > ".join(filter(None, (_step_words(x) for x in layer.shared)))
        return f"{inner} into {len(layer.paths)} paths > select"
    if layer.op == "branches" and layer.merge == "select":  # a selective kernel
        inner = " > ".join(filter(None, (_step_words(x) for x in layer.paths[0].layers)))
        reads = " of splits" if layer.split else ""
        return f"{inner} x{len(layer.paths)}{reads} > select"
    if layer.op == "branches":
        inner = " > ".join(filter(None, (_step_words(x) for x in layer.paths[0].layers)))
        return f"{inner} x{len(layer.paths) - 1} of {len(layer.paths)} splits"
    return ""
