"""The sources `resdsl import` reads, as names and shapes in PyTorch's layout: a PyTorch file
through `torch.load(weights_only=True)` (no code runs), a `.safetensors` file through its
header, a Keras `.weights.h5` file through h5py, or a model a library builds
(`torchvision:NAME`, `timm:NAME`), whose module tree also says what weights cannot (strides,
dilation, anti-aliasing, the activation)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from resdsl.interop.weight_files import UnreadableWeights, load_torch_checkpoint
from resdsl.ir.naming import RESNET

Shapes = dict[str, tuple[int, ...]]
# The state-dict layout of the checkpoints the importers read (torchvision's and timm's
# resnet.py), whose names both importers take from its table.
NAMES = RESNET


class ImportFailed(ValueError):
    """The source is not a ResNet resdsl can describe; the message names the first tensor that
    does not fit and what was expected there."""


@dataclass
class Source:
    """What a source holds: PyTorch names and layouts in model order, and what its module tree
    says where there is one."""

    description: str
    shapes: Shapes
    scheme: str = "torch"  # "torch" (torchvision, timm, resdsl) or "keras" (keras.applications)
    # From a module tree: per stage (by name) its stride and dilation; "aa" (blur, avg);
    # "blur_size"; "activation"; "gate"; "norm_groups"; "norm_eps"; "input"; "split" (whether
    # selective kernels split their input); "avd" (where ResNeSt's strided blocks apply their
    # stride: an average pool "first" or "last" around split attention, or "off": the 3x3);
    # "dropout2d" (bilinear attention's channel dropout).
    facts: dict = field(default_factory=dict)


def conv_shape(t: Mapping[str, tuple], key: str, where: str, whose: str = "a block's") -> tuple:
    """The shape of convolution weight `key` of block `where` (its tensors `t`), or
    ImportFailed naming it: missing (expected `whose`), or not 2-d."""
    shape = t.get(key)
    if shape is None:
        raise ImportFailed(f"`{where}{key}` is missing: expected {whose}")
    if len(shape) != 4 or 0 in shape:
        raise ImportFailed(f"`{where}{key}` has shape {shape}: expected a 2-d convolution")
    return shape


def blocks_by_stage(shapes: Shapes, pattern) -> dict[int, dict[int, dict[str, tuple]]]:
    """The tensors of each block, by stage and index, under their names within the block:
    `pattern` matches a block tensor's key, its groups the stage, the index and the rest
    (byobnet's `stages.0.1.conv1_1x1.conv.weight`, RegNet's `s1.b2.conv1.conv.weight`)."""
    stages: dict[int, dict[int, dict[str, tuple]]] = {}
    for key, shape in shapes.items():
        match = pattern.match(key)
        if match is not None:
            stage, index = int(match.group(1)), int(match.group(2))
            stages.setdefault(stage, {}).setdefault(index, {})[match.group(3)] = shape
    return stages


# --------------------------------------------------------------------------- reading sources


def read(source: str) -> Source:
    """The tensors of `source`: a file (.pt, .pth, .bin, .safetensors, .weights.h5, .keras) or
    `torchvision:NAME` / `timm:NAME`. Raises OSError or UnreadableWeights for a file that
    cannot be read (empty, truncated, of another kind, a pickle that would run code), each with
    a message saying why, and ImportFailed for a library model that cannot be built."""
    if source.startswith(("torchvision:", "timm:")):
        return _from_library(source)
    if not os.path.isfile(source):
        raise OSError(f"no such file `{source}`")
    if os.path.getsize(source) == 0:
        raise UnreadableWeights("the file is empty")
    if source.endswith(".safetensors"):
        return Source(source, _normalized(_safetensors_shapes(source)))
    if source.endswith((".weights.h5", ".keras")):
        from resdsl.interop.keras_import import keras_shapes

        return Source(source, keras_shapes(source), scheme="keras")
    state = load_torch_checkpoint(source)
    return Source(source, _normalized({k: tuple(v.shape) for k, v in state.items()}))


def _safetensors_shapes(path: str) -> Shapes:
    try:
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except Exception as error:  # the header is malformed
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnreadableWeights(f"not a safetensors file: {reason}") from None


def _normalized(shapes: Shapes) -> Shapes:
    """Without DDP's `module.` prefix and batch norm's step counters."""
    if shapes and all(k.startswith("module.") for k in shapes):
        shapes = {k.removeprefix("module."): v for k, v in shapes.items()}
    return {k: v for k, v in shapes.items() if not k.endswith("num_batches_tracked")}


def _from_library(source: str) -> Source:
    """A torchvision or timm model built on the meta device (no weights, no download): its
    state dict's names and shapes, and what its modules say of strides, dilation,
    anti-aliasing and the activation."""
    library, _, name = source.partition(":")
    if library == "timm":
        try:
            import timm
        except ImportError:
            raise ImportFailed("timm is not installed: pip install 'resdsl[import]'") from None
        # timm also takes `hf-hub:ID` and `local-dir:PATH`, whose configurations it fetches
        # from the network or reads from a folder: only its own registry is built here.
        if not timm.is_model(name):
            raise UnreadableWeights(
                f"`{name}` is not a model of timm's registry (timm.list_models()); timm:NAME "
                "builds registry models only, without weights, files or the network"
                + _nearest(name, timm.list_models())
            )
    else:
        try:
            import torchvision
        except ImportError:
            raise ImportFailed(
                "torchvision is not installed: pip install 'resdsl[import]'"
            ) from None
        builders = torchvision.models.list_models()
        if name not in builders:
            raise ImportFailed(
                f"torchvision has no model `{name}` (torchvision.models.list_models())"
                + _nearest(name, builders)
            )
    try:
        model = _build(library, name, "meta")
    except NotImplementedError:
        # torchvision's RegNets compute their widths with tensors, which the meta device
        # cannot read back: those are built on the CPU
        try:
            model = _build(library, name, "cpu")
        except Exception as error:
            raise ImportFailed(f"{library} cannot build `{name}`: {error}") from None
    except Exception as error:
        raise ImportFailed(f"{library} cannot build `{name}`: {error}") from None
    shapes = _normalized({k: tuple(v.shape) for k, v in model.state_dict().items()})
    facts = _module_facts(model)
    if library == "timm":
        config = getattr(model, "pretrained_cfg", None) or {}
        if "input_size" in config:
            facts["input"] = tuple(config["input_size"])
    return Source(source, shapes, facts=facts)


def _build(library: str, name: str, device: str):
    """The library's model `name`, without weights, on `device`."""
    import torch

    with torch.device(device):
        if library == "timm":
            import timm

            return timm.create_model(name, pretrained=False)
        import torchvision

        return torchvision.models.get_model(name, weights=None)


def _nearest(name: str, names: list[str]) -> str:
    """ "; did you mean `x`?" for the library model closest to a misspelt `name`, or ""."""
    from resdsl.language.values import closest

    found = closest(name, names)
    return f"; did you mean `{found[0]}`?" if found else ""


def _module_facts(model) -> dict:
    """Strides and dilations per stage, anti-aliasing, activation, gate and norm settings, read
    from the module tree of a torchvision or timm ResNet."""
    import torch.nn as nn

    facts: dict = {"stages": {}}
    trunk = getattr(model, "trunk_output", None)  # torchvision's RegNet: its stages inside
    children = [*model.named_children(), *(trunk.named_children() if trunk is not None else ())]
    for name, stage in children:
        # torchvision's and timm's resnet.py `layer1` ..; timm's regnet.py `s1` .. (a RegStage);
        # torchvision's regnet.py `block1` .. (an AnyStage)
        regnet = type(stage).__name__ in ("RegStage", "AnyStage")
        if name == "stages" and type(model).__name__ == "ResNetV2":
            _resnetv2_facts(model, facts)
            continue
        if not (isinstance(stage, nn.Sequential) and name.startswith("layer")) and not regnet:
            continue
        blocks = list(stage.children())
        first, last = blocks[0], blocks[-1]
        if regnet:  # RegNetZ's `linear_out`: no activation after the sum
            facts["linear_out"] = isinstance(getattr(first, "act3", None), nn.Identity)
        stride = 1
        for module in first.modules():
            value = getattr(module, "stride", 1)
            value = value[0] if isinstance(value, tuple) else value
            stride = max(stride, value if isinstance(value, int) else 1)
        # The 3x3: a bottleneck's `conv2`, or the first of Res2Net's split `convs`; in SKNet's
        # blocks a ConvNormAct's `conv`, or the first path of a selective kernel (its dilation
        # the block's; path k is dilated k times that).
        spatial = getattr(last, "conv2", None)
        if spatial is None and isinstance(getattr(last, "convs", None), nn.ModuleList):
            spatial = last.convs[0]
        if isinstance(getattr(spatial, "paths", None), nn.ModuleList):
            spatial = spatial.paths[0]
        spatial = getattr(spatial, "conv", spatial)
        dilation = spatial.dilation[0] if spatial is not None else 1
        facts["stages"][name] = (stride, dilation)
        conv1 = getattr(first, "conv1", None)
        # a bottleneck striding on its first 1x1 (Caffe's; timm's legacy SE-ResNets)
        bottleneck = getattr(first, "conv3", None) is not None and conv1 is not None
        if stride > 1 and bottleneck and getattr(conv1, "stride", (1,))[0] > 1:
            facts["stride_on"] = "1x1"
    if isinstance(getattr(model, "drop_rate", None), float):  # timm's head dropout
        facts["drop_rate"] = model.drop_rate
    stages = getattr(model, "stages", None)
    byobnet = type(model).__name__ == "ByobNet"
    if byobnet and isinstance(stages, nn.Sequential) and isinstance(model.stem, nn.Module):
        _byobnet_facts(model, facts)
    for module in model.modules():
        kind = type(module).__name__
        if kind == "BlurPool2d":
            facts["aa"], facts["blur_size"] = "blur", module.filt_size
        elif kind == "AvgPool2d" and "aa" not in facts and _is_aa(model, module):
            facts["aa"] = "avg"
        elif kind in ("SiLU", "GELU") and "activation" not in facts:
            facts["activation"] = kind.lower()
        elif kind == "Dropout2d":  # bilinear attention's channel dropout
            facts.setdefault("dropout2d", module.p)
        elif kind == "Hardsigmoid":
            facts["gate"] = "hard_sigmoid"
        elif kind in ("GroupNorm", "GroupNormAct"):
            facts["norm_groups"], facts["norm_eps"] = module.num_groups, module.eps
            # one size for every group norm (timm's `group_size`), else None
            size = module.num_channels // module.num_groups
            facts["norm_group_size"] = size if facts.get("norm_group_size", size) == size else None
        elif kind == "BatchNorm2d":
            facts.setdefault("norm_eps", module.eps)
        elif kind == "SelectiveKernel":  # whether its paths split the input: no shape says
            facts.setdefault("split", module.split_input)
        elif hasattr(module, "avd_first") and hasattr(module, "avd_last"):
            _avd(module, facts)  # timm's ResNestBottleneck
    return facts


def _byobnet_facts(model, facts: dict) -> None:
    """timm's byobnet: each stage's stride and dilation (its first block's largest stride, its
    last block's 3x3's dilation), named `stage1`.. as the importer names them; whether the stem
    has a pool (`stem_pool`, a MaxPool2d's "max"; "" for none)."""
    for i, stage in enumerate(model.stages):
        strides = [getattr(m, "stride", 1) for m in stage[0].modules()]
        stride = max((s[0] if isinstance(s, tuple) else s) for s in strides if s)
        spatial = getattr(stage[-1], "conv2_kxk", None) or getattr(stage[-1], "conv1_kxk", None)
        conv = getattr(spatial, "conv", None)
        dilation = conv.dilation[0] if conv is not None else 1
        facts["stages"][f"stage{i + 1}"] = (stride, dilation)
    pool = getattr(model.stem, "pool", None)
    facts["stem_pool"] = "" if pool is None else type(pool).__name__.removesuffix("Pool2d").lower()


def _resnetv2_facts(model, facts: dict) -> None:
    """timm's ResNetV2: each stage's stride (named `stage1` .. as the importer names them),
    whether the projections average first (`avg_down`: a DownsampleAvg), how the stem's pool
    pads (a ConstantPad2d before it: zeros, BiT's; else ignored) and the convolutions'
    weight standardization (StdConv2d's eps)."""
    for i, stage in enumerate(model.stages):
        first = stage.blocks[0]
        strides = [getattr(m, "stride", 1) for m in first.modules()]
        stride = max((s[0] if isinstance(s, tuple) else s) for s in strides if s)
        facts["stages"][f"stage{i + 1}"] = (stride, 1)
        downsample = getattr(first, "downsample", None)
        if downsample is not None:
            facts["avg_down"] = type(downsample).__name__ == "DownsampleAvg"
    facts["stem_pool_pad"] = "zero" if hasattr(model.stem, "pad") else "ignore"
    convs = [m for m in model.modules() if type(m).__name__ == "StdConv2d"]
    facts["standardized"] = convs[0].eps if convs else 0.0
    evonorms = [m for m in model.modules() if type(m).__name__ == "EvoNorm2dS0"]
    if evonorms:
        facts["norm_groups"] = evonorms[0].groups


def _avd(block, facts: dict) -> None:
    """Where a strided ResNeSt block (timm's ResNestBottleneck) applies its stride: an average
    pool before split attention (`avd_first`), after it (`avd_last`, an AvgPool2d or None), or
    neither, its 3x3 striding (`avd: off`). A block that does not stride says nothing."""
    if block.avd_first is not None:
        facts.setdefault("avd", "first")
    elif block.avd_last is not None:
        facts.setdefault("avd", "last")
    else:
        spatial = getattr(block.conv2, "conv", block.conv2)
        stride = getattr(spatial, "stride", (1,))
        if (stride[0] if isinstance(stride, tuple) else stride) > 1:
            facts.setdefault("avd", "off")


def _is_aa(model, pool) -> bool:
    """Whether an average pool is timm's anti-aliasing (a block's `aa`, or the stem's pool)."""
    return any(
        module is pool and (name.endswith(".aa") or name == "maxpool")
        for name, module in model.named_modules()
    )
