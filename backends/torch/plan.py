"""The PyTorch plan: the shared plan (:class:`resdsl.codegen.plan.Plan`) with what only PyTorch
has, the modules as the attributes they occupy (:class:`_Unit`: a dotted IR name `conv1.3` is
index 3 of Sequential `conv1`), the shortcut attribute, the model class's name, and the checks
of what the helper classes compute rather than state (a problem of the plan, never code that
computes something else)."""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass
from itertools import groupby

from resdsl.codegen.arguments import (
    Divisible,
    Sym,
    layer_fields,
    optional,
)
from resdsl.codegen.emitters import emitter
from resdsl.codegen.plan import Plan
from resdsl.ir import Network, PadChannelsLayer, flatten

from . import aggregated, composites, selective, stages
from .emitters import BUILT_IN_EMITTERS, implied

COMPOSITES = frozenset({"branches"})  # layer types written by `composites`, not by an emitter

_ACTIVATION = {
    "relu": "nn.ReLU(inplace=True)",
    "silu": "nn.SiLU(inplace=True)",
    "gelu": "nn.GELU()",
}


_SPELLINGS = (
    ("seresnext", "SEResNeXt"),
    ("seresnet", "SEResNet"),
    ("senet", "SENet"),
    ("ecaresnext", "ECAResNeXt"),
    ("ecaresnet", "ECAResNet"),
    ("resnext", "ResNeXt"),
    ("resnest", "ResNeSt"),
    ("resnetblur", "ResNetBlur"),
    ("resnetaa", "ResNetAA"),
    ("resnetrs", "ResNetRS"),
    ("regnetx", "RegNetX"),
    ("regnety", "RegNetY"),
    ("regnetv", "RegNetV"),
    ("regnetz", "RegNetZ"),
    ("regnet", "RegNet"),
    ("resnet", "ResNet"),
    ("preact", "PreAct"),
)


# Every module-level name the generated module defines or imports, besides its block classes
# and shortcut functions.
_MODULE_NAMES = frozenset(
    {
        "annotations", "Callable", "torch", "F", "nn", "NORM_EPS", "NORM_MOMENTUM",
        "NORM_GROUP_SIZE", "NORM_GROUPS", "DROP_PATH_RATE", "TOTAL_BLOCKS", "norm",
        "drop_path_rate", "make_stage", "CONV_EPS", "StdConv2d", "EvoNormS0",
        "FilterResponseNorm",
        "build_model", "DropPath", "PadChannels", "FromInput", "BlurPool2d", "make_divisible",
        "SqueezeExcite", "EfficientChannelAttention", "ConvNormAct", "SelectiveKernel",
        "SelectiveKernelAttn", "SplitAttn", "OrderedDict", "GlobalContext", "LayerNorm2d",
        "BilinearAttention", "BilinearTransform", "conv_norm_relu", "AggregatedPaths",
    }
)  # fmt: skip


def _class_name(name: str) -> str:
    """`wide_resnet50_2` -> `WideResNet50_2`: CamelCase, keeping `_` before a digit, with the
    families spelled as their papers do."""
    out = ""
    for part in (p for p in name.split("_") if p):
        if out and part[0].isdigit():
            out += "_"
        for lower, spelled in _SPELLINGS:
            if part.lower().startswith(lower):
                part = spelled + part[len(lower) :]
                break
        out += part[0].upper() + part[1:]
    out = "".join(c for c in out if c.isalnum() or c == "_") or "Network"
    return out if out[0].isalpha() else "Net" + out


# --------------------------------------------------------------------------- the plan


@dataclass
class _Unit:
    """One attribute of a module: a layer, or the layers of a Sequential (`conv1.0`, ...)."""

    attr: str
    ops: list[str]
    fields: list[dict]
    sequential: bool
    optional: bool = False  # only where the block strides (`_optional`); else nn.Identity()
    named: bool = False  # its layers are named parts (`conv1.conv`): a ConvNormAct
    # a container's (`stem`: an nn.Sequential of named modules), the units it holds
    children: list[_Unit] | None = None

    @property
    def convolves(self) -> bool:
        return "conv" in self.ops

    @property
    def all_ops(self) -> list[str]:
        """Its layers' types, with those inside a composite layer."""
        inner = [
            op for fields in self.fields if "paths" in fields for op in composites.inner_ops(fields)
        ]
        return [*self.ops, *inner]

    @property
    def chains(self) -> bool:
        """Whether it joins a conv -> norm -> act statement (parameter-free reshapes do not)."""
        return all(op in ("conv", "norm", "act") for op in self.ops)


# --------------------------------------------------------------------------- the plan


class TorchPlan(Plan):
    """The plan (:class:`resdsl.codegen.plan.Plan`) with what PyTorch adds: modules as the
    attributes they occupy (:class:`_Unit`), the shortcut attribute, the model class's name and
    the checks of what the helper classes compute rather than state."""

    def __init__(self, network: Network):
        super().__init__(network)
        self.activation = _ACTIVATION[network.conventions.activation]
        self.normalised = network.conventions.norm != "none"  # every ConvNormAct has its norm
        for layer in flatten(self.layers()):
            if (text := implied(layer, network)) is not None:
                self.problem(text)
            if getattr(layer, "merge", None) == "select":
                for text in selective.kernel_problems(layer):
                    self.problem(text)
            if getattr(layer, "merge", None) == "sum":
                for text in aggregated.problems(layer, self.normalised):
                    self.problem(text)
            known = layer.op in BUILT_IN_EMITTERS or layer.op in COMPOSITES
            if not known and emitter("torch", layer.op) is None:
                self.problem(f"a layer of type `{layer.op}`, which no PyTorch emitter writes")
        self.downsample = self._shortcut_attribute()
        # Each class's pre-activation, branch and post-activation as units.
        for cls in self.classes:
            for layer, fields in zip(cls.layers, cls.fields, strict=True):
                if layer.op in COMPOSITES and not _is_helper(fields):
                    for text in composites.problems(fields):
                        self.problem(text)
        self.parts = {
            id(cls): tuple(
                self.units(*zip(*cls.part(i), strict=True), block=True) if cls.part(i) else []
                for i in range(3)
            )
            for cls in self.classes
        }
        self.stem = self._model_units(network.stem.layers)
        self.head = self._model_units(network.head.layers)
        # how make_stage names its blocks (checked against every block: once)
        self.block_key = stages.block_key(self)
        if any(unit.named and unit.fields[0].get("standardized") for unit in self.all_units()):
            self.problem("a weight-standardized convolution inside a ConvNormAct")
        if len(self._helper_biases()) > 1:
            self.problem("ConvNormAct convolutions with and without biases in one network")
        # The model class must not shadow any other name of the module, a keyword (`none`
        # gives `None`) or a builtin: it takes a suffix until it is free.
        taken = (
            _MODULE_NAMES
            | {c.name for c in self.classes}
            | {f.name for f in self.functions}
            | set(keyword.kwlist)
            | set(keyword.softkwlist)
            | set(dir(builtins))
        )
        self.model = _class_name(network.name)
        while self.model in taken:
            self.model += "Net"

    def _helpers(self, split: bool) -> bool:
        return any(
            unit.ops == ["branches"]
            and selective.is_selective(unit.fields[0])
            and selective.is_split(unit.fields[0]) == split
            for unit in self.all_units()
        )

    @property
    def selective_kernel(self) -> bool:
        """Whether a block has a selective kernel (the module writes `SelectiveKernel`)."""
        return self._helpers(split=False)

    @property
    def split_attention(self) -> bool:
        """Whether a block has split attention (the module writes `SplitAttn`)."""
        return self._helpers(split=True)

    @property
    def conv_norm_act(self) -> bool:
        """Whether the module writes `ConvNormAct` (for its units or the selective kernel)."""
        return (
            self.selective_kernel
            or (self.shortcut_unit and not self.shortcut_named)
            or any(unit.named for unit in self.all_units())
        )

    @property
    def helper_bias(self) -> bool:
        """The bias of every convolution `ConvNormAct` writes (the plan checks they agree)."""
        found = self._helper_biases()
        return found.pop() if len(found) == 1 else False

    def _helper_biases(self) -> set[bool]:
        found = set()
        for unit in self.all_units():
            if unit.named:
                found.add(unit.fields[0]["bias"])
        if self.shortcut_unit:
            found |= {
                layer.conv.bias
                for _, block in self.runs
                for layer in block.shortcut.layers
                if layer.op == "conv"
            }
        for layer in flatten(self.layers()):
            if getattr(layer, "merge", None) == "select" and layer.shared:
                found.add(layer.shared[0].conv.bias)
            elif getattr(layer, "merge", None) == "select":
                found |= {path.layers[0].conv.bias for path in layer.paths}
        return found

    def uses(self, op: str) -> bool:
        """Whether any module of the network is a layer of type `op` (its helper is written)."""
        return any(op in unit.all_ops for unit in self.all_units())

    def _divisible(self, limited: bool = False) -> bool:
        return any(
            isinstance(value, Divisible)
            and not value.rounded
            and (not limited or value.round_limit or value.minimum)
            for unit in self.all_units()
            for fields in unit.fields
            for value in fields.values()
        )

    @property
    def divisible(self) -> bool:
        """Whether a width is computed by `make_divisible` (an attention's)."""
        return self._divisible()

    @property
    def limits(self) -> bool:
        """Whether `make_divisible` takes a round limit and a minimum (a select's attention)."""
        return self._divisible(limited=True)

    def all_units(self):
        """Every unit of the model (those inside its containers included) and its block
        classes."""
        for unit in (*self.stem, *self.head):
            yield from unit.children if unit.children is not None else (unit,)
        for cls in self.classes:
            for part in self.parts[id(cls)]:
                for unit in part:
                    yield from unit.children if unit.children is not None else (unit,)

    def units(self, layers, fields, block: bool = False) -> list[_Unit]:
        """`layers` as the attributes they occupy, in order (see :meth:`_units`); in a block,
        those under one of the naming's block containers (torchvision's RegNet `f`) as one
        container unit holding theirs."""
        containers = self.network.block_containers if block else ()
        if not containers:
            return self._units(layers, fields, block)
        units: list[_Unit] = []
        for container, group in groupby(
            zip(layers, fields, strict=True),
            key=lambda pair: _container(pair[0].torch, containers),
        ):
            members = list(group)
            if container is None:
                units += self._units(*zip(*members, strict=True), block=block)
                continue
            inner = [
                layer.model_copy(update={"torch": layer.torch.removeprefix(container + ".")})
                for layer, _ in members
            ]
            children = self._units(inner, [values for _, values in members], block)
            units.append(_Unit(container, ["container"], [{}], False, children=children))
        return units

    def _units(self, layers, fields, block: bool = False) -> list[_Unit]:
        """`layers` as the attributes they occupy, in order: a dotted name `conv1.3` puts a
        layer in Sequential `conv1` at index 3. In a block, a layer that only applies the
        stride (`optional`) is a unit of its own, registered where the block strides."""
        units: list[_Unit] = []
        members: dict[str, list] = {}  # a named unit's IR layers, checked once complete
        for layer, values in zip(layers, fields, strict=True):
            attr, _, index = layer.torch.partition(".")
            alone = block and optional(layer)
            last = units[-1] if units else None
            if index and not index.isdigit():  # `conv1.conv`: a ConvNormAct's part
                if last is not None and last.named and last.attr == attr:
                    last.ops.append(layer.op)
                    last.fields.append(values)
                else:
                    units.append(_Unit(attr, [layer.op], [values], False, named=True))
                members.setdefault(attr, []).append(layer)
                continue
            if index and last is not None and last.sequential and last.attr == attr:
                if index != str(len(last.ops)) or alone or last.optional:
                    self.problem(f"layer `{layer.torch}` out of its Sequential's order")
                last.ops.append(layer.op)
                last.fields.append(values)
                continue
            if index and index != "0":
                self.problem(f"layer `{layer.torch}` out of its Sequential's order")
            units.append(_Unit(attr, [layer.op], [values], bool(index), alone))
        for attr, parts in members.items():
            for text in selective.unit_problems(attr, parts, self.normalised):
                self.problem(text)
        return units

    def _model_units(self, layers) -> list[_Unit]:
        """The stem's or the head's units; the classifier's width is `num_classes`."""
        fields = []
        for layer in layers:
            values = layer_fields(layer)
            if isinstance(layer, PadChannelsLayer):
                self.problem("a channel padding outside a shortcut")
            if getattr(layer, "zero_init", False):
                self.problem("a layer outside the blocks that starts at zero")
            classifier = layer is layers[-1] and layer.op == "linear"
            if classifier and values["out_features"] == self.network.classes:
                values["out_features"] = Sym("num_classes")
            fields.append(values)
        units: list[_Unit] = []
        containers = self.network.containers
        for container, group in groupby(
            zip(layers, fields, strict=True),
            key=lambda pair: _container(pair[0].torch, containers),
        ):
            members = list(group)
            if container is None:
                units += self.units(*zip(*members, strict=True))
                continue
            # Inside a container, each layer is named as within it (`stem.conv1.conv` is the
            # `conv1.conv` of `stem`).
            inner = [
                layer.model_copy(update={"torch": layer.torch.removeprefix(container + ".")})
                for layer, _ in members
            ]
            children = self.units(inner, [values for _, values in members])
            units.append(_Unit(container, ["container"], [{}], False, children=children))
        return units

    def _shortcut_attribute(self) -> str | None:
        """The block attribute every shortcut's layers live under (torchvision's `downsample`,
        an nn.Sequential; byobnet's `shortcut`, a ConvNormAct whose parts are named)."""
        attrs = set()
        self.shortcut_unit = False
        self.shortcut_alone = False  # a one-layer shortcut is the module, not a Sequential
        self.shortcut_named = False  # an nn.Sequential of named layers, not a ConvNormAct
        for _, block in self.runs:
            layers = block.shortcut.layers
            for index, layer in enumerate(layers):
                attr, _, rest = layer.torch.partition(".")
                attrs.add(attr)
                if not rest and len(layers) == 1:  # one module alone (timm's RegNetV)
                    self.shortcut_alone = True
                    continue
                if rest and not rest.isdigit():
                    self.shortcut_unit = True
                elif rest != str(index):
                    self.problem(f"shortcut layer `{layer.torch}` out of its Sequential's order")
            if layers and self.shortcut_unit:
                attr = layers[0].torch.partition(".")[0]
                if selective.unit_problems(attr, list(layers), self.normalised):
                    # not a ConvNormAct (timm's ResNetV2 DownsampleAvg: `pool`, `conv`): an
                    # nn.Sequential of its layers by name
                    self.shortcut_named = True
                    parts = [x.torch.partition(".")[2] for x in layers]
                    if not all(p.isidentifier() for p in parts) or len(set(parts)) < len(parts):
                        self.problem(f"shortcut layers `{attr}` that no Sequential can name")
        if len(attrs) > 1:
            self.problem(f"shortcut layers under several names ({', '.join(sorted(attrs))})")
        return min(attrs) if attrs else None


def _container(name: str, containers: tuple[str, ...]) -> str | None:
    """The container a model-level layer's PyTorch name puts it in, if any."""
    head, dot, _ = name.partition(".")
    return head if dot and head in containers else None


def _is_helper(fields: dict) -> bool:
    """Whether a composite layer is one helper module (a selective kernel, split attention,
    aggregated paths), not paths the block class writes out (Res2Net's)."""
    return selective.is_selective(fields) or aggregated.is_aggregated(fields)
