"""Phase 3: the typed spec to the elaborated network (:class:`resdsl.ir.Network`).

Pure arithmetic and naming: every layer of the stem, the blocks and the head, typed, with its
PyTorch and Keras names (chosen here, once, for every consumer), and the channels, strides,
shortcut kinds, shapes, parameters and multiply-accumulates of every block. It never rejects
anything; the validation passes read its result and report.
Sizes that would vanish are kept at zero so that a broken spec still elaborates.

A stage is elaborated as at most three runs of identical blocks, so the cost does not grow
with depth.
"""

from __future__ import annotations

import hashlib
import os
import re

from resdsl.blocks import RECIPES, Builder, anti_alias_layer
from resdsl.elaboration.attention import after_3x3, attention_layer
from resdsl.ir import (
    FUSED_NORMS,
    ActLayer,
    Block,
    BlockRun,
    BlockSpec,
    Conv,
    Conventions,
    ConvLayer,
    DropoutLayer,
    GlobalPoolLayer,
    Head,
    IdentityLayer,
    LinearLayer,
    Network,
    NetworkSpec,
    NormLayer,
    PadChannelsLayer,
    Pool,
    PoolLayer,
    Shape,
    Shortcut,
    Source,
    Stage,
    StageSpec,
    Stem,
)
from resdsl.ir.naming import NAMINGS


def elaborate(spec: NetworkSpec, source_text: str) -> Network:
    ctx = _Context(spec)
    c, h, w = spec.input
    stem = _stem(spec, Shape(channels=c, height=h, width=w), ctx)
    shape = stem.out_shape
    stages = []
    index = 0
    dilation = 1
    for number, stage_spec in enumerate(spec.stages):
        stage = _stage(stage_spec, number, index, shape, dilation, ctx)
        stages.append(stage)
        shape = stage.out_shape
        index += stage.blocks
        dilation = stage_spec.dilation
    head = _head(spec, shape, stages, ctx)
    if spec.conv.kind == "standardized":
        stem, stages, head = _standardize(stem, stages, head)
    if spec.norm.kind in FUSED_NORMS:
        stem, stages, head = _fuse_activations(stem, stages, head)
    parts = [stem, *stages, head]
    return Network(
        name=spec.name,
        source=Source(
            file=_safe_file_name(spec.file),
            sha256=hashlib.sha256(source_text.encode("utf-8")).hexdigest(),
        ),
        input=Shape(channels=c, height=h, width=w),
        classes=spec.classes,
        conventions=Conventions(
            conv_bias=spec.conv_bias,
            norm=spec.norm.kind,
            norm_eps=spec.norm.eps,
            norm_momentum=spec.norm.momentum,
            norm_groups=spec.norm.groups,
            norm_group_size=spec.norm.size,
            conv_eps=spec.conv.eps if spec.conv.kind == "standardized" else None,
            activation=spec.activation,
            init=spec.init.scheme,
            zero_last_norm=spec.init.zero_last_norm,
            stochastic_depth=spec.stochastic_depth,
        ),
        stem=stem,
        stages=tuple(stages),
        head=head,
        total_blocks=index,
        params=sum(p.params for p in parts),
        norm_stats=sum(p.norm_stats for p in parts),
        macs=sum(p.macs for p in parts),
        output_shape=(spec.classes,),
        span=spec.span,
        spans=spec.spans,
        containers=ctx.naming.containers,
        block_containers=ctx.naming.block_containers,
    )


def _fuse_activations(stem: Stem, stages: list[Stage], head: Head):
    """EvoNorm-S0 and FRN hold their nonlinearity: the activation after each is theirs, and
    goes (timm's `norm_layer=EvoNorm2dS0` in place of BatchNormAct2d). Parameter-free, so the
    costs stand. (The stem, whose PyTorch names may count positions in a Sequential, never
    makes them.)"""

    def layers(items) -> tuple:
        kept: list = []
        for x in items:
            after_norm = kept and isinstance(kept[-1], NormLayer) and kept[-1].kind in FUSED_NORMS
            if not (isinstance(x, ActLayer) and after_norm):
                kept.append(x)
        return tuple(kept)

    return _rewrite(stem, stages, head, layers, shortcuts=False)


def _standardize(stem: Stem, stages: list[Stage], head: Head):
    """`conv standardized`: every convolution of the stem, the blocks (their own, not their
    attention's) and the shortcuts weight-standardized (BiT's StdConv2d); the classifier is
    not."""

    def layers(items) -> tuple:
        return tuple(
            x.model_copy(update={"conv": x.conv.model_copy(update={"standardized": True})})
            if isinstance(x, ConvLayer)
            else x
            for x in items
        )

    return _rewrite(stem, stages, head, layers, shortcuts=True)


def _rewrite(stem: Stem, stages: list[Stage], head: Head, layers, shortcuts: bool):
    """The stem, stages and head with each of their layer lists (every block's pre-activation,
    branch and post-activation, and with `shortcuts` its shortcut's) rewritten by `layers`."""

    def block(b: Block) -> Block:
        update = {"pre": layers(b.pre), "branch": layers(b.branch), "post": layers(b.post)}
        if shortcuts:
            update["shortcut"] = b.shortcut.model_copy(update={"layers": layers(b.shortcut.layers)})
        return b.model_copy(update=update)

    stages = [
        s.model_copy(
            update={"runs": tuple(r.model_copy(update={"block": block(r.block)}) for r in s.runs)}
        )
        for s in stages
    ]
    stem = stem.model_copy(update={"layers": layers(stem.layers)})
    return stem, stages, head.model_copy(update={"layers": layers(head.layers)})


def _safe_file_name(path: str) -> str:
    """The spec's file name as it may appear in generated code: without its folder (output must
    not change with the directory it was compiled from) and with anything outside a plain
    file-name alphabet replaced, so no quote, backslash or newline can reach a docstring."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(path))[:128] or "spec.res"


def _bias_rule(conv_bias: str):
    """Whether a convolution has a bias, given whether a norm follows it."""
    if conv_bias == "on":
        return lambda normed: True
    if conv_bias == "off":
        return lambda normed: False
    return lambda normed: not normed  # "unnormalized": keras' V2 nets


def walk(layers, shape: Shape) -> tuple[Shape, int, int, int]:
    """The output shape of `layers` applied in order to `shape`, and their multiply-accumulates,
    parameters and norm statistics, as each layer counts them (`Layer.cost`)."""
    macs = params = norm_stats = 0
    for layer in layers:
        cost = layer.cost(shape)
        shape = layer.out_shape(shape)
        macs, params, norm_stats = (
            macs + cost.macs,
            params + cost.params,
            norm_stats + cost.norm_stats,
        )
    return shape, macs, params, norm_stats


def _stem(spec: NetworkSpec, shape: Shape, ctx: _Context) -> Stem:
    """The stem's layers. One convolution is torchvision's `conv1`, `bn1`; several are timm's
    deep stem, a `conv1` Sequential (conv, norm, act, ...) ending with the last convolution,
    whose norm is `bn1`. Keras names follow keras.applications: `conv1_conv`, `conv1_bn`, or
    `conv1_1_conv` ... `conv1_3_bn` for the deep stem. The pool is timm's `maxpool` (keras'
    `pool1_pool`), whatever replaces it: a max pool at stride 1 and a blur pool, a 2x2 average
    pool (anti-aliasing), or a strided convolution with its norm and activation (ResNet-RS)."""
    s = spec.stem
    bias = ctx.bias
    plain = 0  # the first convolutions of a quad stem that have no norm or activation
    if s.preset in ("deep", "quad"):
        if s.preset == "deep":
            outs = [s.first_width or s.width, s.width, s.channels]
        else:
            outs = quad_widths(s.channels)
            plain = s.plain
        ins = [shape.channels, *outs[:-1]]
        strides = [s.stride] + [1] * (len(outs) - 2) + [s.last_stride]
        convs = [
            Conv(
                in_channels=i,
                out_channels=o,
                kernel=3,
                stride=st,
                padding=1,
                bias=bias(s.norm and number > plain and (s.last_norm or number < len(outs))),
            )
            for number, (i, o, st) in enumerate(zip(ins, outs, strides, strict=True), start=1)
        ]
    else:
        convs = [
            Conv(
                in_channels=shape.channels,
                out_channels=s.channels,
                kernel=s.kernel,
                stride=s.stride,
                padding=s.kernel // 2,
                bias=bias(s.norm),
            )
        ]
    layers: list = []
    deep = len(convs) > 1
    for number, conv in enumerate(convs, start=1):
        last = number == len(convs) or None  # a deep stem's last convolution's norm and act
        if number <= plain:
            layers.append(ConvLayer(**ctx.names("stem.plain", i=len(layers), n=number), conv=conv))
            continue
        layers.append(
            ConvLayer(**_stem_names(ctx, "conv", len(convs), number, len(layers)), conv=conv)
        )
        if s.norm and (s.last_norm or not last):
            names = _stem_names(ctx, "norm", len(convs), number, len(layers), "bn", last)
            layers += ctx.norm(names, conv.out_channels)
            if ctx.norm_kind in FUSED_NORMS:  # its activation is the norm's (EvoNorm, FRN)
                continue
            names = _stem_names(ctx, "act", len(convs), number, len(layers), ctx.keras_act, last)
            layers.append(ActLayer(**names))
    layers += _stem_pool(spec, s.channels if not deep else convs[-1].out_channels, ctx)
    out, macs, params, norm_stats = walk(layers, shape)
    return Stem(
        preset=s.preset,
        layers=tuple(layers),
        norm=s.norm,
        out_shape=out,
        params=params,
        norm_stats=norm_stats,
        macs=macs,
    )


def _stem_names(
    ctx: _Context, role: str, convs: int, number: int, index: int, part: str = "", last=None
) -> dict[str, str]:
    """A stem layer's names: one convolution's (`stem.conv`, `stem.norm`, `stem.act`), or a
    deep stem's, positions `index` of one Sequential but for the last norm and activation."""
    if convs == 1:
        # a convolution with no norm after it is the stem itself where the naming says so
        bare = role == "conv" and not ctx.stem_norm
        return ctx.names("stem.bare" if bare else f"stem.{role}")
    if last:
        return ctx.names(f"stem.deep.last_{role}", n=number)
    return ctx.names("stem.deep", i=index, n=number, part=part or role)


def _stem_pool(spec: NetworkSpec, channels: int, ctx: _Context) -> list:
    """The layers of the stem's pool, under timm's `maxpool` (a Sequential where several) and
    keras' `pool1_*`."""
    s, aa = spec.stem, spec.anti_alias.kind
    if s.pool == "none":
        return []
    if s.pool == "avg":
        return [
            PoolLayer(
                **ctx.names("stem.avg_pool"), pool=Pool(kind="avg", kernel=3, stride=2, padding=1)
            )
        ]
    layers: list = []

    def part(index: int, what: str) -> dict[str, str]:  # in the pool's Sequential
        return ctx.names("stem.pool.part", i=index, part=what)

    if s.pool == "conv":
        conv = Conv(
            in_channels=channels,
            out_channels=channels,
            kernel=3,
            stride=1 if aa != "none" else 2,
            padding=1,
            bias=ctx.bias(s.norm),
        )
        layers.append(ConvLayer(**part(0, "conv"), conv=conv))
        if aa != "none":
            layers.append(anti_alias_layer(spec.anti_alias, part(1, "aa"), channels, 2))
        if s.norm:
            layers += ctx.norm(part(len(layers), "bn"), channels)
            if ctx.norm_kind not in FUSED_NORMS:
                layers.append(ActLayer(**part(len(layers), ctx.keras_act)))
        return layers
    if s.pool == "max_ceil":  # Caffe's: unpadded, rounding its size up (anti-aliasing: E402)
        pool = Pool(kind="max", kernel=3, stride=2, padding=0, ceil=True)
        return [PoolLayer(**ctx.names("stem.pool"), pool=pool)]
    if aa == "avg":  # timm: the max pool gives way to a 2x2 average pool
        pool = Pool(kind="avg", kernel=2, stride=2, padding=0)
        return [PoolLayer(**ctx.names("stem.pool"), pool=pool)]
    # nothing normalises and rectifies the stem's output (no norm, or none after a deep stem's
    # last convolution): keras.applications' V2 nets and BiT pad with zeros, timm's ResNetV2
    # ignores the padding (`pool_pad`)
    bare = not s.norm or not s.last_norm
    zero_padded = bare if s.pool_pad is None else s.pool_pad == "zero"
    if aa == "blur":  # timm: the max pool at stride 1, then the blur pool strides
        pool = Pool(kind="max", kernel=3, stride=1, padding=1, zero_padded=zero_padded)
        return [
            PoolLayer(**part(0, "pool"), pool=pool),
            anti_alias_layer(spec.anti_alias, part(1, "aa"), channels, 2),
        ]
    pool = Pool(kind="max", kernel=3, stride=2, padding=1, zero_padded=zero_padded)
    return [PoolLayer(**ctx.names("stem.pool"), pool=pool)]


def quad_widths(channels: int) -> list[int]:
    """The quad stem's convolutions' widths: NFNet's stem as timm's byobnet, c/8, c/4, c/2, c."""
    return [max(1, round(channels / 2**k)) for k in (3, 2, 1, 0)]


def inner_width(block: BlockSpec, width: int) -> int:
    """The width of a block's inner convolutions.

    With a `group_width` (ResNeXt's "d" in 32x4d) it is torchvision's
    int(width * group_width / 64) * groups; otherwise int(width * width_factor) (Wide ResNet),
    which `groups` then splits and must divide. Zero when the arithmetic rounds away (reported
    by the blocks pass; elaboration carries on with one channel).
    """
    if block.group_width is not None:
        return int(width * block.group_width / 64) * block.groups
    return int(width * block.width_factor)


def out_width(block: BlockSpec, width: int) -> int:
    return max(1, int(width * block.expansion))


def _stage(
    spec: StageSpec, number: int, first_index: int, shape: Shape, previous: int, ctx: _Context
) -> Stage:
    """A stage's runs of blocks. Its first block dilates by the stage before's dilation
    (`previous`), the others by its own, as torchvision's `replace_stride_with_dilation` and
    timm's `output_stride` do."""
    n = spec.blocks
    strided = 0 if spec.strided_block == "first" else n - 1
    # Segments of positions sharing one configuration: the first block, the body, a strided last.
    segments = [(0, 1)]
    if spec.strided_block == "first" or n == 1:
        segments.append((1, n - 1))
    else:
        segments += [(1, n - 2), (n - 1, 1)]
    runs: list[BlockRun] = []
    for start, count in segments:
        if count <= 0:
            continue
        stride = spec.stride if start == strided else 1
        block = _block(spec, shape, stride, previous if start == 0 else spec.dilation, ctx)
        shape = block.out_shape
        if runs and runs[-1].block == block:
            last = runs[-1]
            runs[-1] = last.model_copy(update={"count": last.count + count})
        else:
            runs.append(BlockRun(first_index=first_index + start, count=count, block=block))
    return Stage(
        name=spec.name,
        index=number,
        blocks=n,
        width=spec.width,
        stride=spec.stride,
        strided_block=spec.strided_block,
        dilation=spec.dilation,
        block=spec.block,
        runs=tuple(runs),
        in_shape=runs[0].block.in_shape,
        out_shape=shape,
        params=sum(r.count * r.block.params for r in runs),
        norm_stats=sum(r.count * r.block.norm_stats for r in runs),
        macs=sum(r.count * r.block.macs for r in runs),
        waivers=spec.waivers,
        span=spec.span,
        spans=spec.spans,
        block_names=ctx.naming.roles["block"],
        generated=spec.generated,
        letter=_keras2_letter(runs[0].block),
    )


def _keras2_letter(block: Block) -> str:
    """The block's letter in Keras 2's RegNet names: V pre-activation, Z inverted (wider
    inside), Y with attention, else X."""
    if block.preact:
        return "V"
    if block.mid_channels > block.out_channels:
        return "Z"
    return "Y" if block.attention != "none" else "X"


# Keras name parts that are also the layer's attribute in timm's ConvNormAct or Sequentials;
# any other part is an activation's name, whose attribute is `act`.
_UNIT_PARTS = frozenset({"conv", "bn", "pool", "pad", "aa", ""})


class _Context:
    """What every block of a network shares: the bias rule, the activation's names, the init."""

    def __init__(self, spec: NetworkSpec):
        self.norm_kind = spec.norm.kind
        self.normalised = self.norm_kind != "none"
        rule = _bias_rule(spec.conv_bias)
        # Whether a convolution has a bias, given whether a norm follows it (`norm none`: never).
        self.bias = lambda normed: rule(normed and self.normalised)
        # PyTorch: one activation module per owner, torchvision's `relu` (timm's `act` for the
        # others); Keras: the activation's name in each layer name, keras.applications' way.
        self.torch_act = "relu" if spec.activation == "relu" else "act"
        self.keras_act = spec.activation
        self.zero_last = spec.init.zero_last_norm
        self.naming = NAMINGS[spec.naming]
        self.stem_norm = spec.stem.norm

    def names(self, role: str, **fields) -> dict[str, str]:
        """A layer's `torch` and `keras` names for `role` in the spec's naming scheme. A layer's
        `unit`, its attribute in a ConvNormAct, follows from its Keras `part` unless given."""
        naming = self.naming
        part = fields.get("part", "")
        fields.setdefault("unit", part if part in _UNIT_PARTS else "act")
        # Keras 2's RegNet words for a block's convolution n, where a caller has no better
        fields.setdefault("conv", f"conv_{fields.get('n', '')}")
        fields.setdefault("step", "")
        # timm's words for a layer's kind (the ResNetV2 stem's `conv1`, `norm1`)
        fields.setdefault("layer", {"conv": "conv", "bn": "norm"}.get(part, "act"))
        fields.setdefault("at", f".{fields['i']}" if "i" in fields else "")
        return {
            "torch": naming.torch(role, act=self.torch_act, **fields),
            "keras": naming.keras(role, act=self.keras_act, **fields),
        }

    def norm(self, names: dict[str, str], channels: int, **fields) -> list[NormLayer]:
        """A norm of the network's kind, named `names` (see :meth:`names`); none for
        `norm none`."""
        if not self.normalised:
            return []
        return [NormLayer(**names, channels=channels, kind=self.norm_kind, **fields)]


def _block(spec: StageSpec, shape: Shape, stride: int, dilation: int, ctx: _Context) -> Block:
    """A block: its kind's recipe builds the layers (:mod:`resdsl.blocks`); here the widths,
    where it anti-aliases, the channel attention that ends its branch, the shortcut and the
    costs, which every kind shares."""
    b = spec.block
    recipe = RECIPES[b.name]
    mid = max(1, inner_width(b, spec.width))
    if b.group_size is not None and recipe.grouped:  # the groups from the width
        b = b.model_copy(update={"groups": max(1, mid // b.group_size)})
    first = max(1, mid // b.reduce_first)
    out = out_width(b, spec.width)
    # Anti-aliasing where the block strides, and (timm's `use_aa`) where a dilated stage's
    # first block changes the dilation: at stride 1 there, a blur filters and an average pool
    # of one pixel changes nothing, as timm's.
    redilates = dilation != spec.dilation
    aa = spec.anti_alias if spec.anti_alias.kind != "none" and (stride > 1 or redilates) else None
    widths = {"in": shape.channels, "first": first, "mid": mid, "out": out}
    built = recipe.build(Builder(b, widths, stride, dilation, spec.dilation, aa, ctx))
    pre, post = built.pre, built.post
    branch = list(built.branch)
    inner = after_3x3(branch, recipe.preact) if spec.attention.after == "3x3" else None
    width = "mid" if inner is not None else "out"
    attention = attention_layer(spec.attention, widths, width, ctx)
    if attention is not None and spec.attention.after == "activation":
        # timm's legacy SE-ResNet basic block: the activation after the last norm, then the
        # attention (a branch that ends otherwise is the attention pass's E402)
        convs = [x for x in branch if isinstance(x, ConvLayer)]
        # numbered as the branch's last layer (its norm: `3_bn` gives `3_relu`), and in
        # byobnet's names its ConvNormAct's activation
        kernel = "kxk" if convs and convs[-1].conv.kernel > 1 else "1x1"
        number = branch[-1].keras.partition("_")[0]
        branch.append(ActLayer(**ctx.names("block.act", n=number, shape=kernel)))
    if attention is not None:
        branch.insert(len(branch) if inner is None else inner, attention)
    branch_shape, macs, params, norm_stats = walk((*pre, *branch), shape)
    shortcut = _shortcut(spec, shape, branch_shape, stride, dilation, recipe.preact, ctx)
    _, shortcut_macs, shortcut_params, shortcut_stats = walk(shortcut.layers, shape)
    post_shape, post_macs, post_params, post_stats = walk(post, branch_shape)
    return Block(
        kind=b.name,
        layout=recipe.layout,
        preact=recipe.preact,
        attention=spec.attention.kind,
        anti_alias=aa.kind if aa is not None else "none",
        in_channels=shape.channels,
        first_channels=first,
        mid_channels=mid,
        out_channels=out,
        stride=stride,
        groups=b.groups if recipe.grouped else 1,
        dilation=dilation,
        stage_dilation=spec.dilation,
        pre=tuple(pre),
        branch=tuple(branch),
        shortcut=shortcut,
        # The Keras name of the addition; a plain block has none.
        add=""
        if shortcut.kind == "none"
        else ctx.naming.keras("block.preact_add" if recipe.preact else "block.add"),
        post=tuple(post),
        shortcut_first=ctx.naming.shortcut_first,
        attention_after=spec.attention.after,
        in_shape=shape,
        out_shape=post_shape,
        params=params + shortcut_params + post_params,
        norm_stats=norm_stats + shortcut_stats + post_stats,
        macs=macs + shortcut_macs + post_macs,
    )


def _shortcut(
    spec: StageSpec,
    shape: Shape,
    out: Shape,
    stride: int,
    dilation: int,
    preact: bool,
    ctx: _Context,
) -> Shortcut:
    """The shortcut the policy gives this block, with its layers under torchvision's
    `downsample.{i}` and keras.applications' `0_conv`, `0_bn` (`0_pool`, `0_pad` for the
    parameter-free and pooling ones). `dilation` is the block's own (timm dilates a shortcut's
    wider kernel by it)."""
    policy = spec.shortcut
    if policy.policy == "none":
        return Shortcut(kind="none", stride=stride)
    same_width = shape.channels == out.channels
    reshapes = not same_width or stride != 1
    if policy.policy == "identity" and policy.transition == "none" and reshapes:
        return Shortcut(kind="none", stride=stride, transition=True)
    if policy.policy == "identity" or (same_width and stride == 1 and policy.policy != "C"):
        # a pre-activation block's identity adds its input, or (timm's RegNetV) the output of
        # its first norm and activation
        preactivated = preact and policy.identity == "preactivated"
        return Shortcut(
            kind="identity", stride=1, source="preactivated" if preactivated else "input"
        )
    layers: list = []
    role = "shortcut.preact" if preact else "shortcut"
    if policy.policy == "A" or (
        policy.policy == "B" and same_width and policy.stride_only == "subsample"
    ):
        averaged = policy.policy == "A" and policy.downsample == "avgpool" and not same_width
        if stride > 1:
            layers.append(_shortcut_pool(stride, averaged, ctx))
        if same_width:
            return Shortcut(kind="subsample", stride=stride, layers=tuple(layers))
        grow = out.channels - shape.channels
        layers.append(
            PadChannelsLayer(
                **ctx.names("shortcut", i=len(layers), part="pad"),
                before=max(0, grow // 2),
                after=max(0, grow - grow // 2),
            )
        )
        return Shortcut(kind="pad", stride=stride, layers=tuple(layers))
    # A projection: normalised afterwards unless the block is pre-activation (its input is).
    pooled = policy.policy == "D" and (stride > 1 or spec.dilation > 1)
    if pooled and stride > 1:
        layers.append(_shortcut_pool(stride, True, ctx, role))
    elif pooled:
        # A dilated stage's first block does not stride, and timm's ResNet-D shortcut still
        # averages there: 2x2 at stride 1, zeros after, in the average (AvgPool2dSame).
        same = Pool(kind="avg", kernel=2, stride=1, padding=0, pad_after=1)
        layers.append(PoolLayer(**ctx.names("shortcut", i=0, part="pool"), pool=same))
    elif policy.policy == "D":
        # timm keeps the pool's place with an identity: the convolution is `downsample.1`.
        identity = ctx.names(role, i=0, part="", unit="pool")
        layers.append(IdentityLayer(torch=identity["torch"], keras=""))  # no layer in Keras
    # timm's `down_kernel_size`: a wider kernel only where the projection strides or its stage
    # dilates, dilated by the block's dilation and padded to keep the size.
    kernel = policy.kernel if (stride > 1 or spec.dilation > 1) and not pooled else 1
    conv_dilation = dilation if kernel > 1 else 1
    conv = Conv(
        in_channels=shape.channels,
        out_channels=out.channels,
        kernel=kernel,
        stride=1 if pooled else stride,
        # Centred whatever the stride, as the branch's convolutions (timm's get_padding adds
        # (stride - 1) // 2, which is 0 at its stride of 2 but would misalign a 1x1 at 3).
        padding=conv_dilation * (kernel - 1) // 2,
        dilation=conv_dilation,
        bias=ctx.bias(not preact),
    )
    several = bool(layers) or not preact
    at = {} if several else {"at": ""}  # one convolution alone: no Sequential to index
    layers.append(
        ConvLayer(
            **ctx.names(role, i=len(layers), part="conv", **at),
            conv=conv,
            strided=not pooled,
        )
    )
    if not preact:
        layers += ctx.norm(ctx.names("shortcut", i=len(layers), part="bn"), out.channels)
    return Shortcut(
        kind="pool_project" if pooled else "project",
        stride=stride,
        layers=tuple(layers),
        source="preactivated" if preact else "input",
    )


def _shortcut_pool(stride: int, averaged: bool, ctx: _Context, role: str = "shortcut") -> PoolLayer:
    """A shortcut's downsampling: every `stride`-th pixel (a 1x1 max pool), or the average of
    each `stride`x`stride` window, rounding up and ignoring padding (timm's ResNet-D)."""
    if averaged:
        pool = Pool(kind="avg", kernel=stride, stride=stride, padding=0, ceil=True)
    else:
        pool = Pool(kind="max", kernel=1, stride=stride, padding=0)
    return PoolLayer(**ctx.names(role, i=0, part="pool"), pool=pool, strided=True)


def _head(spec: NetworkSpec, shape: Shape, stages: list[Stage], ctx: _Context) -> Head:
    """A pre-activation net's final norm (timm's `norm`, keras' `post_bn`), the pool, dropout
    and the classifier (`fc`, `predictions`)."""
    last_preact = stages[-1].runs[-1].block.preact if stages else False
    norm = spec.head.norm if spec.head.norm is not None else last_preact
    act = spec.head.act if spec.head.act is not None else norm
    features = shape.channels
    layers: list = []
    if norm:
        layers += ctx.norm(ctx.names("head.norm"), features)
    if act:
        layers.append(ActLayer(**ctx.names("head.act")))
    if spec.head.features is not None:  # timm's `final_conv`
        conv = Conv(
            in_channels=features,
            out_channels=spec.head.features,
            kernel=1,
            bias=ctx.bias(True),
        )
        layers.append(ConvLayer(**ctx.names("head.conv"), conv=conv))
        layers += ctx.norm(ctx.names("head.conv_norm"), spec.head.features)
        layers.append(ActLayer(**ctx.names("head.conv_act")))
        features = spec.head.features
    layers.append(GlobalPoolLayer(**ctx.names("head.pool")))
    if spec.head.dropout > 0:
        layers.append(DropoutLayer(**ctx.names("head.dropout"), rate=spec.head.dropout))
    names = ctx.names("head.classifier")
    conv = spec.head.classifier == "conv"  # timm's ResNetV2: a 1x1 convolution
    layers.append(LinearLayer(**names, in_features=features, out_features=spec.classes, conv=conv))
    _, macs, params, norm_stats = walk(layers, shape)
    return Head(
        layers=tuple(layers),
        norm=norm,
        dropout=spec.head.dropout,
        in_features=features,
        classes=spec.classes,
        params=params,
        norm_stats=norm_stats,
        macs=macs,
    )
