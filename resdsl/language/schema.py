"""What a spec may say: every setting with its reader, the kinds (stems, block types, shortcut
policies, norms, inits, heads) with their arguments and defaults, and the limits on sizes.

The resolve phase checks specs against these tables; :mod:`resdsl.tooling.catalogue` documents the
language from them; :mod:`resdsl.tooling.lexer` keeps its word lists equal to them (a test
compares).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from resdsl.diagnostics import core as dx
from resdsl.ir import Call, Dims, Name, Value
from resdsl.ir.naming import NAMINGS
from resdsl.language.values import (
    BadValue,
    Reader,
    alternatives,
    choice,
    describe,
    number_in,
    on_off,
    positive_number,
    spelling,
    whole_number,
)

# --------------------------------------------------------------------------- limits
# Generous for any real network, small enough that checking never hangs or exhausts memory.
MAX_BLOCKS = 10_000  # in a whole network
MAX_STAGES = 64
MAX_WIDTH = 16_384
MAX_INPUT_SIZE = 8_192
MAX_INPUT_CHANNELS = 1_024
MAX_CLASSES = 1_000_000
MAX_STRIDE = 8
MAX_KERNEL = 15
MAX_DILATION = 16
MAX_EXPANSION = 64
# A network's parameters: 10 billion is 37 GiB of float32 weights, beyond any ResNet trained so
# far (the largest in timm's registry has 0.19 billion); `--max-params` raises it.
MAX_PARAMS = 10_000_000_000

# Attribute, method and layer names the generated models use: a stage may not take them.
# A stage is an attribute of the generated PyTorch model (`self.layer1`, as torchvision names
# it) and a prefix of Keras layer names, so its name must not be one the model already has:
# what the generated code itself defines (the stem's and head's layers, its methods, the
# layer names of keras.applications' stem and head) ...
GENERATED_NAMES = frozenset(
    {
        "conv1", "bn1", "relu", "act", "act1", "maxpool", "avgpool", "pool", "fc", "dropout",
        "head", "post_bn", "post_relu", "avg_pool", "predictions", "pool1", "stem", "stages",
        "forward", "forward_features", "forward_stages", "reset_parameters", "training",
        "features", "flatten", "norm", "input", "final_conv", "top_conv", "top_bn",
        "layer0", "pool0", "last_linear", "global_pool", "trunk_output",
        "model", "self", "x",
    }
)  # fmt: skip
# ... and what torch.nn.Module defines (its public attributes in torch 2.14, and `training`,
# which it sets on each instance; names with a leading underscore are refused as a whole).
# tests/property/test_hardening.py checks this list against the installed torch.
MODULE_ATTRIBUTES = frozenset(
    {
        "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init",
        "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr",
        "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule",
        "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
        "named_modules", "named_parameters", "parameters", "register_backward_hook",
        "register_buffer", "register_forward_hook", "register_forward_pre_hook",
        "register_full_backward_hook", "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
        "register_module", "register_parameter", "register_state_dict_post_hook",
        "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule",
        "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
        "zero_grad",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- kinds with arguments


class Kind(NamedTuple):
    """A named kind (a preset, a block type, a policy) with its arguments' readers and defaults."""

    defaults: dict[str, Any]
    readers: dict[str, Reader]


STEMS = {
    "imagenet": Kind(
        {"channels": 64, "kernel": 7, "stride": 2, "width": 32, "pool": "max", "norm": True},
        {},
    ),
    "cifar": Kind(
        {"channels": 16, "kernel": 3, "stride": 1, "width": 16, "pool": "none", "norm": True},
        {},
    ),
    # ResNet-C: three 3x3 convolutions (`width`, `width`, `channels`), the first strided;
    # `first_width` sets the first's alone (timm's tiered stem, 24-32-64).
    "deep": Kind(
        {
            "channels": 64, "kernel": 3, "stride": 2, "width": 32, "first_width": None,
            "pool": "max", "norm": True,
        },
        {},
    ),
    # NFNet's stem as timm's byobnet (`quad`): four 3x3 convolutions of `channels` / 8, / 4,
    # / 2 and `channels`, the first strided; `plain` of them (from the first) without a norm
    # or activation (timm's `quad2`: 2).
    "quad": Kind(
        {"channels": 128, "kernel": 3, "stride": 2, "width": 32, "pool": "max", "norm": True},
        {},
    ),
}  # fmt: skip
for _stem in STEMS.values():
    _stem.defaults.setdefault("first_width", None)
    # How the max pool pads: None, with zeros where no norm and activation come before it
    # (keras.applications' V2 stems, timm's BiT) and else by ignoring the padding (PyTorch's
    # -inf, which a ReLU's output makes the same); `zero` or `ignore` to say so.
    _stem.defaults.setdefault("pool_pad", None)
    # A norm and activation after the deep stem's last convolution too (off: timm's
    # pre-activation ResNetV2 `d` and `t` stems, whose first block normalises it)
    _stem.defaults.setdefault("last_norm", True)
    # The last convolution's stride: 2 where a stem without a pool still reduces by 4 (timm's
    # byobnet stems).
    _stem.defaults.setdefault("last_stride", 1)
    _stem.defaults.setdefault("plain", 0)
_STEM_READERS = {
    "channels": whole_number(1, MAX_WIDTH),
    "kernel": whole_number(1, MAX_KERNEL),
    "stride": whole_number(1, MAX_STRIDE),
    "width": whole_number(1, MAX_WIDTH),
    "first_width": whole_number(1, MAX_WIDTH),
    # "conv": a strided 3x3 convolution with its norm and activation (ResNet-RS); "max_ceil":
    # Caffe's 3x3 max pool at stride 2, unpadded, its size rounded up (timm's legacy SENets)
    "pool": choice("max", "max_ceil", "avg", "conv", "none"),
    "norm": on_off,
    "last_stride": whole_number(1, MAX_STRIDE),
    "plain": whole_number(0, 3),
    "pool_pad": choice("zero", "ignore"),
    "last_norm": on_off,
}
# Only the deep stem has intermediate convolutions for `width` to size, and the deep and quad
# stems' convolutions are 3x3 by definition (ResNet-C), so they take no `kernel`; only they
# have a last convolution after the first, and only the quad stem convolutions before its
# first norm.
_ONLY = {
    "width": {"deep"},
    "first_width": {"deep"},
    "kernel": {"imagenet", "cifar"},
    "last_stride": {"deep", "quad"},
    "plain": {"quad"},
    "last_norm": {"deep"},
}
for _name, _stem in STEMS.items():
    _stem.readers.update({k: v for k, v in _STEM_READERS.items() if _name in _ONLY.get(k, {_name})})


class _BlockKinds(Mapping[str, Kind]):
    """The block kinds as kinds with arguments, read from their recipes
    (:mod:`resdsl.blocks`): a plugin's kind is one as soon as it is registered."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def __getitem__(self, name: str) -> Kind:
        from resdsl.blocks import COMMON_DEFAULTS, RECIPES

        recipe = RECIPES[name]
        kind = self._kinds.get(name)
        if kind is None:
            defaults = {**COMMON_DEFAULTS, **recipe.defaults}
            kind = self._kinds[name] = Kind(defaults, dict(recipe.arguments))
        return kind

    def __iter__(self) -> Iterator[str]:
        from resdsl.blocks import RECIPES

        return iter(RECIPES)

    def __len__(self) -> int:
        from resdsl.blocks import RECIPES

        return len(RECIPES)


BLOCKS = _BlockKinds()

_SHORTCUT_DEFAULTS = {
    "downsample": "subsample", "stride_only": "project", "kernel": 1, "transition": "identity",
    "identity": "input",
}  # fmt: skip
# A strided projection's kernel: odd, so that PyTorch's padding centres it.
_PROJECTION_KERNEL = whole_number(1, MAX_KERNEL, odd=True)
# What an identity shortcut of a pre-activation block adds: the block's input (timm's resnetv2,
# the 2016 paper) or its first norm and activation's output (timm's RegNetV, `preactivated`).
_IDENTITY_SOURCE = choice("input", "preactivated")
SHORTCUTS = {
    # `transition: none`: no shortcut where the shape changes (RegNetZ's transition blocks);
    # elsewhere an identity shortcut adds a block's shape-changing input, which is E301.
    "identity": Kind(
        _SHORTCUT_DEFAULTS,
        {"transition": choice("identity", "none"), "identity": _IDENTITY_SOURCE},
    ),
    "A": Kind(_SHORTCUT_DEFAULTS, {"downsample": choice("subsample", "avgpool")}),
    "B": Kind(
        _SHORTCUT_DEFAULTS,
        {
            "stride_only": choice("project", "subsample"),
            "kernel": _PROJECTION_KERNEL,
            "identity": _IDENTITY_SOURCE,
        },
    ),
    "C": Kind(_SHORTCUT_DEFAULTS, {"kernel": _PROJECTION_KERNEL}),
    "D": Kind(_SHORTCUT_DEFAULTS, {"identity": _IDENTITY_SOURCE}),
    # No shortcut: the branch alone, the paper's plain network.
    "none": Kind(_SHORTCUT_DEFAULTS, {}),
}
_NORM_DEFAULTS = {"eps": 1e-5, "momentum": 0.1, "groups": 32, "size": None}
NORMS = {
    "batch": Kind(_NORM_DEFAULTS, {"eps": positive_number(1.0), "momentum": number_in(0.0, 1.0)}),
    # Group norm (Wu and He; timm's resnet50_gn): 32 groups by default, no running statistics;
    # or groups of `size` channels each, however wide the norm (timm's `group_size`).
    "group": Kind(
        _NORM_DEFAULTS,
        {
            "eps": positive_number(1.0),
            "groups": whole_number(1, MAX_WIDTH),
            "size": whole_number(1, MAX_WIDTH),
        },
    ),
    # Norms that hold their nonlinearity, so that the network's activation after each is
    # theirs (timm's resnetv2_50d_evos and _frn): EvoNorm-S0 (Liu et al., 2020), x times
    # sigmoid(v x) over the standard deviation of its group of channels, scaled and shifted;
    # Filter Response Normalization with its thresholded linear unit (Singh and Krishnan,
    # 2020), x over the root mean square of its channel's map, scaled, shifted and floored
    # at a learnt tau.
    "evonorm_s0": Kind(
        _NORM_DEFAULTS, {"eps": positive_number(1.0), "groups": whole_number(1, MAX_WIDTH)}
    ),
    "frn": Kind(_NORM_DEFAULTS, {"eps": positive_number(1.0)}),
    # No normalisation layers (the unnormalised ResNets of signal-propagation studies):
    # `zero_last_norm` then zeroes each branch's last convolution.
    "none": Kind(_NORM_DEFAULTS, {}),
}
_ATTENTION_DEFAULTS = {
    "reduction": 16.0, "width": None, "divisor": 8, "gate": "sigmoid",
    "kernel": None, "gamma": 2.0, "beta": 1.0, "fuse": "add", "block_size": 7, "groups": 2,
    "dropout": 0.2, "after": "last", "of": "channels", "activation": "relu",
}  # fmt: skip
MAX_BLOCK_SIZE = 64
# Where the attention sits: after the branch's last convolution (timm's resnet.py), or after
# a bottleneck's 3x3 and its activation, over the inner width (timm's byobnet and RegNetY).
# "activation": after the branch's last norm and an activation of its own (timm's legacy
# SE-ResNet basic block).
_AFTER = choice("last", "3x3", "activation")
ATTENTIONS = {
    "none": Kind(_ATTENTION_DEFAULTS, {}),
    # Squeeze-excitation: the reduced width is `width`, or the channels over `reduction`
    # rounded to a multiple of `divisor`; `of: input`, the block's input channels over it
    # (RegNetY's, timm's and torchvision's `se_ratio` of `in_chs`). Its activation is ReLU, or
    # `activation: network`, the network's (timm's RegNets with SiLU).
    "se": Kind(
        _ATTENTION_DEFAULTS,
        {
            "reduction": positive_number(MAX_WIDTH),
            "width": whole_number(1, MAX_WIDTH),
            "divisor": whole_number(1, MAX_WIDTH),
            "gate": choice("sigmoid", "hard_sigmoid"),
            "after": _AFTER,
            "of": choice("channels", "input"),
            "activation": choice("relu", "network"),
        },
    ),
    # Efficient channel attention: a fixed odd `kernel`, or the one timm computes from the
    # channels with `gamma` and `beta`.
    "eca": Kind(
        _ATTENTION_DEFAULTS,
        {
            "kernel": whole_number(1, MAX_KERNEL, odd=True),
            "gamma": positive_number(64),
            "beta": number_in(-64.0, 64.0),
            "after": _AFTER,
        },
    ),
    # Global context (GCNet): a softmax-weighted sum over the positions, through a 1x1, layer
    # norm, ReLU and 1x1 MLP, `fuse`d by adding it to every position (timm's `gca`) or by
    # gating the channels (`gc`); the MLP's width as squeeze-excitation's, timm's channels / 8.
    "gc": Kind(
        {**_ATTENTION_DEFAULTS, "reduction": 8.0, "divisor": 1},
        {
            "reduction": positive_number(MAX_WIDTH),
            "width": whole_number(1, MAX_WIDTH),
            "divisor": whole_number(1, MAX_WIDTH),
            "fuse": choice("add", "scale"),
            "after": _AFTER,
        },
    ),
    # Bilinear attention (BAT): `groups` pairs of `block_size`-square matrices mix the reduced
    # channels along the rows and the columns; the reduced width as squeeze-excitation's,
    # timm's channels / 4 to a multiple of 8; channel `dropout` in training (timm's 0.2).
    "bat": Kind(
        {**_ATTENTION_DEFAULTS, "reduction": 4.0},
        {
            "reduction": positive_number(MAX_WIDTH),
            "width": whole_number(1, MAX_WIDTH),
            "divisor": whole_number(1, MAX_WIDTH),
            "block_size": whole_number(1, MAX_BLOCK_SIZE),
            "groups": whole_number(1, MAX_WIDTH),
            "dropout": number_in(0.0, 1.0, high_open=True),
            "after": _AFTER,
        },
    ),
}
ANTI_ALIASES = {
    "none": Kind({"size": 3}, {}),
    # A binomial filter of `size` taps (timm: 3 or 5).
    "blur": Kind({"size": 3}, {"size": whole_number(2, 7)}),
    # A 2x2 average pool at stride 2.
    "avg": Kind({"size": 3}, {}),
}
# The convolutions: plain, or weight-standardized (Qiao et al.; BiT's StdConv2d): each output
# channel's weights less their mean, over their standard deviation (`eps` added to the
# variance), before convolving.
CONVS = {
    "plain": Kind({"eps": 1e-6}, {}),
    "standardized": Kind({"eps": 1e-6}, {"eps": positive_number(1.0)}),
}
INITS = {
    name: Kind({"zero_last_norm": False}, {"zero_last_norm": on_off})
    for name in ("kaiming", "glorot")
}
HEADS = {
    # `features`: a 1x1 convolution to that width, with its norm and activation, before the
    # pool (timm's `num_features` and `final_conv`).
    # `act: on` without a norm: the activation alone before the pool (timm's RegNetZ and
    # RegNetV `final_conv`); by default the activation follows the norm.
    "avgpool": Kind(
        {"dropout": 0.0, "norm": None, "features": None, "act": None, "classifier": "linear"},
        {
            "dropout": number_in(0.0, 1.0, high_open=True),
            "norm": on_off,
            "features": whole_number(1, MAX_WIDTH),
            "act": on_off,
            # a 1x1 convolution on the pooled features (timm's ResNetV2 and BiT), or a Linear
            "classifier": choice("linear", "conv"),
        },
    )
}
# Stage generators: `stages regnet(...)` writes the stages from RegNet's six numbers (see
# resdsl.language.generators); the arguments without a default are required.
MAX_GENERATED_DEPTH = 1_000
GENERATORS = {
    "regnet": Kind(
        {
            "w0": None, "wa": None, "wm": None, "depth": None, "group_size": None,
            "bottleneck": 1.0, "quantum": 8, "stride": 2, "rounding": "nearest",
        },
        {
            "w0": whole_number(1, MAX_WIDTH),
            "wa": number_in(0.0, float(MAX_WIDTH)),
            "wm": positive_number(64),
            "depth": whole_number(1, MAX_GENERATED_DEPTH),
            "group_size": whole_number(1, MAX_WIDTH),
            "bottleneck": positive_number(MAX_EXPANSION),
            "quantum": whole_number(1, 64),
            "stride": whole_number(1, MAX_STRIDE),
            # each stage's inner width to a multiple of its group size: the nearest (pycls and
            # timm), or torchvision's make_divisible, never below 90% (timm's `_tv` nets)
            "rounding": choice("nearest", "divisible"),
        },
    )
}  # fmt: skip


def read_kind(value: Value, what: str, kinds: dict[str, Kind]) -> tuple[str, dict[str, Any]]:
    """`name` or `name(arg: value, ...)` against a table of kinds: the kind's name and every
    argument's value, defaults filled in."""
    if isinstance(value, Call):
        head, args = value.name, value.args
    elif isinstance(value, Name):
        head, args = value, ()
    else:
        raise BadValue(
            dx.E_BAD_VALUE,
            f"{what} takes one of {alternatives(kinds)}, not {describe(value)}",
            value.span,
            help=f"write one of {alternatives(kinds)}, with arguments in parentheses if any",
        )
    if head.text not in kinds:
        hint, fixes = spelling(head.text, kinds, head.span)
        raise BadValue(
            dx.E_UNKNOWN_KIND,
            f"unknown {what} `{head.text}`",
            head.span,
            help=hint or f"expected one of {alternatives(kinds)}",
            suggestions=fixes,
        )
    kind = kinds[head.text]
    values = dict(kind.defaults)
    seen: set[str] = set()
    problems: list[BadValue] = []  # every argument's, reported together (resolve's others)
    for arg in args:
        try:
            _read_argument(arg, head, what, kind, seen, values)
        except BadValue as bad:
            problems.append(bad)
    if problems:
        problems[0].others = tuple(problems[1:])
        raise problems[0]
    return head.text, values


def _read_argument(arg, head: Name, what: str, kind: Kind, seen: set[str], values: dict) -> None:
    """One argument of a kind's call, read into `values`; a BadValue where it does not fit."""
    name = arg.name.text
    if name not in kind.readers:
        hint, fixes = spelling(name, kind.readers, arg.name.span)
        accepted = (
            f"`{head.text}` takes {alternatives(sorted(kind.readers))}"
            if kind.readers
            else (f"`{head.text}` takes no arguments")
        )
        raise BadValue(
            dx.E_UNKNOWN_ARG,
            f"unknown argument `{name}` for {what} `{head.text}`",
            arg.name.span,
            help=hint or accepted,
            suggestions=fixes,
        )
    if name in seen:
        raise BadValue(
            dx.E_DUPLICATE,
            f"argument `{name}` given twice",
            arg.name.span,
            help="remove one of them",
        )
    seen.add(name)
    values[name] = kind.readers[name](arg.value, f"`{name}`")


def kind_reader(what: str, kinds: dict[str, Kind]) -> Reader:
    """A reader of a setting whose value is one of `kinds`, called `what` in messages."""
    return lambda value, _what: read_kind(value, what, kinds)


# --------------------------------------------------------------------------- settings


def read_input(value: Value, what: str) -> tuple[int, int, int]:
    """The `input` setting: CHANNELSxHEIGHTxWIDTH."""
    if not isinstance(value, Dims) or len(value.parts) != 3:
        raise BadValue(
            dx.E_BAD_VALUE,
            f"input takes CHANNELSxHEIGHTxWIDTH such as `3x224x224`, not {describe(value)}"
            if not isinstance(value, Dims)
            else f"input takes three sizes, CHANNELSxHEIGHTxWIDTH, not `{value.text}`",
            value.span,
            help="write e.g. `input 3x224x224` (channels x height x width)",
        )
    c, h, w = value.parts
    if min(c, h, w) < 1:
        raise BadValue(
            dx.E_NOT_POSITIVE,
            f"input sizes must be positive, not `{value.text}`",
            value.span,
            help="write e.g. `input 3x224x224` (channels x height x width)",
        )
    if c > MAX_INPUT_CHANNELS or max(h, w) > MAX_INPUT_SIZE:
        raise BadValue(
            dx.E_LIMIT,
            f"input `{value.text}` is beyond the limits "
            f"({MAX_INPUT_CHANNELS} channels, {MAX_INPUT_SIZE} pixels a side)",
            value.span,
            help="resdsl refuses sizes no real network uses rather than run out of memory",
        )
    return c, h, w


class Field(NamedTuple):
    """A setting: how its value is read, and where it may appear."""

    reader: Reader
    stage: bool = False  # may also appear inside a stage's braces
    network: bool = True


FIELDS: dict[str, Field] = {
    "input": Field(read_input),
    "classes": Field(whole_number(1, MAX_CLASSES)),
    "stem": Field(kind_reader("stem preset", STEMS)),
    "block": Field(kind_reader("block type", BLOCKS), stage=True),
    "shortcut": Field(kind_reader("shortcut policy", SHORTCUTS), stage=True),
    "strided_block": Field(choice("first", "last"), stage=True),
    "conv_bias": Field(choice("off", "on", "unnormalized")),
    "attention": Field(kind_reader("attention", ATTENTIONS), stage=True),
    "anti_alias": Field(kind_reader("anti-aliasing", ANTI_ALIASES), stage=True),
    "norm": Field(kind_reader("norm", NORMS)),
    "conv": Field(kind_reader("convolution", CONVS)),
    "activation": Field(choice("relu", "silu", "gelu")),
    "init": Field(kind_reader("init scheme", INITS)),
    "stochastic_depth": Field(number_in(0.0, 1.0, high_open=True)),
    "head": Field(kind_reader("head", HEADS)),
    # The state-dict layout: how layers are named in PyTorch and Keras (resdsl.ir.naming).
    "naming": Field(choice(*NAMINGS)),
    # the stages from a generator, in place of `stage` lines
    "stages": Field(kind_reader("stage generator", GENERATORS)),
    "dilation": Field(whole_number(1, MAX_DILATION), stage=True, network=False),
    "waive": Field(choice("halve_double"), stage=True, network=False),
}
# Each setting whose value is a kind, with its table, in the order the reference lists them.
KIND_TABLES: dict[str, Mapping[str, Kind]] = {
    "stem": STEMS,
    "block": BLOCKS,
    "shortcut": SHORTCUTS,
    "attention": ATTENTIONS,
    "anti_alias": ANTI_ALIASES,
    "norm": NORMS,
    "conv": CONVS,
    "init": INITS,
    "head": HEADS,
    "stages": GENERATORS,
}
REQUIRED = ("input", "classes", "block")
# Settings that decide shapes: when one is wrong, elaborating with its default would only
# produce misleading follow-on errors.
SHAPING = ("stem", "strided_block", "stages")
