"""Naming: the one place that names every layer with weights, for both frameworks.

Names are a compatibility contract: the PyTorch backend's follow torchvision (and timm where
torchvision has none), the Keras backend's follow keras.applications, and weight porting pairs
the two. Each function lists a part of the model in PyTorch's registration order; the Keras
names of the same layers come in the same order, so pairing is a zip, not a second naming.
"""

from __future__ import annotations

from .ir import Block, Network, Shortcut

# --------------------------------------------------------------------------- PyTorch
# (attribute path, kind, conv or width) for one part of the model, in registration order.


def stem_layers(network: Network) -> list[tuple[str, str, object]]:
    """The stem: `conv1` (a Sequential for the deep stem, timm's naming), then `bn1`."""
    stem = network.stem
    if len(stem.convs) == 1:
        layers: list[tuple[str, str, object]] = [("conv1", "conv", stem.convs[0])]
        if stem.norm:
            layers.append(("bn1", "norm", stem.convs[0].out_channels))
        return layers
    layers = []
    for position, index in enumerate(_deep_stem_indices(network)):
        layers.append((f"conv1.{index}", "conv", stem.convs[position]))
        if stem.norm and position < len(stem.convs) - 1:
            layers.append((f"conv1.{index + 1}", "norm", stem.convs[position].out_channels))
    if stem.norm:
        layers.append(("bn1", "norm", stem.convs[-1].out_channels))
    return layers


def _deep_stem_indices(network: Network) -> list[int]:
    """Positions of the deep stem's convolutions in its Sequential (conv, norm, act, ...)."""
    step = 3 if network.stem.norm else 1
    return [step * i for i in range(len(network.stem.convs))]


def block_layers(block: Block) -> list[tuple[str, str, object]]:
    """A block's branch (`conv1`, `bn1`, ...; norms first in pre-activation blocks), then its
    shortcut under `downsample`."""
    layers: list[tuple[str, str, object]] = []
    preact = block.kind.startswith("preact_")
    for number, conv in enumerate(block.convs, start=1):
        if preact:
            layers.append((f"bn{number}", "norm", conv.in_channels))
            layers.append((f"conv{number}", "conv", conv))
        else:
            layers.append((f"conv{number}", "conv", conv))
            layers.append((f"bn{number}", "norm", conv.out_channels))
    layers.extend(shortcut_layers(block.shortcut))
    return layers


def shortcut_layers(shortcut: Shortcut) -> list[tuple[str, str, object]]:
    """torchvision's `downsample.0` conv / `.1` norm; timm's `.0` pool / `.1` / `.2` for ResNet-D.
    Parameter-free shortcuts have no layers."""
    if shortcut.conv is None:
        return []
    first = 1 if shortcut.kind == "pool_project" else 0
    layers: list[tuple[str, str, object]] = [(f"downsample.{first}", "conv", shortcut.conv)]
    if shortcut.norm:
        layers.append((f"downsample.{first + 1}", "norm", shortcut.conv.out_channels))
    return layers


def head_layers(network: Network) -> list[tuple[str, str, object]]:
    """`norm` (pre-activation nets' final norm, timm's name), then `fc`."""
    layers: list[tuple[str, str, object]] = []
    if network.head.norm:
        layers.append(("norm", "norm", network.head.in_features))
    layers.append(("fc", "linear", (network.head.classes, network.head.in_features)))
    return layers


def _shape(kind: str, what) -> tuple[int, ...]:
    if kind == "conv":
        return (what.out_channels, what.in_channels // what.groups, what.kernel, what.kernel)
    if kind == "norm":
        return (what,)
    return tuple(what)


def state_dict_layout(network: Network) -> list[tuple[str, str, tuple[int, ...]]]:
    """Every conv, norm and linear layer of the generated model, in model order, as
    (state-dict prefix, "conv" | "norm" | "linear", weight shape)."""
    rows = [(name, kind, _shape(kind, what)) for name, kind, what in stem_layers(network)]
    for _, stage, position, block in network.blocks():
        prefix = f"{stage.name}.{position}."
        rows += [(prefix + n, k, _shape(k, w)) for n, k, w in block_layers(block)]
    rows += [(name, kind, _shape(kind, what)) for name, kind, what in head_layers(network)]
    return rows


# --------------------------------------------------------------------------- Keras


def stem_conv_names(network: Network) -> list[str]:
    """Keras name prefixes of the stem's convolutions: `conv1`, or `conv1_1`..`conv1_3`."""
    convs = network.stem.convs
    return ["conv1"] if len(convs) == 1 else [f"conv1_{k + 1}" for k in range(len(convs))]


def block_name(stage_name: str, position: int) -> str:
    """keras.applications' block prefix, counting from 1: `conv2_block1`."""
    return f"{stage_name}_block{position + 1}"


def _keras_stem(network: Network) -> list[str]:
    names = []
    for name in stem_conv_names(network):
        names.append(f"{name}_conv")
        if network.stem.norm:
            names.append(f"{name}_bn")
    return names


def _keras_block(block: Block, name: str) -> list[str]:
    """A block's Keras layer names in the order of :func:`block_layers`: the branch (V2's
    `_preact_bn` first in pre-activation blocks), then the `_0_` shortcut."""
    names = []
    last = len(block.convs)
    for number in range(1, last + 1):
        if block.kind.startswith("preact_"):
            # keras' V2: the norm before conv k is `_preact_bn` for the first, `_{k-1}_bn` after.
            names.append(f"{name}_preact_bn" if number == 1 else f"{name}_{number - 1}_bn")
            names.append(f"{name}_{number}_conv")
        else:
            names += [f"{name}_{number}_conv", f"{name}_{number}_bn"]
    if block.shortcut.conv is not None:
        names.append(f"{name}_0_conv")
        if block.shortcut.norm:
            names.append(f"{name}_0_bn")
    return names


def _keras_head(network: Network) -> list[str]:
    return (["post_bn"] if network.head.norm else []) + ["predictions"]


# --------------------------------------------------------------------------- pairs


def layer_pairs(network: Network) -> list[tuple[str, str, str]]:
    """(PyTorch prefix, Keras layer name, kind) for every layer with weights, in PyTorch's
    registration order; kind is conv, norm or linear."""
    pairs = []
    for (prefix, kind, _), name in zip(stem_layers(network), _keras_stem(network), strict=True):
        pairs.append((prefix, name, kind))
    for _, stage, position, block in network.blocks():
        keras_names = _keras_block(block, block_name(stage.name, position))
        for (attribute, kind, _), name in zip(block_layers(block), keras_names, strict=True):
            pairs.append((f"{stage.name}.{position}.{attribute}", name, kind))
    for (prefix, kind, _), name in zip(head_layers(network), _keras_head(network), strict=True):
        pairs.append((prefix, name, kind))
    return pairs
