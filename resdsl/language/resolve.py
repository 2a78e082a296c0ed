"""Phase 2: merged declarations to the typed spec (:class:`resdsl.ir.NetworkSpec`).

Takes a network after `extends` (see :mod:`resdsl.language.extends`) and checks every setting,
preset and argument against the tables of :mod:`resdsl.language.schema`, filling defaults. Unknown
names get "did you mean"; every value keeps its span.
"""

from __future__ import annotations

import keyword
from typing import Any

from resdsl.blocks import COMMON_ARGUMENTS, RECIPES
from resdsl.diagnostics import core as dx
from resdsl.diagnostics.core import Diagnostics
from resdsl.ir import (
    FUSED_NORMS,
    AntiAliasSpec,
    AttentionSpec,
    BlockSpec,
    ConvSpec,
    HeadSpec,
    InitSpec,
    Name,
    NetworkSpec,
    NormSpec,
    Setting,
    ShortcutSpec,
    Span,
    StageDecl,
    StageSpec,
    StemSpec,
    Waiver,
)
from resdsl.language.extends import Merged
from resdsl.language.generators import expand
from resdsl.language.schema import (
    ANTI_ALIASES,
    ATTENTIONS,
    CONVS,
    FIELDS,
    GENERATED_NAMES,
    HEADS,
    INITS,
    MAX_BLOCKS,
    MAX_STAGES,
    MAX_STRIDE,
    MAX_WIDTH,
    MODULE_ATTRIBUTES,
    NORMS,
    REQUIRED,
    SHAPING,
    SHORTCUTS,
    STEMS,
)
from resdsl.language.values import BadValue, alternatives, spelling, whole_number


def build_spec(merged: Merged, diags: Diagnostics) -> NetworkSpec | None:
    """Typed spec from merged declarations.

    A wrong setting that cannot change shapes (norm, init, activation, ...) falls back to its
    default so that the later passes still run and every error of the file is reported at
    once; None when something that shapes the network is wrong.
    """
    decl = merged.decl
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for key, setting in merged.settings.items():
        result = _read_setting(setting, diags, in_stage=False)
        if result is not _MISSING:
            values[key] = result
            spans[key] = setting.span
    # After a syntax error a setting or stage may be missing only because its line did not
    # parse (the parser skipped it): what is missing is then not reported.
    damaged = any(d.code in SYNTAX_CODES for d in diags.items)
    for key in REQUIRED:
        if key not in merged.settings and not damaged:
            diags.add(
                dx.E_MISSING,
                f"network `{decl.name.text}` has no `{key}`",
                decl.name.span,
                label=f"`{key}` is required",
                help=_REQUIRED_HELP[key],
            )
    generator = values.get("stages")
    if generator is not None and merged.stages:
        first = next(iter(merged.stages.values()))
        diags.add(
            dx.E_STAGES_TWICE,
            f"network `{decl.name.text}` lists stages and generates them with `stages`",
            first.span,
            label="a listed stage",
            notes=(dx.Label(spans["stages"], "the generator"),),
            help="remove the `stage` lines, or the `stages` setting",
        )
        return None
    if not merged.stages and "stages" not in merged.settings and not damaged:
        diags.add(
            dx.E_MISSING,
            f"network `{decl.name.text}` has no stages",
            decl.name.span,
            label="at least one stage is required",
            help="add a stage, e.g. `stage layer1: 2 x 64`",
        )
    _check_identifier(decl.name, "network", diags, reserved=False)

    block = _block_spec(values.get("block"), spans.get("block"))
    shortcut = _shortcut_spec(
        values.get("shortcut", ("B", SHORTCUTS["B"].defaults)), spans.get("shortcut")
    )
    strided_block = values.get("strided_block", "first")
    attention = _attention_spec(values.get("attention"), spans.get("attention"))
    anti_alias = _anti_alias_spec(values.get("anti_alias"), spans.get("anti_alias"))
    stages = []
    total_blocks = 0
    if generator is not None:
        stages = _generated_stages(
            merged.settings["stages"],
            generator,
            block,
            {
                "shortcut": shortcut,
                "attention": attention,
                "anti_alias": anti_alias,
                "strided_block": strided_block,
            },
            values.get("naming", "resnet"),
            diags,
        )
        if stages is None:
            return None
        total_blocks = sum(stage.blocks for stage in stages)
    for stage in merged.stages.values():
        defaults = {
            "block": block,
            "shortcut": shortcut,
            "attention": attention,
            "anti_alias": anti_alias,
            "strided_block": strided_block,
        }
        spec = _stage_spec(stage, defaults, diags)
        if spec is not None:
            total_blocks += spec.blocks
            stages.append(spec)
    if len(merged.stages) > MAX_STAGES:
        diags.add(
            dx.E_LIMIT,
            f"{len(merged.stages)} stages; the limit is {MAX_STAGES}",
            decl.name.span,
            help="real residual networks have four or five stages",
        )
    if total_blocks > MAX_BLOCKS:
        diags.add(
            dx.E_LIMIT,
            f"the network has {total_blocks:,} blocks; the limit is {MAX_BLOCKS:,}",
            decl.name.span,
            help="ResNet-1202, the deepest in the paper, has 600",
        )
    # A required setting that is missing is as fatal as one that is wrong (found by fuzzing).
    shaping_ok = all(key in values for key in REQUIRED) and all(
        key in values for key in SHAPING if key in merged.settings
    )
    limits_ok = len(merged.stages) <= MAX_STAGES and total_blocks <= MAX_BLOCKS
    if not (shaping_ok and limits_ok and block is not None and stages):
        return None
    if generator is None and len(stages) != len(merged.stages):
        return None

    stem_name, stem_args = values.get("stem", ("imagenet", STEMS["imagenet"].defaults))
    if stem_args.get("pool") == "max_ceil" and anti_alias.kind != "none":
        # anti-aliasing replaces the stem's max pool or unstrides it; Caffe's strides itself
        diags.add(
            dx.E_NOT_FOR_KIND,
            "the stem's `pool: max_ceil` (Caffe's, rounding its size up) cannot be anti-aliased",
            anti_alias.span or decl.span,
            label=f"anti_alias {anti_alias.kind}",
            help="use `pool: max` with anti-aliasing, or no anti-aliasing",
        )
        return None
    norm_kind, norm_args = values.get("norm", ("batch", NORMS["batch"].defaults))
    conv_kind, conv_args = values.get("conv", ("plain", CONVS["plain"].defaults))
    if not _own_layers_only(stages, conv_kind, norm_kind, spans, diags):
        return None
    init_name, init_args = values.get("init", ("kaiming", INITS["kaiming"].defaults))
    head_args = values.get("head", ("avgpool", HEADS["avgpool"].defaults))[1]
    return NetworkSpec(
        name=decl.name.text,
        file=decl.span.file,
        input=values["input"],
        classes=values["classes"],
        stem=StemSpec(preset=stem_name, span=spans.get("stem"), **stem_args),
        conv_bias=values.get("conv_bias", "off"),
        norm=NormSpec(kind=norm_kind, span=spans.get("norm"), **norm_args),
        conv=ConvSpec(kind=conv_kind, span=spans.get("conv"), **conv_args),
        activation=values.get("activation", "relu"),
        anti_alias=anti_alias,
        init=InitSpec(scheme=init_name, span=spans.get("init"), **init_args),
        stochastic_depth=values.get("stochastic_depth", 0.0),
        head=HeadSpec(span=spans.get("head"), **head_args),
        naming=values.get("naming", "resnet"),
        stages=tuple(stages),
        span=decl.span,
        spans=spans,
    )


def _own_layers_only(stages, conv_kind: str, norm_kind: str, spans, diags: Diagnostics) -> bool:
    """Weight standardization and EvoNorm-S0 or FRN (whose nonlinearity replaces the activation
    after each norm) rewrite the residual blocks' own layers: with blocks holding layers of
    their own (Res2Net's, SKNet's, ResNeSt's paths), or bilinear attention's norms, they are
    E402."""
    from resdsl.blocks.residual import RECIPES as RESIDUAL  # basic, bottleneck, edge, preact

    own = {recipe.name for recipe in RESIDUAL}
    composite = sorted({s.block.name for s in stages if s.block.name not in own})
    bilinear = any(s.attention.kind == "bat" for s in stages)
    for setting, applies, what in (
        ("conv", conv_kind == "standardized", "weight standardization"),
        ("norm", norm_kind in FUSED_NORMS, f"`norm {norm_kind}`"),
    ):
        inside = f"`{composite[0]}` blocks hold" if composite else None
        if applies and setting == "norm" and bilinear and not inside:
            inside = "bilinear attention holds"
        if applies and inside:
            diags.add(
                dx.E_NOT_FOR_KIND,
                f"{what} applies to the residual blocks' own layers; {inside} layers of "
                "their own",
                spans[setting],
                label=setting,
                help="use basic, bottleneck or edge blocks (pre-activation or not)"
                + (", without bilinear attention" if setting == "norm" else ""),
            )
            return False
    return True


# What the parser reports where a line does not parse (see parser._parse_recovering).
SYNTAX_CODES = frozenset({dx.E_SYNTAX, dx.E_UNEXPECTED_CHAR, dx.E_UNEXPECTED_EOF})

_REQUIRED_HELP = {
    "input": "add e.g. `input 3x224x224` (channels x height x width)",
    "classes": "add e.g. `classes 1000`",
    "block": "add e.g. `block basic` or `block bottleneck`",
}

_MISSING = object()


def _read_setting(setting: Setting, diags: Diagnostics, *, in_stage: bool) -> Any:
    key = setting.key.text
    field = FIELDS.get(key)
    allowed = [k for k, f in FIELDS.items() if (f.stage if in_stage else f.network)]
    if field is None:
        hint, fixes = spelling(key, allowed, setting.key.span)
        diags.add(
            dx.E_UNKNOWN_SETTING,
            f"unknown setting `{key}`" + (" in a stage" if in_stage else ""),
            setting.key.span,
            help=hint or f"settings here: {alternatives(allowed)}",
            suggestions=fixes,
        )
        return _MISSING
    if (in_stage and not field.stage) or (not in_stage and not field.network):
        where = "inside a stage's braces" if in_stage else "at network level"
        diags.add(
            dx.E_NOT_HERE,
            f"`{key}` cannot be set {where}",
            setting.key.span,
            help=(
                f"a stage's braces take {alternatives([k for k, f in FIELDS.items() if f.stage])}"
                if in_stage
                else f"`{key}` belongs inside a stage's braces: `stage NAME: N x W {{ {key} ... }}`"
            ),
        )
        return _MISSING
    try:
        return field.reader(setting.value, f"`{key}`")
    except BadValue as bad:
        for problem in (bad, *getattr(bad, "others", ())):  # every argument's of a call
            diags.add(
                problem.code,
                problem.message,
                problem.span,
                help=problem.help,
                suggestions=problem.suggestions,
            )
        return _MISSING


def _block_spec(value, span: Span | None) -> BlockSpec | None:
    if value is None:
        return None
    name, args = value
    recipe = RECIPES[name]
    common = {key: args.pop(key) for key in COMMON_ARGUMENTS}
    return BlockSpec(
        name=name,
        layout=recipe.layout,
        preact=recipe.preact,
        span=span,
        options=tuple(sorted(args.items())),
        **common,
    )


def _shortcut_spec(value, span: Span | None) -> ShortcutSpec:
    policy, args = value
    return ShortcutSpec(policy=policy, span=span, **args)


def _attention_spec(value, span: Span | None) -> AttentionSpec:
    kind, args = value or ("none", ATTENTIONS["none"].defaults)
    return AttentionSpec(kind=kind, span=span, **args)


def _anti_alias_spec(value, span: Span | None) -> AntiAliasSpec:
    kind, args = value or ("none", ANTI_ALIASES["none"].defaults)
    return AntiAliasSpec(kind=kind, span=span, **args)


# How a stage's own setting of each overridable key becomes its spec.
_STAGE_SPECS = {
    "block": _block_spec,
    "shortcut": _shortcut_spec,
    "attention": _attention_spec,
    "anti_alias": _anti_alias_spec,
}


def _stage_spec(stage: StageDecl, defaults: dict[str, Any], diags: Diagnostics) -> StageSpec | None:
    """A stage's spec; `defaults` holds the network's block, shortcut, attention,
    anti-aliasing and strided block, which the stage's own settings override."""
    ok = _check_identifier(stage.name, "stage", diags, reserved=True)
    spans = {"blocks": stage.blocks.span, "width": stage.width.span, "stage": stage.span}
    numbers = {}
    for what, number, reader in (
        ("blocks", stage.blocks, whole_number(1, MAX_BLOCKS)),
        ("width", stage.width, whole_number(1, MAX_WIDTH)),
        ("stride", stage.stride, whole_number(1, MAX_STRIDE)),
    ):
        if number is None:
            continue
        try:
            numbers[what] = reader(number, f"the {what} of stage `{stage.name.text}`")
        except BadValue as bad:
            diags.add(bad.code, bad.message, bad.span, help=bad.help, suggestions=bad.suggestions)
            ok = False
    if stage.stride is not None:
        spans["stride"] = stage.stride.span
    overrides: dict[str, Any] = {}
    waivers = []
    seen: dict[str, Setting] = {}
    for setting in stage.settings:
        key = setting.key.text
        if key in seen and key != "waive":
            diags.add(
                dx.E_DUPLICATE,
                f"`{key}` is set twice in stage `{stage.name.text}`",
                setting.key.span,
                notes=(dx.Label(seen[key].key.span, "first set here"),),
                help="remove one of them",
            )
            ok = False
            continue
        seen[key] = setting
        result = _read_setting(setting, diags, in_stage=True)
        if result is _MISSING:
            ok = False
            continue
        spans[key] = setting.span
        if key == "waive":
            waivers.append(Waiver(rule=result, span=setting.span))
        else:
            overrides[key] = result
    own = {
        key: make(overrides[key], spans[key]) if key in overrides else defaults[key]
        for key, make in _STAGE_SPECS.items()
    }
    if not ok or own["block"] is None:
        return None
    return StageSpec(
        name=stage.name.text,
        blocks=numbers["blocks"],
        width=numbers["width"],
        stride=numbers.get("stride", 1),
        dilation=overrides.get("dilation", 1),
        **own,
        strided_block=overrides.get("strided_block", defaults["strided_block"]),
        waivers=tuple(waivers),
        span=stage.span,
        spans=spans,
    )


def _generated_stages(
    setting: Setting,
    generator: tuple[str, dict[str, Any]],
    block: BlockSpec | None,
    defaults: dict[str, Any],
    naming: str,
    diags: Diagnostics,
) -> list[StageSpec] | None:
    """The stages a generator writes (`stages regnet(...)`), named as the naming scheme names
    stages (timm's regnet.py: `s1` ...), each block taking the stage's group size and inner
    width. The generator owns those: a block that sets its own groups or inner width is E402."""
    from resdsl.ir.naming import NAMINGS

    _, args = generator
    call = setting.value
    if block is None:
        return None
    owned = {
        "groups": block.groups != 1,
        "group_width": block.group_width is not None,
        "group_size": block.group_size is not None,
        "width_factor": block.width_factor != 1,
    }
    given = [name for name, set_ in owned.items() if set_]
    if given:
        diags.add(
            dx.E_NOT_FOR_KIND,
            "the generator sets each stage's groups and inner width; the block sets "
            + ", ".join(f"`{name}`" for name in given),
            block.span or setting.span,
            label="block",
            notes=(dx.Label(setting.span, "the generator"),),
            help="remove them from the block: `group_size` and `bottleneck` go to `regnet(...)`",
        )
        return None
    generated = expand(call, args, diags)
    if generated is None:
        return None
    template = NAMINGS[naming].roles["stage"][0]
    spans = {key: setting.span for key in ("blocks", "width", "stride", "stage")}
    return [
        StageSpec(
            name=template.format(number=number, position=number - 1),
            blocks=stage.blocks,
            width=stage.width,
            stride=stage.stride,
            dilation=1,
            block=block.model_copy(
                update={"group_size": stage.group_size, "width_factor": stage.bottleneck}
            ),
            **{key: defaults[key] for key in ("shortcut", "attention", "anti_alias")},
            strided_block=defaults["strided_block"],
            waivers=(),
            span=setting.span,
            spans=dict(spans),
            generated=True,
        )
        for number, stage in enumerate(generated, start=1)
    ]


def _check_identifier(name: Name, what: str, diags: Diagnostics, *, reserved: bool) -> bool:
    """Names reach generated Python as attributes and layer names: they must be safe there."""
    # A network's name only names the model class, which the backends suffix until it shadows
    # nothing (`class` gives `ClassNet`); a stage's is an attribute and a layer prefix as is.
    text = name.text
    problem = None
    if reserved and (keyword.iskeyword(text) or keyword.issoftkeyword(text)):
        problem = "is a Python keyword"
    elif text.startswith("__"):
        problem = "starts with a double underscore"
    elif reserved and text.startswith("_"):
        problem = "starts with an underscore, as the frameworks' internal names do"
    elif reserved and text in MODULE_ATTRIBUTES:
        problem = "is an attribute of every PyTorch module (`nn.Module`)"
    elif reserved and text in GENERATED_NAMES:
        problem = "is already used by the generated model (a layer, a method or a variable)"
    elif len(text) > 64:
        problem = "is longer than 64 characters"
    if problem is None:
        return True
    if what == "network":
        # A shorter name for a long one; for a dunder, the name without its underscores.
        stem = text.strip("_")[:20] or "net"
        suggestion = stem if len(text) > 64 else f"network_{stem}"
    else:
        suggestion = "layer1` or `conv2"
    diags.add(
        dx.E_BAD_NAME,
        f"{what} name `{text[:64]}{'...' if len(text) > 64 else ''}` {problem}",
        name.span,
        help=f"rename the {what}, e.g. `{suggestion}`",
    )
    return False
