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

from resdsl.elaboration.elaborate import walk
from resdsl.ir import (
    Block,
    Network,
    PadChannelsLayer,
    Shape,
    Shortcut,
    Stem,
)


@dataclass(frozen=True)
class Row:
    """One line of a summary table."""

    level: str  # "stem", "stage", "block", "layer" or "head"
    name: str
    layers: str  # what the row holds, in words
    output: str  # CxHxW, or the class count for the head
    params: int
    macs: int
    receptive_field: int  # input pixels a side; the head sees the whole input
    # Values every layer of the row outputs, for one image: the activations a forward pass
    # writes and training keeps for the backward pass (torchinfo's convention).
    activations: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Field:
    """Receptive field and the input-pixel distance between adjacent outputs (the jump)."""

    size: int = 1
    jump: int = 1

    def slide(self, reach: int, stride: int) -> _Field:
        """The field after a window that sees `reach` pixels past its first, at `stride`."""
        return _Field(self.size + reach * self.jump, self.jump * stride)


def _through(layers, field: _Field) -> _Field:
    """The field after `layers`: those that slide a window (convolutions, pools) widen it."""
    for layer in layers:
        window = layer.window()
        if window is not None:
            field = field.slide(*window)
    return field


def _stem_field(stem: Stem) -> _Field:
    return _through(stem.layers, _Field())


def _block_field(block: Block, field: _Field) -> _Field:
    branch = _through((*block.pre, *block.branch), field)
    shortcut = _through(block.shortcut.layers, field)
    return _Field(max(branch.size, shortcut.size), branch.jump)


# --------------------------------------------------------------------------- words


def stem_words(stem: Stem) -> str:
    """The stem's convolutions and pools: `conv7x7/2 64, maxpool3x3/2`."""
    return ", ".join(layer.words() for layer in stem.layers if layer.window() is not None)


def _type_words(blocks: list[Block]) -> str:
    """`bottleneck`, `se bottleneck`, `aa(blur) eca basic` ...: what `blocks` are."""
    aa = sorted({f"aa({b.anti_alias})" for b in blocks if b.anti_alias != "none"})
    attention = sorted({b.attention for b in blocks if b.attention != "none"})
    return " ".join([*aa, *attention, "/".join(sorted({b.type_name for b in blocks}))])


def shortcut_words(shortcut: Shortcut) -> str:
    """`identity`, `projection`, `avgpool+projection` (ResNet-D), `pad(+16)`, `subsample`: the
    papers' words, as short as a table cell allows."""
    if shortcut.kind == "pad":
        pad = next(layer for layer in shortcut.layers if isinstance(layer, PadChannelsLayer))
        pool = shortcut.pool
        via = "" if pool is None else ("avgpool, " if pool.kind == "avg" else "subsample, ")
        return f"pad({via}+{pad.before + pad.after})"
    if shortcut.kind in ("project", "pool_project"):
        kernel = shortcut.conv.kernel
        words = "projection" + (f" {kernel}x{kernel}" if kernel > 1 else "")
        return ("avgpool+" if shortcut.kind == "pool_project" else "") + words
    return shortcut.kind


def block_words(block: Block) -> str:
    text = f"{_type_words([block])} {block.in_channels}->{block.out_channels}"
    if block.groups > 1:
        text += f" g{block.groups}"
    if block.dilation > 1:
        text += f" d{block.dilation}"
    if block.stride > 1:
        text += f" /{block.stride}"
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
    groups = max(r.block.groups for r in stage.runs)
    if groups > 1:
        text += f" g{groups}"
    if stage.dilation > 1:
        text += f" d{stage.dilation}"
    if stride > 1:
        text += f" /{stride}"
    return f"{text}; shortcut {stage_shortcuts(network, stage_index)}"


def stage_block_words(network: Network, stage_index: int) -> str:
    """What a stage's blocks are: `bottleneck`, `aa(blur) se bottleneck` ..."""
    return _type_words([run.block for run in network.stages[stage_index].runs])


def head_words(network: Network) -> str:
    head = network.head
    conv = next((x.conv for x in head.layers if x.op == "conv"), None)
    before = f"conv1x1 {conv.out_channels}, " if conv is not None else ""
    parts = ["norm, " if head.norm else "", before, "avgpool, "]
    if head.dropout:
        parts.append(f"dropout {head.dropout:g}, ")
    parts.append(f"fc {head.in_features}->{head.classes}")
    return "".join(parts)


# --------------------------------------------------------------------------- rows


def _numel(shape: Shape) -> int:
    return shape.channels * shape.height * shape.width


def _layer_rows(prefix: str, layers, shape: Shape, network: Network, field: int) -> list[Row]:
    """A row per layer of `layers` applied to `shape` (the shortcut's layers from the block's
    input are given separately)."""
    out = []
    for layer in layers:
        after, macs, params, _ = walk([layer], shape)
        out.append(
            Row(
                "layer",
                f"{prefix}{layer.torch}",
                layer.words(network.conventions.activation),
                str(after),
                params,
                macs,
                field,
                _numel(after),
            )
        )
        shape = after
    return out


def _activations(layers, shape: Shape) -> int:
    total = 0
    for layer in layers:
        shape = walk([layer], shape)[0]
        total += _numel(shape)
    return total


def _block_activations(block: Block) -> int:
    branch = _activations((*block.pre, *block.branch), block.in_shape)
    shortcut = _activations(block.shortcut.layers, block.in_shape)
    addition = _numel(block.out_shape)
    return branch + shortcut + addition + _activations(block.post, block.out_shape)


def _head_activations(network: Network) -> int:
    head, last = network.head, network.stages[-1].out_shape
    normed = 2 * _numel(last) if head.norm else 0  # the norm and its activation
    return normed + head.in_features + head.classes  # then the pooled features, the logits


def rows(network: Network, blocks: bool = False, layers: bool = False) -> list[Row]:
    """The stem, each stage (and with `blocks` each block after its stage, and with `layers`
    each layer after its block), and the head."""
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
            _activations(stem.layers, network.input),
        )
    )
    if layers:
        out += _layer_rows("", stem.layers, network.input, network, field.size)
    block_iter = _blocks_by_stage(network)
    for index, stage in enumerate(network.stages):
        block_rows = []
        stage_activations = 0
        for position, block in next(block_iter):
            field = _block_field(block, field)
            activations = _block_activations(block)
            stage_activations += activations
            block_rows.append(
                Row(
                    "block",
                    f"{stage.name}.{position}",
                    block_words(block),
                    str(block.out_shape),
                    block.params,
                    block.macs,
                    field.size,
                    activations,
                )
            )
            if layers:
                prefix = f"{stage.name}.{position}."
                branch = (*block.pre, *block.branch)
                block_rows += _layer_rows(prefix, branch, block.in_shape, network, field.size)
                block_rows += _layer_rows(
                    prefix, block.shortcut.layers, block.in_shape, network, field.size
                )
                block_rows += _layer_rows(prefix, block.post, block.out_shape, network, field.size)
        out.append(
            Row(
                "stage",
                stage.name,
                stage_words(network, index),
                str(stage.out_shape),
                stage.params,
                stage.macs,
                field.size,
                stage_activations,
            )
        )
        if blocks or layers:
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
            _head_activations(network),
        )
    )
    if layers:
        out += _layer_rows(
            "", head.layers, network.stages[-1].out_shape, network, out[-1].receptive_field
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


def summary_data(
    network: Network, blocks: bool = False, layers: bool = False, batch: int = 1
) -> dict:
    """What `resdsl summary --json` prints: plain data, stable key order. Activations are
    values per image; `activation_bytes` are for `batch` in float32, forward and
    forward-and-backward."""
    values = activations(network)
    return {
        "network": network.name,
        "source": network.source.file,
        "input": str(network.input),
        "classes": network.classes,
        "rows": [r.as_dict() for r in rows(network, blocks, layers)],
        "totals": totals(network),
        "batch": batch,
        "activation_bytes": {
            "forward": values * batch * FLOAT32,
            "forward_backward": 2 * values * batch * FLOAT32,
        },
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


HEADERS = ("layer", "layers", "output", "params", "MACs", "act(MiB)", "RF")
RIGHT = {"params", "MACs", "act(MiB)", "RF"}
FLOAT32 = 4  # bytes a value


def megabytes(values: int, batch: int) -> str:
    """`values` float32 values per image, times `batch`, in MiB (two decimals)."""
    return f"{values * batch * FLOAT32 / 2**20:,.2f}"


def table_cells(
    network: Network, blocks: bool = False, layers: bool = False, batch: int = 1
) -> list[tuple[str, ...]]:
    cells = []
    indent = {"block": "  ", "layer": "    "}
    for row in rows(network, blocks, layers):
        cells.append(
            (
                indent.get(row.level, "") + row.name,
                row.layers,
                row.output,
                f"{row.params:,}",
                f"{row.macs:,}",
                megabytes(row.activations, batch),
                str(row.receptive_field),
            )
        )
    return cells


def activations(network: Network) -> int:
    """Values every layer of the network outputs, for one image (see :class:`Row`)."""
    return sum(row.activations for row in rows(network) if row.level != "block")


def totals_line(network: Network, batch: int = 1) -> str:
    values = activations(network)
    return (
        f"total: {network.params:,} parameters ({human(network.params)}), "
        f"{network.macs:,} MACs ({human(network.macs)}), {network.total_blocks} blocks, "
        f"{network.norm_stats:,} norm statistics\n"
        f"activations, batch {batch}, float32: {megabytes(values, batch)} MiB forward, "
        f"{megabytes(2 * values, batch)} MiB forward and backward (with their gradients)"
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


def summary_text(
    network: Network, blocks: bool = False, layers: bool = False, batch: int = 1
) -> str:
    title = f"{network.name}: input {network.input}, {network.classes} classes"
    table = plain_table(HEADERS, table_cells(network, blocks, layers, batch))
    return f"{title}\n\n{table}\n{totals_line(network, batch)}\n"
