"""Aggregated paths in a PyTorch block class (a composite layer that merges by "sum", ResNeXt's
Fig. 3a): the generated `AggregatedPaths`, a ModuleList of one Sequential per path (`paths.{i}`:
`conv1`, `bn1`, `act1`, `conv2`, `bn2`, `act2`, `conv3`) whose forward sums the paths' outputs.

The helper computes the paths' widths, kernels and paddings; what it would build otherwise than
the IR says is a problem of the plan (:func:`resdsl.codegen.arguments.aggregated_problems`),
never code that computes something else.
"""

from __future__ import annotations

from resdsl.codegen.arguments import aggregated_problems
from resdsl.codegen.layout import Call
from resdsl.ir import BranchLayer

PARTS = {"conv": "conv", "norm": "bn", "act": "act"}  # op -> a path's attribute, numbered


def is_aggregated(fields: dict) -> bool:
    """Whether a composite layer's fields are aggregated paths' (which merge by "sum")."""
    return fields.get("merge") == "sum"


def aggregated_call(f: dict) -> Call:
    """`AggregatedPaths(...)` for its fields (Syms or values)."""
    args = [str(f["in_channels"]), str(f["mid_channels"]), str(f["out_channels"])]
    args.append(f"paths={f['paths']}")
    for name in ("stride", "dilation"):
        if f[name] != 1:
            args.append(f"{name}={f[name]}")
    return Call("AggregatedPaths", tuple(args))


def problems(layer: BranchLayer, normalised: bool) -> list[str]:
    """What `AggregatedPaths` would build otherwise than `layer`, its PyTorch names included."""
    found = aggregated_problems(layer, normalised)
    for i, path in enumerate(layer.paths):
        numbers: dict[str, int] = {}
        for x in path.layers:
            numbers[x.op] = numbers.get(x.op, 0) + 1
            expected = f"{layer.torch}.{i}.{PARTS[x.op]}{numbers[x.op]}"
            if x.op in PARTS and x.torch != expected:
                return [*found, f"aggregated paths named otherwise than `{expected}`"]
    return found
