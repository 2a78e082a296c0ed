"""SKNet's modules in a PyTorch block class: a convolution with its norm and activation as one
module (the generated `ConvNormAct`, timm's names `conv`, `bn`), and the selective kernel, a
composite layer that merges by "select" (the generated `SelectiveKernel` and its
`SelectiveKernelAttn`, timm's `paths.{i}` and `attn`), so that timm's state dicts load.

Each helper computes some of what the IR states (a path's dilation, a convolution's padding, the
attention's 1x1s): what it would compute otherwise is a problem of the plan, never code that
computes something else.
"""

from __future__ import annotations

from resdsl.codegen.arguments import selective_problems
from resdsl.codegen.layout import Call
from resdsl.ir import BranchLayer

PARTS = {"conv": "conv", "norm": "bn", "act": "act"}  # op -> ConvNormAct's attribute


def is_selective(fields: dict) -> bool:
    """Whether a composite layer's fields are a selective kernel's."""
    return "attn_channels" in fields


def selective_call(f: dict) -> Call:
    """`SelectiveKernel(...)` for a selective kernel's fields (Syms or values)."""
    args = [str(f["in_channels"]), str(f["out_channels"]), str(f["attn_channels"])]
    for name, default in (("stride", 1), ("dilation", 1), ("groups", 1), ("paths", 2)):
        if f[name] != default:
            args.append(f"{name}={f[name]}")
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


def unit_problems(attr: str, layers: list) -> list[str]:
    """What `ConvNormAct` would build otherwise than `layers` (the IR's, named `attr.part`)."""
    ops = [x.op for x in layers]
    names = [x.torch for x in layers]
    if ops not in (["conv", "norm", "act"], ["conv", "norm"], ["conv", "act"], ["conv"]):
        return [f"module `{attr}` of layers other than a convolution, its norm and activation"]
    if names != [f"{attr}.{PARTS[op]}" for op in ops]:
        return [f"module `{attr}`'s layers named otherwise than ConvNormAct names them"]
    conv = layers[0].conv
    if conv.padding != conv.dilation * (conv.kernel // 2):
        return [f"module `{attr}`'s convolution padded otherwise than ConvNormAct pads"]
    return []


def kernel_problems(layer: BranchLayer) -> list[str]:
    """What `SelectiveKernel` would build otherwise than `layer`, its PyTorch names included."""
    found = selective_problems(layer)
    if found:
        return found
    prefix = layer.torch
    for k, path in enumerate(layer.paths):
        if unit_problems(f"{prefix}.paths.{k}", list(path.layers)):
            found.append(f"a selective kernel's path {k} other than a ConvNormAct")
    attention = layer.attention
    names = [x.torch for x in attention.layers()]
    expected = [f"{prefix}.attn.fc_reduce"]
    expected += [f"{prefix}.attn.bn" for _ in attention.norm]
    expected.append(f"{prefix}.attn.fc_select")
    if names != expected:
        found.append("a selective kernel's attention named otherwise than SelectiveKernelAttn")
    return found
