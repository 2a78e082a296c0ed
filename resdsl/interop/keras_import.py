"""Keras weights files read for `resdsl import`: their tensors under PyTorch's names.

A Keras 3 `.weights.h5` file keeps each layer's variables under a name made from its class and
a counter (`conv2d_17`, `batch_normalization_5`, `dense`), not under the layer's own name, and
without the order in which the classes' layers interleave. What it does keep is each class's
order of creation, which in a keras.applications-style model (and resdsl's generated one) is the
order of the network: the stem's convolution, then each block's shortcut convolution (where it
has one) before its branch's convolutions, then the classifier. This module walks the
convolutions in that order, tells shortcuts from branches by their channels, pairs the norms
with them by the layout their count and widths fit (a norm after every convolution, or
keras.applications' V2: one before each branch convolution and one before the pool), and
names every tensor as the PyTorch model of the same spec would.

Read through h5py: only arrays' shapes, nothing executed, after the file's structure is checked
(:func:`resdsl.interop.keras_files.keras_layout`: no links followed, no object reached twice,
floating-point datasets only, Keras' layout). A `.keras` archive is read through the `.weights.h5`
file inside it, in place.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from resdsl.interop.import_sources import NAMES, ImportFailed, Shapes
from resdsl.interop.keras_files import keras_layout
from resdsl.interop.weight_files import UnreadableWeights


@dataclass
class _Layer:
    kind: str  # "conv", "norm", "dense"
    shapes: list[tuple[int, ...]]  # Keras' variables, in Keras' layout

    @property
    def kernel(self) -> int:
        return self.shapes[0][0]

    @property
    def in_channels(self) -> int:
        return self.shapes[0][-2]

    @property
    def out_channels(self) -> int:
        return self.shapes[0][-1]

    @property
    def bias(self) -> bool:
        return len(self.shapes) > 1


_KINDS = {"conv2d": "conv", "batch_normalization": "norm", "dense": "dense"}
# The PyTorch names the tensors get (the importer's state-dict layout).
_SHORTCUT = NAMES.torch("shortcut", i=0)


def _conv(n: int) -> str:
    return NAMES.torch("block.conv", n=n)


# Each kind's variables, in Keras' order, by their number of dimensions: a convolution's kernel
# (and bias), a batch norm's gamma, beta, moving mean and variance, a dense kernel (and bias).
_RANKS = {"conv": ((4,), (4, 1)), "norm": ((1, 1, 1, 1),), "dense": ((2,), (2, 1))}


def _ordered_layers(path: str) -> dict[str, list[_Layer]]:
    variables, _ = keras_layout(path)
    # `layers/<group>/vars/<i>`: each layer's variables, in their order
    grouped: dict[str, dict[int, tuple[int, ...]]] = {}
    for key, shape in variables.items():
        match = re.fullmatch(r"layers/([^/]+)/vars/(\d+)", key)
        if match:
            grouped.setdefault(match.group(1), {})[int(match.group(2))] = shape
    by_kind: dict[str, list[tuple[int, _Layer]]] = {k: [] for k in _KINDS.values()}
    for name, found in grouped.items():
        match = re.fullmatch(r"([a-z0-9_]+?)(?:_(\d+))?", name)
        if match is None:
            continue
        kind = _KINDS.get(match.group(1))
        if kind is None:
            raise ImportFailed(
                f"`layers/{name}` holds weights of a kind resdsl does not import from Keras "
                "(squeeze-excitation, ECA and group norm import from PyTorch weights)"
            )
        shapes = [found[k] for k in sorted(found)]
        ranks = tuple(len(shape) for shape in shapes)
        fits = sorted(found) == list(range(len(found))) and ranks in _RANKS[kind]
        if kind == "norm":
            fits = fits and len(set(shapes)) == 1
        elif fits and len(shapes) == 2:  # a bias has one value per output channel
            fits = shapes[1] == (shapes[0][-1],)
        if not fits:
            raise UnreadableWeights(
                f"`layers/{name}/vars` holds {', '.join(map(str, shapes))}: not the variables "
                f"of a {match.group(1)} layer"
            )
        by_kind[kind].append((int(match.group(2) or 0), _Layer(kind, shapes)))
    return {kind: [layer for _, layer in sorted(found)] for kind, found in by_kind.items()}


def _torch_conv(layer: _Layer) -> list[tuple[str, tuple[int, ...]]]:
    kh, kw, i, o = layer.shapes[0]
    out = [("weight", (o, i, kh, kw))]
    return out + ([("bias", (o,))] if layer.bias else [])


def keras_shapes(path: str) -> Shapes:
    """The tensors of a Keras `.weights.h5` (or `.keras`) file, under PyTorch's names."""
    layers = _ordered_layers(path)
    convs, norms, dense = layers["conv"], layers["norm"], layers["dense"]
    if not convs or len(dense) != 1:
        raise ImportFailed(
            f"`{path}`: {len(convs)} convolutions and {len(dense)} dense layers; a ResNet has "
            "convolutions and one classifier"
        )
    stem, blocks = convs[0], _blocks(convs[1:], convs[0].out_channels)
    shortcuts = sum(1 for roles in blocks for role, _ in roles if role == _SHORTCUT)
    branch = sum(len(roles) for roles in blocks) - shortcuts
    # Which norm layout the count fits: after every convolution (V1), or before each branch
    # convolution and the pool, none in the stem (V2).
    if len(norms) == 1 + branch + shortcuts:
        preact = False
    elif len(norms) in (branch + 1, branch + 2):
        preact = True
    else:
        raise ImportFailed(
            f"`{path}`: {len(norms)} norms fit neither a norm after each of the "
            f"{1 + branch + shortcuts} convolutions nor one before each of the {branch} in blocks"
        )
    shapes: Shapes = {}
    norm_iter = iter(norms)
    roles_numbers = {_conv(n): n for n in range(1, 4)}

    def _norm(n: int) -> str:
        return NAMES.torch("block.norm", n=n)

    def add(name: str, layer: _Layer) -> None:
        for suffix, shape in _torch_conv(layer):
            shapes[f"{name}.{suffix}"] = shape

    def add_norm(name: str, channels: int) -> None:
        norm = next(norm_iter, None)
        if norm is None or norm.shapes[0] != (channels,):
            found = "none" if norm is None else norm.shapes[0]
            raise ImportFailed(
                f"`{path}`: the norm `{name}` should have {channels} channels, found {found}"
            )
        for suffix, shape in zip(
            ("weight", "bias", "running_mean", "running_var"), norm.shapes, strict=False
        ):
            shapes[f"{name}.{suffix}"] = shape

    add(NAMES.torch("stem.conv"), stem)
    stem_norm = not preact or len(norms) == branch + 2
    if stem_norm:
        add_norm(NAMES.torch("stem.norm"), stem.out_channels)
    last = 0
    for stage, index, roles in _stage_names(blocks):
        prefix = NAMES.torch("block", stage=stage, index=index, number=index + 1)
        branch_convs = [conv for role, conv in roles if role != _SHORTCUT]
        if preact:
            add_norm(
                f"{prefix}.{NAMES.torch('block.preact_norm.first')}", branch_convs[0].in_channels
            )
        # Norms come in the order of their convolutions (each right after its own).
        for role, conv in roles:
            add(f"{prefix}.{role}", conv)
            number = 0 if role == _SHORTCUT else roles_numbers[role]
            if not preact:
                norm = NAMES.torch("shortcut", i=1) if number == 0 else _norm(number)
                add_norm(f"{prefix}.{norm}", conv.out_channels)
            elif 0 < number < len(branch_convs):
                add_norm(f"{prefix}.{_norm(number + 1)}", conv.out_channels)
        last = branch_convs[-1].out_channels
    if preact:
        add_norm(NAMES.torch("head.norm"), last)
    (fc,) = dense
    classifier = NAMES.torch("head.classifier")
    shapes[f"{classifier}.weight"] = (fc.shapes[0][1], fc.shapes[0][0])
    if fc.bias:
        shapes[f"{classifier}.bias"] = (fc.shapes[0][1],)
    return shapes


def _blocks(convs: list[_Layer], channels: int) -> list[list[tuple[str, _Layer]]]:
    """Each block's convolutions as (role, convolution) in the file's order; roles are their
    PyTorch names, `conv1`, `conv2`, ... of the branch and `downsample.0` of a shortcut. The
    first block says the layout (a bottleneck's branch has three convolutions, one of them 3x3;
    a basic block's two 3x3s). A block's shortcut is a 1x1 that reads the block's input and gives
    the branch's output; Keras lists it among the branch's convolutions (by depth), so it is
    looked for anywhere in the block's window."""
    if not convs:
        raise ImportFailed("no convolutions after the stem")
    # Among a block's first three convolutions (with or without its shortcut), a bottleneck has
    # one 3x3, a basic block two.
    length = 3 if sum(conv.kernel == 3 for conv in convs[:3]) <= 1 else 2
    blocks = []
    at = 0
    while at < len(convs):
        window = convs[at : at + length + 1]
        found = None
        for place in range(len(window) if len(window) > length else 0):
            branch = window[:place] + window[place + 1 :]
            short = window[place]
            if (
                _chains(branch, channels)
                and short.kernel == 1
                and short.in_channels == channels
                and short.out_channels == branch[-1].out_channels
            ):
                found = place
                break
        if found is None:
            branch = window[:length]
            if len(branch) != length or not _chains(branch, channels):
                first = branch[0].shapes[0] if branch else "none"
                raise ImportFailed(
                    f"convolution {at + 2} ({first}) does not continue a residual block of "
                    f"{channels} channels"
                )
            roles = [(_conv(n), conv) for n, conv in enumerate(branch, start=1)]
            at += length
        else:
            roles, number = [], 1
            for place, conv in enumerate(window):
                if place == found:
                    roles.append((_SHORTCUT, conv))
                else:
                    roles.append((_conv(number), conv))
                    number += 1
            at += length + 1
        blocks.append(roles)
        channels = [c for r, c in roles if r != _SHORTCUT][-1].out_channels
    return blocks


def _chains(branch: list[_Layer], channels: int) -> bool:
    return (
        bool(branch)
        and branch[0].in_channels == channels
        and all(b.in_channels == a.out_channels for a, b in itertools.pairwise(branch))
    )


def _stage_names(blocks):
    """keras.applications' stage names (conv2, conv3, ...): a stage starts where the width
    changes or a block projects its shortcut after the first."""
    stage, index, width = 1, 0, None
    for roles in blocks:
        out = [conv for role, conv in roles if role != _SHORTCUT][-1].out_channels
        projects = any(role == _SHORTCUT for role, _ in roles)
        if width is None or out != width or (projects and index > 0):
            stage, index = stage + 1, 0
        yield f"conv{stage}", index, roles
        width, index = out, index + 1
