"""The PyTorch backend: an elaborated network to a standalone module that imports only torch.

The generated module reads like torchvision's resnet.py: one class per block kind the network
uses, a helper per shortcut kind, a model class that builds its stages from a small table of
runs of identical blocks (so the text grows with the number of distinct blocks, not with
depth), and `build_model`.

Names are a compatibility contract with torchvision (and timm, for what torchvision lacks).
They are listed once, in :mod:`resdsl.naming` (with the Keras names of the same layers), and
re-exported here as :func:`state_dict_layout`; the tests check every spec's generated model
against that list, so the layout the weight porters rely on is the layout the model has.

Choices worth knowing:

* Pre-activation blocks put `bn1` before `conv1`, `bn2` before `conv2` (and `bn3` before
  `conv3`); the head's final norm (pre-activation nets) is `norm`, as in timm's ResNetV2.
* The deep stem (ResNet-C) is timm's: `conv1` is a Sequential (conv, bn, act, conv, bn, act,
  conv) and `bn1` the norm after it. The pool-then-project shortcut (ResNet-D) is timm's
  `downsample.0` AvgPool2d, `.1` conv, `.2` norm.
* `zero_last_norm` zeroes the last norm's weight of each residual branch in post-activation
  blocks (torchvision's zero_init_residual). Pre-activation blocks have no norm after their
  last convolution, so there, as timm's ResNetV2 does, the last convolution's weight is zeroed:
  each branch then starts as the identity, which is the point of the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from resdsl.ir import Block, Network, Shortcut
from resdsl.naming import state_dict_layout

LINE = 100  # the project's ruff line length
INDENT = "    "

_BLOCK_CLASS = {
    "basic": "BasicBlock",
    "bottleneck": "Bottleneck",
    "preact_basic": "PreActBasicBlock",
    "preact_bottleneck": "PreActBottleneck",
}
_BLOCK_DOC = {
    "basic": "Two 3x3 convolutions, each followed by a norm; the activation after the addition.",
    "bottleneck": "1x1 reduce, 3x3, 1x1 expand, each followed by a norm; the activation after "
    "the addition.",
    "preact_basic": "Pre-activation: a norm and activation before each of two 3x3 convolutions.",
    "preact_bottleneck": "Pre-activation: a norm and activation before each of 1x1, 3x3, 1x1.",
}
_INIT_DOC = {
    "kaiming": "torchvision's: He normal (fan out) convolutions, unit norms, default Linear.",
    "glorot": "keras': Glorot uniform convolutions and Linear, zero biases, unit norms.",
}
_ACTIVATION = {
    "relu": ("relu", "nn.ReLU(inplace=True)"),
    "silu": ("act", "nn.SiLU(inplace=True)"),
    "gelu": ("act", "nn.GELU()"),
}


# --------------------------------------------------------------------------- formatting


def _call(
    head: str, args: list[str], indent: int, tail: str = "", *, table: bool = False
) -> list[str]:
    """`head(args)tail` laid out as ruff format would: on one line if it fits, else the
    arguments on one indented line, else one per line with a trailing comma (which ruff then
    keeps). `table` asks for one argument per line at once."""
    pad = INDENT * indent
    if table:
        return [f"{pad}{head}(", *(f"{pad}{INDENT}{a}," for a in args), f"{pad}){tail}"]
    one = f"{pad}{head}({', '.join(args)}){tail}"
    if len(one) <= LINE:
        return [one]
    inner = f"{pad}{INDENT}{', '.join(args)}"
    if len(inner) <= LINE:
        return [f"{pad}{head}(", inner, f"{pad}){tail}"]
    return [f"{pad}{head}(", *(f"{pad}{INDENT}{a}," for a in args), f"{pad}){tail}"]


def _float(value: float) -> str:
    return repr(float(value))


# How the papers spell the family names that spec names usually start with.
_SPELLINGS = (("resnext", "ResNeXt"), ("resnet", "ResNet"), ("preact", "PreAct"))


def _class_name(name: str) -> str:
    """`wide_resnet50_2` -> `WideResNet50_2`: CamelCase, keeping `_` before a digit, with the
    families spelled as their papers do."""
    parts = [p for p in name.split("_") if p]
    out = ""
    for part in parts:
        if out and part[0].isdigit():
            out += "_"
        for lower, spelled in _SPELLINGS:
            if part.lower().startswith(lower):
                part = spelled + part[len(lower) :]
                break
        out += part[0].upper() + part[1:]
    out = "".join(c for c in out if c.isalnum() or c == "_") or "Network"
    if not out[0].isalpha():
        out = "Net" + out
    return out


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _BlockClass:
    """One generated block class: a block kind with its fixed stride placement and biases."""

    kind: str
    stride_on: str
    biases: tuple[bool, ...]
    # Pre-activation blocks: which of their shortcut modules read the pre-activated input.
    preact_inputs: frozenset[bool]


def _shortcut_variant(shortcut: Shortcut) -> str:
    """The key `make_shortcut` dispatches on."""
    if shortcut.kind == "pad":
        return "pad_avgpool" if shortcut.downsample == "avgpool" else "pad"
    if shortcut.kind in ("project", "pool_project") and not shortcut.norm:
        return shortcut.kind + "_unnormed"
    return shortcut.kind


def _block_key(block: Block) -> tuple:
    bottleneck = block.kind.endswith("bottleneck")
    return (
        block.kind,
        block.stride_on if bottleneck else "3x3",
        tuple(c.bias for c in block.convs),
    )


class _Emitter:
    def __init__(self, network: Network):
        self.n = network
        conv = network.conventions
        self.act_attr, self.act_expr = _ACTIVATION[conv.activation]
        self.drop_path = conv.stochastic_depth > 0
        self.zero_last = conv.zero_last_norm
        # Block classes in order of first use; the shortcut kinds each class meets.
        keys: dict[tuple, set[bool]] = {}
        for run in (r for s in network.stages for r in s.runs):
            seen = keys.setdefault(_block_key(run.block), set())
            if run.block.shortcut.kind != "identity":
                seen.add(run.block.shortcut.from_preact)
        # A kind met with two stride placements (or bias patterns) gets one class for each,
        # named by where it strides, then numbered.
        names: dict[tuple, str] = {}
        for key in keys:
            same_kind = [k for k in keys if k[0] == key[0]]
            name = _BLOCK_CLASS[key[0]]
            if len({k[1] for k in same_kind}) > 1:
                name += "Stride" + key[1]
            base, number = name + ("_" if name[-1].isdigit() else ""), 2
            while name in names.values():
                name, number = f"{base}{number}", number + 1
            names[key] = name
        self.block_names = names
        self.block_classes = {
            key: _BlockClass(key[0], key[1], key[2], frozenset(seen)) for key, seen in keys.items()
        }
        self.shortcut_variants: dict[str, Shortcut] = {}
        for run in (r for s in network.stages for r in s.runs):
            shortcut = run.block.shortcut
            if shortcut.kind != "identity":
                self.shortcut_variants.setdefault(_shortcut_variant(shortcut), shortcut)
        self.model_name = _class_name(network.name)
        taken = {*names.values(), "Run", "DropPath", "Subsample", "PadShortcut", "AvgPadShortcut"}
        while self.model_name in taken:
            self.model_name += "Model"

    # ----------------------------------------------------------------- helpers

    def norm(self, channels: str) -> str:
        return f"norm({channels})"

    def helpers(self) -> list[str]:
        """Module-level helper classes and functions, each only when the network needs it."""
        out = []
        variants = self.shortcut_variants
        if "subsample" in variants:
            out.append(_render("subsample.py.j2"))
        for variant, name, pool in (
            ("pad", "PadShortcut", False),
            ("pad_avgpool", "AvgPadShortcut", True),
        ):
            if variant in variants:
                out.append(_render("pad.py.j2", name=name, pool=pool))
        if self.drop_path:
            out.append(_render("drop_path.py.j2"))
        return out

    def make_shortcut(self) -> str:
        if not self.shortcut_variants:
            return ""
        cases = []
        for variant, shortcut in sorted(self.shortcut_variants.items()):
            cases.append((variant, self._shortcut_expr(variant, shortcut)))
        return _render("make_shortcut.py.j2", cases=cases)

    def _shortcut_expr(self, variant: str, shortcut: Shortcut) -> list[str]:
        if variant == "subsample":
            return [f"{INDENT * 2}return Subsample(stride)"]
        if variant == "pad":
            return [f"{INDENT * 2}return PadShortcut(in_channels, out_channels, stride)"]
        if variant == "pad_avgpool":
            return [f"{INDENT * 2}return AvgPadShortcut(in_channels, out_channels, stride)"]
        conv = shortcut.conv
        layers = []
        if shortcut.kind == "pool_project":
            layers.append("nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)")
            layers.append(f"nn.Conv2d(in_channels, out_channels, kernel_size=1, bias={conv.bias})")
        else:
            layers.append(
                "nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, "
                f"bias={conv.bias})"
            )
        if shortcut.norm:
            layers.append(self.norm("out_channels"))
        return _call("return nn.Sequential", layers, 2)

    # ----------------------------------------------------------------- blocks

    def block_class(self, key: tuple) -> str:
        info = self.block_classes[key]
        preact = info.kind.startswith("preact_")
        bottleneck = info.kind.endswith("bottleneck")
        b = info.biases
        if bottleneck:
            s1 = ["stride=stride"] if info.stride_on == "1x1" else []
            s3 = ["stride=stride"] if info.stride_on == "3x3" else []
            convs = [
                ["in_channels", "mid_channels", "kernel_size=1", *s1, f"bias={b[0]}"],
                [
                    "mid_channels", "mid_channels", "kernel_size=3", *s3,
                    "padding=dilation", "dilation=dilation", "groups=groups", f"bias={b[1]}",
                ],
                ["mid_channels", "out_channels", "kernel_size=1", f"bias={b[2]}"],
            ]  # fmt: skip
        else:
            convs = [
                [
                    "in_channels", "mid_channels", "kernel_size=3", "stride=stride",
                    "padding=dilation", "dilation=dilation", "groups=groups", f"bias={b[0]}",
                ],
                [
                    "mid_channels", "out_channels", "kernel_size=3", "padding=dilation",
                    "dilation=dilation", "groups=groups", f"bias={b[1]}",
                ],
            ]  # fmt: skip
        init: list[str] = []
        widths_in = ["in_channels", "mid_channels", "mid_channels"]
        widths_out = (
            ["mid_channels", "mid_channels", "out_channels"]
            if bottleneck
            else ["mid_channels", "out_channels"]
        )
        for number, args in enumerate(convs, start=1):
            conv_lines = _call(f"self.conv{number} = nn.Conv2d", args, 2)
            if preact:
                init.append(f"{INDENT * 2}self.bn{number} = {self.norm(widths_in[number - 1])}")
                init += conv_lines
            else:
                init += conv_lines
                init.append(f"{INDENT * 2}self.bn{number} = {self.norm(widths_out[number - 1])}")
        init.append(f"{INDENT * 2}self.downsample = downsample")
        init.append(f"{INDENT * 2}self.{self.act_attr} = {self.act_expr}")
        mixed = len(info.preact_inputs) > 1
        if mixed:
            init.append(
                f"{INDENT * 2}# Projections see the pre-activated input (the paper's v2); "
                "parameter-free"
            )
            init.append(f"{INDENT * 2}# shortcuts the block's input.")
            init.append(f"{INDENT * 2}self.project = isinstance(downsample, nn.Sequential)")
        if self.drop_path:
            init.append(
                f"{INDENT * 2}self.drop_path = DropPath(drop_path) if drop_path > 0 else "
                "nn.Identity()"
            )
        act = f"self.{self.act_attr}"
        fwd: list[str] = []
        count = len(convs)
        if preact:
            fwd.append(f"out = {act}(self.bn1(x))")
            if mixed:
                fwd.append(
                    "shortcut = x if self.downsample is None else "
                    "self.downsample(out if self.project else x)"
                )
            else:
                source = "out" if True in info.preact_inputs else "x"
                fwd.append(
                    f"shortcut = x if self.downsample is None else self.downsample({source})"
                )
            fwd.append("out = self.conv1(out)")
            for number in range(2, count + 1):
                fwd.append(f"out = self.conv{number}({act}(self.bn{number}(out)))")
            branch = "self.drop_path(out)" if self.drop_path else "out"
            fwd.append(f"return {branch} + shortcut")
        else:
            fwd.append("shortcut = x if self.downsample is None else self.downsample(x)")
            for number in range(1, count):
                source = "x" if number == 1 else "out"
                fwd.append(f"out = {act}(self.bn{number}(self.conv{number}({source})))")
            fwd.append(f"out = self.bn{count}(self.conv{count}(out))")
            branch = "self.drop_path(out)" if self.drop_path else "out"
            fwd.append(f"return {act}({branch} + shortcut)")
        zero = None
        if self.zero_last:
            zero = f"self.conv{count}.weight" if preact else f"self.bn{count}.weight"
        signature = [
            "in_channels: int", "mid_channels: int", "out_channels: int", "stride: int = 1",
            "groups: int = 1", "dilation: int = 1", "downsample: nn.Module | None = None",
        ]  # fmt: skip
        if self.drop_path:
            signature.append("drop_path: float = 0.0")
        return _render(
            "block.py.j2",
            name=self.block_names[key],
            doc=_BLOCK_DOC[info.kind],
            signature=_call("def __init__", ["self", *signature], 1, " -> None:"),
            init=init,
            forward=[f"{INDENT * 2}{line}" for line in fwd],
            zero=zero,
        )

    # ----------------------------------------------------------------- model

    def stem(self) -> tuple[list[str], list[str]]:
        stem = self.n.stem
        init: list[str] = []
        convs = []
        for conv in stem.convs:
            args = [f"{conv.in_channels}, {conv.out_channels}", f"kernel_size={conv.kernel}"]
            if conv.stride != 1:
                args.append(f"stride={conv.stride}")
            if conv.padding:
                args.append(f"padding={conv.padding}")
            args.append(f"bias={conv.bias}")
            convs.append(args)
        if len(convs) == 1:
            init += _call("self.conv1 = nn.Conv2d", convs[0], 2)
        else:
            parts = []
            for position, args in enumerate(convs):
                parts.append(f"nn.Conv2d({', '.join(args)})")
                if stem.norm and position < len(convs) - 1:
                    parts.append(self.norm(str(stem.convs[position].out_channels)))
                    parts.append(self.act_expr)
            init += _call("self.conv1 = nn.Sequential", parts, 2)
        fwd = ["x = self.conv1(x)"]
        if stem.norm:
            init.append(f"{INDENT * 2}self.bn1 = {self.norm(str(stem.convs[-1].out_channels))}")
            fwd = [f"x = self.{self.act_attr}(self.bn1(self.conv1(x)))"]
        init.append(f"{INDENT * 2}self.{self.act_attr} = {self.act_expr}")
        if stem.pool is not None:
            p = stem.pool
            attr = "maxpool" if p.kind == "max" else "pool"
            layer = "nn.MaxPool2d" if p.kind == "max" else "nn.AvgPool2d"
            if p.zero_padded:  # see resdsl.ir.Pool: zeros, not -inf, as keras.applications
                init.append(
                    f"{INDENT * 2}self.{attr} = nn.Sequential(nn.ZeroPad2d({p.padding}), "
                    f"{layer}(kernel_size={p.kernel}, stride={p.stride}))"
                )
            else:
                init.append(
                    f"{INDENT * 2}self.{attr} = {layer}(kernel_size={p.kernel}, "
                    f"stride={p.stride}, padding={p.padding})"
                )
            fwd.append(f"x = self.{attr}(x)")
        return init, fwd

    def stages(self) -> tuple[list[str], list[str]]:
        init: list[str] = []
        fwd: list[str] = []
        for stage in self.n.stages:
            rows = []
            for run in stage.runs:
                b = run.block
                args = [
                    self.block_names[_block_key(b)],
                    str(run.count),
                    str(b.in_channels),
                    str(b.mid_channels),
                    str(b.out_channels),
                ]
                if b.stride != 1:
                    args.append(f"stride={b.stride}")
                groups = b.convs[1].groups if len(b.convs) == 3 else b.convs[0].groups
                if groups != 1:
                    args.append(f"groups={groups}")
                if b.dilation != 1:
                    args.append(f"dilation={b.dilation}")
                if b.shortcut.kind != "identity":
                    args.append(f'shortcut="{_shortcut_variant(b.shortcut)}"')
                rows.append(f"Run({', '.join(args)})")
            if self.drop_path:
                rows.append(f"first_index={stage.runs[0].first_index}")
            init += _call(f"self.{stage.name} = make_stage", rows, 2, table=True)
            fwd.append(f"x = self.{stage.name}(x)")
        return init, fwd

    def head(self) -> tuple[list[str], list[str]]:
        h = self.n.head
        init, fwd = [], []
        if h.norm:
            init.append(f"{INDENT * 2}self.norm = {self.norm(str(h.in_features))}")
            fwd.append(f"x = self.{self.act_attr}(self.norm(x))")
        init.append(f"{INDENT * 2}self.avgpool = nn.AdaptiveAvgPool2d((1, 1))")
        fwd += ["x = self.avgpool(x)", "x = torch.flatten(x, 1)"]
        if h.dropout > 0:
            init.append(f"{INDENT * 2}self.dropout = nn.Dropout(p={_float(h.dropout)})")
            fwd.append("x = self.dropout(x)")
        init.append(f"{INDENT * 2}self.fc = nn.Linear({h.in_features}, num_classes)")
        fwd.append("return self.fc(x)")
        return init, fwd

    def module(self) -> str:
        n = self.n
        conv = n.conventions
        stem_init, stem_fwd = self.stem()
        stage_init, stage_fwd = self.stages()
        head_init, head_fwd = self.head()
        keys = list(self.block_classes)
        zero_note = None
        if self.zero_last:
            zero_note = (
                "zero_last_norm: each residual branch starts at zero (its last norm's weight in\n"
                "post-activation blocks, its last convolution's weight in pre-activation ones)."
            )
        return _render(
            "module.py.j2",
            network=n.name,
            source=n.source.file,
            sha256=n.source.sha256,
            input=str(n.input),
            classes=n.classes,
            params=f"{n.params:,}",
            blocks=n.total_blocks,
            init_scheme=conv.init,
            zero_note=zero_note,
            eps=_float(conv.norm_eps),
            momentum=_float(conv.norm_momentum),
            drop_path=self.drop_path,
            drop_path_rate=_float(conv.stochastic_depth),
            total_blocks=n.total_blocks,
            helpers=self.helpers(),
            make_shortcut=self.make_shortcut(),
            block_classes=[self.block_class(k) for k in keys],
            model=self.model_name,
            stem_init=stem_init,
            stage_init=stage_init,
            head_init=head_init,
            forward=[f"{INDENT * 2}{line}" for line in (*stem_fwd, *stage_fwd, *head_fwd)],
            glorot=conv.init == "glorot",
            init_doc=_INIT_DOC[conv.init],
            uses_functional=bool({"pad", "pad_avgpool"} & set(self.shortcut_variants)),
            zero_last=self.zero_last,
        )


# --------------------------------------------------------------------------- templates


@lru_cache(maxsize=1)
def _environment():
    from resdsl.backend import template_environment

    return template_environment(Path(__file__).parent / "templates")


def _render(template: str, **values) -> str:
    return _environment().get_template(template).render(**values)


class TorchBackend:
    """PyTorch: a standalone module with the model class and `build_model`."""

    name = "torch"
    suffix = ".py"

    def emit(self, network: Network) -> str:
        """The generated module's text: deterministic, formatted as ruff format would."""
        return _Emitter(network).module()

    def unsupported(self, network: Network) -> list[str]:
        """PyTorch expresses every feature of the IR."""
        return []


__all__ = ["TorchBackend", "state_dict_layout"]
