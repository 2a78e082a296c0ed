"""The modules of SKNet and ResNeSt in a PyTorch block class: a convolution with its norm and
activation as one module (the generated `ConvNormAct`, timm's names `conv`, `bn`), and the
composite layers that merge by "select": the selective kernel (the generated `SelectiveKernel`
and its `SelectiveKernelAttn`, timm's `paths.{i}` and `attn`) and split attention (the generated
`SplitAttn`, timm's `conv`, `bn0`, `fc1`, `bn1`, `fc2`), so that timm's state dicts load.

Each helper computes some of what the IR states (a path's dilation, a convolution's padding, the
attention's 1x1s): what it would compute otherwise is a problem of the plan, never code that
computes something else.
"""

from __future__ import annotations

from resdsl.codegen.arguments import selective_problems, split_problems
from resdsl.codegen.layout import Call
from resdsl.ir import BranchLayer

PARTS = {"conv": "conv", "norm": "bn", "act": "act"}  # op -> ConvNormAct's attribute


def is_selective(fields: dict) -> bool:
    """Whether a composite layer's fields are a helper's: a selective kernel's or split
    attention's (which merge by "select")."""
    return "attn_channels" in fields


def is_split(fields: dict) -> bool:
    """Whether a composite layer's fields are split attention's."""
    return "radix" in fields


def selective_call(f: dict) -> Call:
    """`SelectiveKernel(...)` or `SplitAttn(...)` for their fields (Syms or values)."""
    args = [str(f["in_channels"]), str(f["out_channels"]), str(f["attn_channels"])]
    count = ("radix", 2) if is_split(f) else ("paths", 2)
    for name, default in (("stride", 1), ("dilation", 1), ("groups", 1), count):
        if f[name] != default:
            args.append(f"{name}={f[name]}")
    if is_split(f):
        return Call("SplitAttn", tuple(args))
    if not f["split"]:
        args.append("split=False")
    return Call("SelectiveKernel", tuple(args))


def unit_call(ops: list[str], fields: list[dict]) -> Call:
    """`ConvNormAct(...)` for a unit of a convolution, its norm and perhaps its activation."""
    f = fields[0]
    args = [str(f["in_channels"]), str(f["out_channels"])]
    if f["kernel"] != 1:
        args.append(f"kernel_size={f['kernel']}")
    for name in ("stride", "dilation", "groups"):
        if f[name] != 1:
            args.append(f"{name}={f[name]}")
    if "act" not in ops:
        args.append("act=False")
    return Call("ConvNormAct", tuple(args))


def unit_problems(attr: str, layers: list, normalised: bool | None = None) -> list[str]:
    """What `ConvNormAct` would build otherwise than `layers` (the IR's, named `attr.part`): in
    a `normalised` network it always has its norm, in one without never (None: either)."""
    ops = [x.op for x in layers]
    names = [x.torch for x in layers]
    units = [["conv", "norm", "act"], ["conv", "norm"], ["conv", "act"], ["conv"]]
    if normalised is not None:
        units = units[:2] if normalised else units[2:]
    if ops not in units:
        return [f"module `{attr}` of layers other than a convolution, its norm and activation"]
    if names != [f"{attr}.{PARTS[op]}" for op in ops]:
        return [f"module `{attr}`'s layers named otherwise than ConvNormAct names them"]
    conv = layers[0].conv
    if conv.padding != conv.dilation * (conv.kernel // 2):
        return [f"module `{attr}`'s convolution padded otherwise than ConvNormAct pads"]
    return []


def split_names(layer: BranchLayer) -> list[str]:
    """What `SplitAttn` would build otherwise than `layer`, its PyTorch names included."""
    found = split_problems(layer)
    if found:
        return found
    prefix = layer.torch
    parts = {"conv": "conv", "norm": "bn0", "act": "act0"}
    names = [x.torch for x in layer.shared] + [x.torch for x in layer.attention.layers()]
    expected = [f"{prefix}.{parts[x.op]}" for x in layer.shared]
    expected += [f"{prefix}.fc1", *(f"{prefix}.bn1" for _ in layer.attention.norm)]
    expected.append(f"{prefix}.fc2")
    if names != expected:
        found.append("split attention named otherwise than SplitAttn names it")
    return found


def kernel_problems(layer: BranchLayer) -> list[str]:
    """What `SelectiveKernel` (or, with shared layers, `SplitAttn`) would build otherwise than
    `layer`, its PyTorch names included."""
    if layer.shared:
        return split_names(layer)
    found = selective_problems(layer)
    if found:
        return found
    prefix = layer.torch
    for k, path in enumerate(layer.paths):
        if unit_problems(f"{prefix}.paths.{k}", list(path.layers), None):
            found.append(f"a selective kernel's path {k} other than a ConvNormAct")
    attention = layer.attention
    names = [x.torch for x in attention.layers()]
    expected = [f"{prefix}.attn.fc_reduce"]
    expected += [f"{prefix}.attn.bn" for _ in attention.norm]
    expected.append(f"{prefix}.attn.fc_select")
    if names != expected:
        found.append("a selective kernel's attention named otherwise than SelectiveKernelAttn")
    return found
