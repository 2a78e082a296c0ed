"""Tables of an elaborated network, shared by `resdsl summary` and `resdsl diff`.

Everything here reads the IR only: shapes, parameters and multiply-accumulates are the
elaborator's, so the totals printed are the totals the generated models have. The one thing
computed here is the receptive field: the side, in input pixels, of the largest window any
output pixel of a layer can see (the longest path through a block, which is its residual
branch except where a shortcut pools over a wider window).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from .ir import (
    Block,
    BlurPoolLayer,
    Conv,
    ConvLayer,
    Network,
    PadChannelsLayer,
    PoolLayer,
    Shortcut,
    Stem,
)


@dataclass(frozen=True)
class Row:
    """One line of a summary table."""

    level: str  # "stem", "stage", "block" or "head"
    name: str
    layers: str  # what the row holds, in words
    output: str  # CxHxW, or the class count for the head
    params: int
    macs: int
    receptive_field: int  # input pixels a side; the head sees the whole input

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Field:
    """Receptive field and the input-pixel distance between adjacent outputs (the jump)."""

    size: int = 1
    jump: int = 1

    def conv(self, conv: Conv) -> _Field:
        reach = conv.dilation * (conv.kernel - 1)
        return _Field(self.size + reach * self.jump, self.jump * conv.stride)

    def window(self, kernel: int, stride: int) -> _Field:
        return _Field(self.size + (kernel - 1) * self.jump, self.jump * stride)


def _through(layers, field: _Field) -> _Field:
    """The field after `layers`: convolutions, pools and blur pools widen it."""
    for layer in layers:
        if isinstance(layer, PoolLayer):
            field = field.window(layer.pool.kernel, layer.pool.stride)
        elif isinstance(layer, BlurPoolLayer):
            field = field.window(layer.size, layer.stride)
        elif isinstance(layer, ConvLayer):
            field = field.conv(layer.conv)
    return field


def _stem_field(stem: Stem) -> _Field:
    return _through(stem.layers, _Field())


def _block_field(block: Block, field: _Field) -> _Field:
    branch = _through((*block.pre, *block.branch), field)
    shortcut = _through(block.shortcut.layers, field)
    return _Field(max(branch.size, shortcut.size), branch.jump)


# --------------------------------------------------------------------------- words


def conv_words(conv: Conv) -> str:
    text = f"conv{conv.kernel}x{conv.kernel}"
    if conv.stride > 1:
        text += f"/{conv.stride}"
    text += f" {conv.out_channels}"
    if conv.groups > 1:
        text += f" g{conv.groups}"
    if conv.dilation > 1:
        text += f" d{conv.dilation}"
    return text


def stem_words(stem: Stem) -> str:
    parts = []
    for layer in stem.layers:
        if isinstance(layer, ConvLayer):
            parts.append(conv_words(layer.conv))
        elif isinstance(layer, PoolLayer):
            pool = layer.pool
            parts.append(f"{pool.kind}pool{pool.kernel}x{pool.kernel}/{pool.stride}")
        elif isinstance(layer, BlurPoolLayer):
            parts.append(f"blur{layer.size}x{layer.size}/{layer.stride}")
    return ", ".join(parts)


def _type_words(blocks: list[Block]) -> str:
    """`bottleneck`, `se bottleneck`, `aa(blur) eca basic` ...: what `blocks` are."""
    aa = sorted({f"aa({b.anti_alias})" for b in blocks if b.anti_alias != "none"})
    attention = sorted({b.attention for b in blocks if b.attention != "none"})
    return " ".join([*aa, *attention, "/".join(sorted({b.type_name for b in blocks}))])


def shortcut_words(shortcut: Shortcut) -> str:
    """`project`, `pad(+16)`, `pool_project` ... as short as a table cell allows."""
    if shortcut.kind == "pad":
        pad = next(layer for layer in shortcut.layers if isinstance(layer, PadChannelsLayer))
        pool = shortcut.pool
        via = "" if pool is None else ("avgpool, " if pool.kind == "avg" else "subsample, ")
        return f"pad({via}+{pad.before + pad.after})"
    return shortcut.kind


def block_words(block: Block) -> str:
    text = f"{_type_words([block])} {block.in_channels}->{block.out_channels}"
    if block.stride > 1:
        text += f" /{block.stride}"
    if block.groups > 1:
        text += f" g{block.groups}"
    return f"{text}, shortcut {shortcut_words(block.shortcut)}"


def stage_shortcuts(network: Network, stage_index: int) -> str:
    """The shortcut kinds of a stage's blocks with counts, in order: `project, identity x2`."""
    counts: dict[str, int] = {}
    for run in network.stages[stage_index].runs:
        word = shortcut_words(run.block.shortcut)
        counts[word] = counts.get(word, 0) + run.count
    return ", ".join(word if n == 1 else f"{word} x{n}" for word, n in counts.items())


def stage_words(network: Network, stage_index: int) -> str:
    stage = network.stages[stage_index]
    stride = max(r.block.stride for r in stage.runs)
    kinds = _type_words([r.block for r in stage.runs])
    text = f"{stage.blocks} x {kinds} {stage.out_shape.channels}"
    if stride > 1:
        text += f" /{stride}"
    return f"{text}; shortcut {stage_shortcuts(network, stage_index)}"


def stage_block_words(network: Network, stage_index: int) -> str:
    """What a stage's blocks are: `bottleneck`, `aa(blur) se bottleneck` ..."""
    return _type_words([run.block for run in network.stages[stage_index].runs])


def head_words(network: Network) -> str:
    head = network.head
    parts = ["norm, " if head.norm else "", "avgpool, "]
    if head.dropout:
        parts.append(f"dropout {head.dropout:g}, ")
    parts.append(f"fc {head.in_features}->{head.classes}")
    return "".join(parts)


# --------------------------------------------------------------------------- rows


def rows(network: Network, blocks: bool = False) -> list[Row]:
    """The stem, each stage (and with `blocks` each block after its stage), and the head."""
    out: list[Row] = []
    field = _stem_field(network.stem)
    stem = network.stem
    out.append(
        Row(
            "stem",
            "stem",
            stem_words(stem),
            str(stem.out_shape),
            stem.params,
            stem.macs,
            field.size,
        )
    )
    block_iter = _blocks_by_stage(network)
    for index, stage in enumerate(network.stages):
        block_rows = []
        for position, block in next(block_iter):
            field = _block_field(block, field)
            block_rows.append(
                Row(
                    "block",
                    f"{stage.name}.{position}",
                    block_words(block),
                    str(block.out_shape),
                    block.params,
                    block.macs,
                    field.size,
                )
            )
        out.append(
            Row(
                "stage",
                stage.name,
                stage_words(network, index),
                str(stage.out_shape),
                stage.params,
                stage.macs,
                field.size,
            )
        )
        if blocks:
            out.extend(block_rows)
    head = network.head
    full = max(network.input.height, network.input.width)
    out.append(
        Row(
            "head",
            "head",
            head_words(network),
            str(head.classes),
            head.params,
            head.macs,
            max(field.size, full),
        )
    )
    return out


def _blocks_by_stage(network: Network) -> Iterator[list[tuple[int, Block]]]:
    by_stage: dict[str, list[tuple[int, Block]]] = {s.name: [] for s in network.stages}
    for _, stage, position, block in network.blocks():
        by_stage[stage.name].append((position, block))
    for stage in network.stages:
        yield by_stage[stage.name]


def totals(network: Network) -> dict[str, int]:
    return {
        "params": network.params,
        "norm_stats": network.norm_stats,
        "macs": network.macs,
        "blocks": network.total_blocks,
    }


def summary_data(network: Network, blocks: bool = False) -> dict:
    """What `resdsl summary --json` prints: plain data, stable key order."""
    return {
        "network": network.name,
        "source": network.source.file,
        "input": str(network.input),
        "classes": network.classes,
        "rows": [r.as_dict() for r in rows(network, blocks)],
        "totals": totals(network),
    }


# --------------------------------------------------------------------------- text


def human(n: float, unit: str = "") -> str:
    """1234567 -> `1.23M`: three significant digits, for the totals line."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{suffix}{unit}"
    return f"{n:g}{unit}"


def signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


HEADERS = ("layer", "layers", "output", "params", "MACs", "RF")
RIGHT = {"params", "MACs", "RF"}


def table_cells(network: Network, blocks: bool = False) -> list[tuple[str, ...]]:
    cells = []
    for row in rows(network, blocks):
        name = f"  {row.name}" if row.level == "block" else row.name
        cells.append(
            (
                name,
                row.layers,
                row.output,
                f"{row.params:,}",
                f"{row.macs:,}",
                str(row.receptive_field),
            )
        )
    return cells


def totals_line(network: Network) -> str:
    return (
        f"total: {network.params:,} parameters ({human(network.params)}), "
        f"{network.macs:,} MACs ({human(network.macs)}), {network.total_blocks} blocks, "
        f"{network.norm_stats:,} norm statistics"
    )


def plain_table(
    headers: tuple[str, ...], cells: list[tuple[str, ...]], right: set[str] = RIGHT
) -> str:
    """Columns aligned with spaces, numbers to the right; no trailing spaces."""
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(values) -> str:
        parts = [
            v.rjust(w) if h in right else v.ljust(w)
            for v, w, h in zip(values, widths, headers, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(c) for c in cells)]) + "\n"


def summary_text(network: Network, blocks: bool = False) -> str:
    title = f"{network.name}: input {network.input}, {network.classes} classes"
    return (
        f"{title}\n\n{plain_table(HEADERS, table_cells(network, blocks))}\n{totals_line(network)}\n"
    )
