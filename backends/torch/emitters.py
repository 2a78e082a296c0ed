"""One emitter per layer type: the PyTorch module a layer's fields describe (fields may hold
the plan's arguments, :class:`resdsl.codegen.arguments.Sym`), a plugin's layer types through
their registered emitters; and the checks of what the helper classes compute rather than
state."""

from __future__ import annotations

from resdsl.codegen.emitters import emitter
from resdsl.codegen.layout import Call
from resdsl.ir import (
    BilinearAttentionLayer,
    BlurPoolLayer,
    Conv,
    EcaLayer,
    GlobalContextLayer,
    Network,
    NormLayer,
    SqueezeExciteLayer,
)


def float_literal(value: float) -> str:
    return repr(float(value))


# How the papers spell the family names that spec names usually start with.


def blur_padding(layer: BlurPoolLayer) -> tuple[int, int]:
    """The padding the generated `BlurPool2d` computes for a layer, before and after."""
    return ((layer.size - 1) // 2, layer.size // 2)


def implied(layer, network: Network) -> str | None:
    """What is wrong with a layer whose values the generated code does not state but computes
    (a helper class's fixed parts, the module's norm), or None."""
    if isinstance(layer, NormLayer) and layer.kind != network.conventions.norm:
        return f"a {layer.kind} norm in a network of {network.conventions.norm} norms"
    if isinstance(layer, BlurPoolLayer) and layer.padding != blur_padding(layer):
        return "a blur pool padded otherwise than BlurPool2d pads"
    if isinstance(layer, SqueezeExciteLayer):
        wide, narrow = layer.reduce.conv.in_channels, layer.reduce.conv.out_channels
        fc1 = Conv(in_channels=wide, out_channels=narrow, kernel=1, bias=True)
        fc2 = Conv(in_channels=narrow, out_channels=wide, kernel=1, bias=True)
        actual = [(x.torch, x.conv) for x in (layer.reduce, layer.expand)]
        if actual != [(f"{layer.torch}.fc1", fc1), (f"{layer.torch}.fc2", fc2)]:
            return "a squeeze-excitation other than SqueezeExcite builds"
    if isinstance(layer, EcaLayer) and (
        layer.conv.torch != f"{layer.torch}.conv" or layer.conv.kernel % 2 == 0
    ):
        return "a channel attention other than EfficientChannelAttention builds"
    if isinstance(layer, GlobalContextLayer) and _context_parts(layer) != [
        (x.torch, x.conv) for x in (layer.attend, layer.fc1, layer.fc2)
    ] + [(layer.norm.torch, layer.norm.kind)]:
        return "a global context other than GlobalContext builds"
    if isinstance(layer, BilinearAttentionLayer) and _bilinear_parts(layer) != [
        (x.torch, getattr(x, "conv", None) or (x.in_channels, x.out_channels, x.kernel))
        for x in layer.weighted()
        if x.op != "norm"
    ]:
        return "a bilinear attention other than BilinearAttention builds"
    return None


def _bilinear_parts(layer: BilinearAttentionLayer) -> list[tuple]:
    """What the generated `BilinearAttention` builds for a layer: its convolutions in order."""
    wide, narrow, groups, size = layer.channels, layer.reduced, layer.groups, layer.block_size
    bias, name = layer.reduce.conv.bias, layer.torch

    def conv(where: str, ins: int, outs: int) -> tuple:
        return (f"{name}.{where}", Conv(in_channels=ins, out_channels=outs, kernel=1, bias=bias))

    matrices = size * size * groups
    return [
        conv("conv1.conv", wide, narrow),
        conv("ba.conv1.conv", narrow, groups),
        (f"{name}.ba.conv_p", (groups, matrices, (size, 1))),
        (f"{name}.ba.conv_q", (groups, matrices, (1, size))),
        conv("ba.conv2.conv", narrow, narrow),
        conv("conv2.conv", narrow, wide),
    ]


def _context_parts(layer: GlobalContextLayer) -> list[tuple]:
    """What the generated `GlobalContext` builds for a layer: its convolutions and its norm."""
    wide, narrow, mlp = (
        layer.channels,
        layer.fc1.conv.out_channels,
        f"{layer.torch}.mlp_{layer.fuse}",
    )
    convs = [
        (f"{layer.torch}.conv_attn", Conv(in_channels=wide, out_channels=1, kernel=1, bias=True)),
        (f"{mlp}.fc1", Conv(in_channels=wide, out_channels=narrow, kernel=1, bias=True)),
        (f"{mlp}.fc2", Conv(in_channels=narrow, out_channels=wide, kernel=1, bias=True)),
    ]
    return [*convs, (f"{mlp}.norm", "layer")]


# --------------------------------------------------------------------------- emitters
# One emitter per layer type: the module that a layer's fields describe. Fields may hold `Sym`s.


def _conv(f: dict, activation: str) -> Call:
    args = [str(f["in_channels"]), str(f["out_channels"]), f"kernel_size={f['kernel']}"]
    for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
        if f[name] != default:
            args.append(f"{name}={f[name]}")
    # BiT's weight-standardized convolution
    conv = "StdConv2d" if f.get("standardized") else "nn.Conv2d"
    return Call(conv, (*args, f"bias={f['bias']}"))


def _norm(f: dict, activation: str) -> Call:
    return Call("norm", (str(f["channels"]),))


def _act(f: dict, activation: str) -> str:
    return activation


def _pool(f: dict, activation: str) -> Call:
    window = [f"kernel_size={f['kernel']}", f"stride={f['stride']}"]
    if f["kind"] == "max" and f["zero_padded"]:
        # Zeros, not -inf, around the input (keras.applications; see resdsl.ir.Pool).
        pad = f"nn.ZeroPad2d({f['padding']})"
        return Call("nn.Sequential", (pad, Call("nn.MaxPool2d", tuple(window))))
    if f["padding"]:
        window.append(f"padding={f['padding']}")
    if f["kind"] == "max" and f["ceil"]:  # Caffe's: the size rounded up
        return Call("nn.MaxPool2d", (*window, "ceil_mode=True"))
    if f["kind"] == "max":
        return Call("nn.MaxPool2d", tuple(window))
    if f["ceil"]:
        window += ["ceil_mode=True", "count_include_pad=False"]
    if f["pad_after"]:
        # Zeros after each axis, inside the average (timm's AvgPool2dSame at stride 1).
        after = f["pad_after"]
        pad = f"nn.ZeroPad2d((0, {after}, 0, {after}))"
        return Call("nn.Sequential", (pad, Call("nn.AvgPool2d", tuple(window))))
    return Call("nn.AvgPool2d", tuple(window))


def _pad_channels(f: dict, activation: str) -> Call:
    return Call("PadChannels", ("in_channels", "out_channels"))


def _linear(f: dict, activation: str) -> Call:
    args = (str(f["in_features"]), str(f["out_features"]))
    if f.get("conv"):  # timm's ResNetV2 classifier: a 1x1 convolution on the pooled features
        args = (*args, "kernel_size=1")
    layer = "nn.Conv2d" if f.get("conv") else "nn.Linear"
    return Call(layer, args if f["bias"] else (*args, "bias=False"))


def _dropout(f: dict, activation: str) -> str:
    return f"nn.Dropout(p={float_literal(f['rate'])})"


def _global_pool(f: dict, activation: str) -> str:
    return "nn.AdaptiveAvgPool2d((1, 1))"


def _identity(f: dict, activation: str) -> str:
    return "nn.Identity()"


def _blur(f: dict, activation: str) -> Call:
    return Call("BlurPool2d", (str(f["channels"]), f"size={f['size']}", f"stride={f['stride']}"))


def _squeeze_excite(f: dict, activation: str) -> Call:
    return Call("SqueezeExcite", (str(f["channels"]), str(f["reduced"])))


def _eca(f: dict, activation: str) -> Call:
    return Call("EfficientChannelAttention", (f"kernel_size={f['kernel']}",))


def _bilinear(f: dict, activation: str) -> Call:
    args = [str(f["channels"]), str(f["reduced"]), f"block_size={f['block_size']}"]
    args += [f"groups={f['groups']}"] * (f["groups"] != 2)
    args += [f"dropout={float_literal(f['dropout'])}"] * (f["dropout"] != 0.2)
    return Call("BilinearAttention", tuple(args))


def _global_context(f: dict, activation: str) -> Call:
    return Call("GlobalContext", (str(f["channels"]), str(f["reduced"])))


BUILT_IN_EMITTERS = {
    "conv": _conv,
    "norm": _norm,
    "act": _act,
    "pool": _pool,
    "pad_channels": _pad_channels,
    "linear": _linear,
    "dropout": _dropout,
    "global_pool": _global_pool,
    "identity": _identity,
    "blur": _blur,
    "se": _squeeze_excite,
    "eca": _eca,
    "gc": _global_context,
    "bat": _bilinear,
}


def module_call(op: str, fields: dict, activation: str) -> Call | str:
    """The module of a layer of type `op`: the built-in types' emitters, else a plugin's
    (:mod:`resdsl.codegen.emitters`), which gets its fields as the code writes them."""
    if op in BUILT_IN_EMITTERS:
        return BUILT_IN_EMITTERS[op](fields, activation)
    return emitter("torch", op).emit({key: str(value) for key, value in fields.items()})
