"""`resdsl diff A.res B.res`: what changed between two networks, stage by stage."""

from __future__ import annotations

import json
import sys

import click

from resdsl.cli._common import load_or_exit
from resdsl.ir import Network
from resdsl.tooling import report


@click.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
@click.option(
    "--exit-code",
    is_flag=True,
    help="exit 1 when the networks differ, 0 when they do not (as `git diff --exit-code`)",
)
def diff(a: str, b: str, as_json: bool, exit_code: bool) -> None:
    """Compare two specs stage by stage, with total deltas.

    Network-level settings that differ, each stage side by side (blocks, widths, strides,
    shortcuts, parameters, MACs; changed rows starred), then the totals with their deltas.
    """
    left, right = load_or_exit(a), load_or_exit(b)
    data = compare(left, right)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render(data, a, b), nl=False)
    if exit_code and differs(data):
        sys.exit(1)


def differs(data: dict) -> bool:
    """Whether a comparison found any difference."""
    return bool(
        data["network"]
        or any(stage["changed"] for stage in data["stages"])
        or any(total["delta"] for total in data["totals"].values())
    )


def _network_fields(network: Network) -> dict[str, str]:
    c = network.conventions
    return {
        "input": str(network.input),
        "classes": str(network.classes),
        "stem": f"{network.stem.preset}: {report.stem_words(network.stem)}"
        + ("" if network.stem.norm else " (no norm)"),
        "head": report.head_words(network),
        "conv_bias": c.conv_bias,
        "norm": {
            "batch": f"batch, eps {c.norm_eps:g}, momentum {c.norm_momentum:g}",
            "group": f"group, {c.norm_groups} groups, eps {c.norm_eps:g}"
            if c.norm_group_size is None
            else f"group, groups of {c.norm_group_size}, eps {c.norm_eps:g}",
            "evonorm_s0": f"EvoNorm-S0, {c.norm_groups} groups, eps {c.norm_eps:g}",
            "frn": f"FRN with TLU, eps {c.norm_eps:g}",
            "none": "none",
        }[c.norm],
        "conv": "plain" if c.conv_eps is None else f"weight-standardized, eps {c.conv_eps:g}",
        "activation": c.activation,
        "init": c.init + (", zero last norm" if c.zero_last_norm else ""),
        "stochastic_depth": f"{c.stochastic_depth:g}",
    }


def _stage_fields(network: Network, index: int) -> dict:
    stage = network.stages[index]
    first = stage.runs[0].block
    return {
        "blocks": stage.blocks,
        "block": report.stage_block_words(network, index),
        "width": stage.out_shape.channels,
        "inner": first.mid_channels,  # a bottleneck's width inside (a basic block's: the width)
        "groups": max(r.block.groups for r in stage.runs),
        "dilation": stage.dilation,
        "stride": max(r.block.stride for r in stage.runs),
        "shortcut": report.stage_shortcuts(network, index),
        "output": str(stage.out_shape),
        "params": stage.params,
        "macs": stage.macs,
    }


def compare(left: Network, right: Network) -> dict:
    """Plain data: changed network fields, stages paired by name (then by position), totals."""
    fa, fb = _network_fields(left), _network_fields(right)
    network = [{"field": k, "a": fa[k], "b": fb[k]} for k in fa if fa[k] != fb[k]]
    names_a = [s.name for s in left.stages]
    names_b = [s.name for s in right.stages]
    pairs: list[tuple[int | None, int | None]]
    if set(names_a) & set(names_b):
        order = names_a + [n for n in names_b if n not in names_a]
        pairs = [
            (names_a.index(n) if n in names_a else None, names_b.index(n) if n in names_b else None)
            for n in order
        ]
    else:  # different naming conventions (layer1 / conv2): pair by position
        pairs = [
            (i if i < len(names_a) else None, i if i < len(names_b) else None)
            for i in range(max(len(names_a), len(names_b)))
        ]
    stages = []
    for ia, ib in pairs:
        sa = _stage_fields(left, ia) if ia is not None else None
        sb = _stage_fields(right, ib) if ib is not None else None
        name_a = left.stages[ia].name if ia is not None else None
        name_b = right.stages[ib].name if ib is not None else None
        changed = sorted(k for k in (sa or sb) if not sa or not sb or sa[k] != sb[k])
        stages.append({"a_name": name_a, "b_name": name_b, "a": sa, "b": sb, "changed": changed})
    totals = {
        key: {"a": ta, "b": tb, "delta": tb - ta}
        for (key, ta), tb in zip(
            report.totals(left).items(), report.totals(right).values(), strict=True
        )
    }
    return {
        "a": left.name,
        "b": right.name,
        "network": network,
        "stages": stages,
        "totals": totals,
    }


_ROWS = (
    "blocks", "block", "width", "inner", "groups", "stride", "dilation", "shortcut", "output",
    "params", "macs",
)  # fmt: skip


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _percent(delta: int, base: int) -> str:
    return f" ({delta / base:+.1%})" if base and delta else ""


def _labels(data: dict, path_a: str, path_b: str) -> tuple[str, str]:
    """The two columns' heads: the networks' names, or where they agree the files' names."""
    if data["a"] != data["b"]:
        return data["a"], data["b"]
    import os

    a, b = os.path.basename(path_a), os.path.basename(path_b)
    return (a, b) if a != b else ("a", "b")


def render(data: dict, path_a: str, path_b: str) -> str:
    label_a, label_b = _labels(data, path_a, path_b)
    out = [f"--- {path_a} ({data['a']})", f"+++ {path_b} ({data['b']})", ""]
    if data["network"]:
        cells = [(d["field"], d["a"], d["b"]) for d in data["network"]]
        out.append(report.plain_table(("network", label_a, label_b), cells, set()).rstrip("\n"))
    else:
        out.append("network settings: no change")
    out.append("")
    for stage in data["stages"]:
        a_name, b_name = stage["a_name"], stage["b_name"]
        title = a_name if a_name == b_name else f"{a_name or '(none)'} -> {b_name or '(none)'}"
        if not stage["changed"]:
            out.append(
                f"stage {title}: no change ({_cell((stage['a'] or {}).get('params'))} parameters)"
            )
            continue
        if stage["a"] is None or stage["b"] is None:  # a stage only one network has
            name, side, where = (
                (b_name, stage["b"], label_b)
                if stage["a"] is None
                else (
                    a_name,
                    stage["a"],
                    label_a,
                )
            )
            verb = "added" if stage["a"] is None else "removed"
            out.append(f"stage {name}: {verb} (only in {where})")
            cells = [(key, _cell(side.get(key))) for key in _ROWS]
            table = report.plain_table(("", where), cells, set())
            out.append("\n".join("  " + line for line in table.rstrip("\n").split("\n")))
            continue
        out.append(f"stage {title}:")
        cells = []
        for key in _ROWS:
            va = (stage["a"] or {}).get(key)
            vb = (stage["b"] or {}).get(key)
            mark = "*" if key in stage["changed"] else ""
            delta = ""
            if isinstance(va, int) and isinstance(vb, int) and key in ("params", "macs", "blocks"):
                delta = report.signed(vb - va) + _percent(vb - va, va) if vb != va else ""
            cells.append((f"{mark}{key}", _cell(va), _cell(vb), delta))
        table = report.plain_table(("", label_a, label_b, "delta"), cells, {"delta"})
        out.append("\n".join("  " + line for line in table.rstrip("\n").split("\n")))
    out.append("")
    cells = []
    for key, t in data["totals"].items():
        cells.append(
            (
                key,
                f"{t['a']:,}",
                f"{t['b']:,}",
                report.signed(t["delta"]) + _percent(t["delta"], t["a"]),
            )
        )
    out.append(
        report.plain_table(
            ("total", label_a, label_b, "delta"), cells, {label_a, label_b, "delta"}
        ).rstrip("\n")
    )
    return "\n".join(out) + "\n"
