"""How the generated code reads: the block classes' and shortcut functions' names
(`Bottleneck`, `BottleneckStride1x1`, `project`, `pool_project`) and the block docstrings,
from the layers, for both backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resdsl.blocks import RECIPES
from resdsl.codegen.arguments import optional
from resdsl.ir import ActLayer, BranchLayer, ConvLayer, EcaLayer, NormLayer, PoolLayer

if TYPE_CHECKING:  # the plan imports this module
    from resdsl.codegen.plan import BlockClass, ShortcutFunction


# An activation's name in the generated code's docstrings.
ACTIVATION_NAMES = {"relu": "ReLU", "silu": "SiLU", "gelu": "GELU"}


def kernel_words(layer: ConvLayer) -> str:
    return f"{layer.conv.kernel}x{layer.conv.kernel}"


def name_classes(classes: list[BlockClass]) -> None:
    """`BasicBlock`, `Bottleneck`, `PreActBasicBlock`, `PreActBottleneck` from the recipe's
    words and pre-activation; classes that share one are told apart by the convolution that strides
    (`BottleneckStride1x1`), then numbered."""
    for cls in classes:
        block = cls.blocks[0]
        base = RECIPES[block.kind].class_words
        cls.words = ("PreAct",) * block.preact + ("Plain",) * (not cls.adds) + base
    strides = {id(c): _stride_name(c) for c in classes}
    for words in {c.words for c in classes}:
        same = [c for c in classes if c.words == words]
        if len({strides[id(c)] for c in same}) > 1:
            for cls in same:
                cls.words += (strides[id(cls)],)
    taken: set[str] = set()
    for cls in classes:
        number = 2
        while cls.name in taken:
            cls.number, number = number, number + 1
        taken.add(cls.name)


def _stride_name(cls: BlockClass) -> str:
    """What applies the class's stride: `Stride3x3` (its convolution), `BlurPool`, `AvgPool`
    (anti-aliasing)."""
    pools = [x for x in cls.layers if optional(x)]
    if pools:
        return "".join(
            _POOL_NAMES[x.pool.kind if isinstance(x, PoolLayer) else x.op] for x in pools
        )
    strided = [x for x in cls.layers if isinstance(x, ConvLayer) and x.strided]
    return "Stride" + "_".join(kernel_words(x) for x in strided)


_POOL_NAMES = {"blur": "BlurPool", "avg": "AvgPool", "max": "MaxPool"}


# A function is named by the IR's shortcut kinds it returns, in this order; `pool_project`
# includes `project` (a pool-project of stride 1 is a projection), `pad` includes `subsample`.
_KINDS = ("project", "pool_project", "pad", "subsample")
_IMPLIED = {"project": "pool_project", "subsample": "pad"}
_FEATURES = ("avgpool", "maxpool", "normed", "biased")


def name_functions(functions: list[ShortcutFunction]) -> None:
    """`project`, `pool_project`, `pad`, `project_or_subsample`, ...; functions of one name are
    told apart by a layer only one of them has (`avgpool_pad`, `normed_project`), then
    numbered."""
    for function in functions:
        kinds = [k for k in _KINDS if k in function.kinds and _IMPLIED.get(k) not in function.kinds]
        function.name = "_or_".join(kinds) or "identity"
    features = {id(f): _features(f) for f in functions}
    for name in sorted({f.name for f in functions}):
        same = [f for f in functions if f.name == name]
        for function in same if len(same) > 1 else ():
            others = set().union(*(features[id(f)] for f in same if f is not function))
            unique = [w for w in _FEATURES if w in features[id(function)] - others]
            if unique:
                function.name = f"{unique[0]}_{function.name}"
    taken: set[str] = set()
    for function in functions:
        base, number = function.name, 2
        while function.name in taken:
            function.name, number = f"{base}_{number}", number + 1
        taken.add(function.name)


def _features(function: ShortcutFunction) -> set[str]:
    words = set()
    for outcome in function.cases.values():
        for op, values in outcome.layers if outcome else ():
            fields = dict(values)
            if op == "pool":
                words.add("avgpool" if fields["kind"] == "avg" else "maxpool")
            elif op == "norm":
                words.add("normed")
            elif op == "conv" and fields["bias"]:
                words.add("biased")
    return words


# --------------------------------------------------------------------------- rendering

_STRIDERS = {"blur": "a blur pool", "avg": "an average pool", "max": "a max pool"}
_ATTENTION = {
    "se": "squeeze-excitation",
    "eca": "efficient channel attention",
    "gc": "global context attention",
    "bat": "bilinear attention",
}


def _attention_place(layer, cls: BlockClass) -> str:
    """Where channel attention sits: after the 3x3 (over the inner width), last, or last after
    an activation of its own (timm's legacy SE-ResNet basic block)."""
    if layer.width == "mid":
        return "follows the 3x3"
    index = next(i for i, x in enumerate(cls.layers) if x is layer)
    after_act = index > 0 and isinstance(cls.layers[index - 1], ActLayer)
    return "ends the branch, after an activation" if after_act else "ends the branch"


def block_doc(cls: BlockClass) -> str:
    """A sentence from the class's layers: its convolutions, where the norms go, what applies
    the stride where no convolution does, the channel attention."""
    sequence = [x for x in cls.layers if not isinstance(x, ActLayer)]
    convs = [x for x in sequence if isinstance(x, ConvLayer)]
    kernels = ", ".join(
        _paths_words(x, cls) if isinstance(x, BranchLayer) else _kernel_words(x)
        for x in sequence
        if isinstance(x, (ConvLayer, BranchLayer))
    )
    extras = []
    for index, layer in enumerate(sequence):
        if optional(layer):
            before = [x for x in sequence[:index] if isinstance(x, ConvLayer)]
            after = f" after the {_conv_name(before[-1], convs)}" if before else ""
            strider = _STRIDERS[layer.pool.kind if isinstance(layer, PoolLayer) else layer.op]
            extras.append(f"{strider}{after} applies the stride")
        elif isinstance(layer, EcaLayer) and layer.gamma is not None:
            channels = "mid_channels" if layer.width == "mid" else "out_channels"
            rule = f"|log2({channels}) + {_number(layer.beta)}| / {_number(layer.gamma)}"
            extras.append(
                f"efficient channel attention {_attention_place(layer, cls)} (`eca_kernel`: {rule},"
                " up to an odd number, at least 3)"
            )
        elif layer.op in _ATTENTION:
            fused = {"add": ", its term added", "scale": ", gating the channels"}
            how = fused.get(getattr(layer, "fuse", ""), "")
            extras.append(f"{_ATTENTION[layer.op]} {_attention_place(layer, cls)}{how}")
        elif layer.summary:  # a plugin's layer type says what it does
            extras.append(layer.summary)
    tail = "".join(f"; {extra}" for extra in extras)
    if isinstance(sequence[0], NormLayer):
        plain = "" if cls.adds else "; no shortcut (a plain network)"
        return (
            f"Pre-activation: convolutions {kernels}, each after a norm and activation{tail}"
            f"{plain}."
        )
    normed = ", a norm after each" if any(isinstance(x, NormLayer) for x in sequence) else ""
    if any(getattr(x, "merge", None) == "select" for x in sequence):
        kernels = f"in order: {kernels};"  # a selective kernel's words hold commas
        normed = " a norm after each" if normed else ""
    if any(getattr(x, "merge", None) == "sum" for x in sequence):
        # aggregated paths: a norm and the activation inside each path, one norm after the sum
        normed = ", then a norm" if isinstance(sequence[-1], NormLayer) else ""
        head = f"{kernels[0].upper()}{kernels[1:]}"
        if not cls.adds:
            return f"{head}{normed}{tail}; no shortcut (a plain network)."
        tail += "; the activation after the addition" if cls.part(2) else ""
        return f"{head}{normed}{tail}."
    if not cls.adds:
        tail += ", the activation last" if cls.part(2) else ""
        return f"Convolutions {kernels}{normed}{tail}; no shortcut (a plain network)."
    tail += "; the activation after the sum" if cls.part(2) else ""
    return f"Convolutions {kernels}{normed}{tail}."


def _kernel_words(conv: ConvLayer) -> str:
    return kernel_words(conv) + (" (strided)" if conv.strided else "")


def _paths_words(layer: BranchLayer, cls: BlockClass) -> str:
    """A composite layer in words: `3x3 (strided) on each of 3 of 4 channel splits, ...`."""
    if layer.shared:
        count, conv = len(layer.paths), layer.shared[0]
        gate = "a softmax across them" if count > 1 else "a sigmoid"
        return (
            f"split attention ({count} paths of one {_kernel_words(conv)} in groups, weighted by"
            f" {gate})"
        )
    if layer.merge == "select":
        count = len(layer.paths)
        reads = f"each on 1/{count} of the channels" if layer.split else "each on all channels"
        conv = layer.paths[0].layers[0]
        return (
            f"a selective kernel ({count} paths of {_kernel_words(conv)}, dilated 1 to {count}"
            " times,"
            f" {reads}, summed by attention weights)"
        )
    if layer.merge == "sum":
        inner = [x for x in layer.paths[0].layers if isinstance(x, ConvLayer)]
        what = " then ".join(_kernel_words(x) for x in inner)
        return f"{len(layer.paths)} paths of {what} on the whole input, summed"
    count = len(layer.paths) - 1
    inner = [x for x in layer.paths[0].layers if isinstance(x, ConvLayer)]
    what = " then ".join(_kernel_words(x) for x in inner) or "nothing"
    text = f"{what} on each of {count} of {count + 1} channel splits"
    blocks = [x for block in cls.blocks for x in block.branch if isinstance(x, BranchLayer)]
    cascades = any(path.adds_previous for x in blocks for path in x.paths)
    first_only = any(not x.paths[-1].layers for x in blocks)
    last = layer.paths[-1].layers
    if len(last) == 1 and isinstance(last[0], PoolLayer):
        pool = last[0].pool
        kind = "average" if pool.kind == "avg" else "max"
        last_words = f"{kind}-pools the last split, {pool.kernel}x{pool.kernel} at its stride"
    else:
        last_words = "passes the last split through " + ", ".join(x.words() for x in last)
    if cascades:
        text += f", each split after the first adding the previous {kernel_words(inner[0])}'s"
        text += " output"
        if first_only and last:
            text += f" (a stage's first block adds nothing and {last_words})"
        elif first_only:
            text += " (but in a stage's first block)"
    elif last:
        who = "a stage's first block" if first_only else "it"
        text += f"; {who} {last_words}"
    return text + ", the splits concatenated"


def _conv_name(conv: ConvLayer, convs: list) -> str:
    """`3x3`, or `first 3x3` where the class has several."""
    same = [x for x in convs if kernel_words(x) == kernel_words(conv)]
    if len(same) == 1:
        return kernel_words(conv)
    index = same.index(conv)
    ordinal = _ORDINALS[index] if index < len(_ORDINALS) else f"#{index + 1}"
    return f"{ordinal} {kernel_words(conv)}"


_ORDINALS = ("first", "second", "third", "fourth")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
