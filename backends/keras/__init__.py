"""The Keras 3 backend: a :class:`resdsl.ir.Network` to a standalone functional-model module.

Layer names follow keras.applications (``conv1_conv``, ``conv2_block1_1_conv``, ``post_bn``,
``predictions``) and are chosen in :func:`layer_names` before any template runs, so the weight
porter (:mod:`resdsl.weights`) and the generated code agree by construction.

PyTorch's conventions are reproduced where Keras' defaults differ: convolutions that stride or
need padding get an explicit symmetric ``ZeroPadding2D`` and a valid convolution (Keras' "same"
pads only after at stride 2); norm momentum is converted (PyTorch 0.1 is Keras 0.9); average
pools that round up and ignore padding use Keras' "same" pooling, which does exactly that for a
2x2 window on both of Keras' backends.

Compiling never imports keras or tensorflow.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from resdsl.ir import Block, Network
from resdsl.naming import layer_pairs, stem_conv_names

# From this many blocks, the generated module raises Python's recursion limit (Keras walks
# the graph recursively; ResNet-1202 needs it, ResNet-152 does not).
DEEP_GRAPH_BLOCKS = 100
ACTIVATION_NAMES = {"relu": "relu", "silu": "silu", "gelu": "gelu"}


class KerasBackend:
    """Keras 3 functional models, channels-last, on the tensorflow, torch or jax backends."""

    name = "keras"
    suffix = ".py"

    def emit(self, network: Network) -> str:
        problems = self.unsupported(network)
        if problems:
            raise ValueError("the keras backend cannot express " + "; ".join(problems))
        return _template().render(**_context(network))

    def unsupported(self, network: Network) -> list[str]:
        problems = []
        for _, stage, position, block in network.blocks():
            sc = block.shortcut
            averaged = sc.kind == "pool_project" or sc.downsample == "avgpool"
            if averaged and sc.stride > 2:
                problems.append(
                    f"an average-pool shortcut with stride {sc.stride} "
                    f"(`{stage.name}` block {position + 1}); Keras pools round up exactly only "
                    "for stride 2"
                )
                break
        return problems


# --------------------------------------------------------------------------- naming


# --------------------------------------------------------------------------- code


class Raw(str):
    """Source text rendered as is (a name), not as a string literal."""


def render(value, indent: int = 0, width: int = 100, prefix: str = "", suffix: str = "") -> str:
    """`value` as Python source, as ruff format would lay it out: on one line when it fits in
    `width`, otherwise one element per line with a trailing comma (which keeps ruff from
    joining the lines again). `prefix` and `suffix` share the first and last line."""
    flat = _flat(value)
    pad = " " * indent
    if indent + len(prefix) + len(flat) + len(suffix) <= width or not _is_collection(value):
        return f"{pad}{prefix}{flat}{suffix}"
    if isinstance(value, dict):
        opening, closing = "{", "}"
        items = [
            render(v, indent + 4, width, prefix=f"{_flat(k)}: ", suffix=",")
            for k, v in value.items()
        ]
    else:
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        items = [render(v, indent + 4, width, suffix=",") for v in value]
    return "\n".join([f"{pad}{prefix}{opening}", *items, f"{pad}{closing}{suffix}"])


def _is_collection(value) -> bool:
    return isinstance(value, (tuple, list, dict)) and len(value) > 0


def _flat(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_flat(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(type(value))


def _block_arguments(block: Block) -> dict:
    """Arguments of one block call, beyond its name and drop rate; defaults left out."""
    sc = block.shortcut
    args: dict = {"filters": block.mid_channels}
    if block.kind.endswith("bottleneck"):
        args["out_filters"] = block.out_channels
    args["stride"] = block.stride
    if block.kind.endswith("bottleneck") and block.stride_on == "1x1":
        args["stride_on"] = "1x1"
    if block.groups != 1:
        args["groups"] = block.groups
    if block.dilation != 1:
        args["dilation"] = block.dilation
    args["shortcut"] = sc.kind
    if sc.kind == "pad":
        args["pad"] = (sc.pad_before, sc.pad_after)
        if sc.downsample == "avgpool":
            args["downsample"] = "avgpool"
    if not block.kind.endswith("bottleneck") and block.out_channels != block.mid_channels:
        args["out_filters"] = block.out_channels
    return args


def _stages(network: Network) -> list:
    stages = []
    for stage in network.stages:
        runs = tuple(
            (run.count, Raw(f"{run.block.kind}_block"), _block_arguments(run.block))
            for run in stage.runs
        )
        stages.append((stage.name, stage.runs[0].first_index, runs))
    return stages


def _float(value: float) -> str:
    return repr(float(value))


def _context(network: Network) -> dict:
    conv = network.conventions
    stem = network.stem
    kinds = sorted({block.kind for _, _, _, block in network.blocks()})
    shortcuts = {block.shortcut.kind for _, _, _, block in network.blocks()}
    downsamples = {block.shortcut.downsample for _, _, _, block in network.blocks()}
    all_convs = list(stem.convs)
    for _, _, _, block in network.blocks():
        all_convs += list(block.convs)
        if block.shortcut.conv is not None:
            all_convs.append(block.shortcut.conv)
    bias_before_norm, bias_without_norm = _bias(conv.conv_bias)
    stem_convs = [
        {
            "name": name,
            "filters": c.out_channels,
            "kernel": c.kernel,
            "stride": c.stride,
            "normed": stem.norm,
        }
        for name, c in zip(stem_conv_names(network), stem.convs, strict=True)
    ]
    pool = stem.pool
    stages = _stages(network)
    act = conv.activation
    return {
        "name": network.name,
        "source": network.source.file,
        "sha256": network.source.sha256,
        "input_shape": render(
            (network.input.height, network.input.width, network.input.channels),
            prefix="INPUT_SHAPE = ",
        ),
        "classes": network.classes,
        "activation": act,
        "act": ACTIVATION_NAMES[act],
        "eps": _float(conv.norm_eps),
        "momentum": _float(round(1.0 - conv.norm_momentum, 12)),
        "torch_momentum": _float(conv.norm_momentum),
        "drop_path_rate": _float(conv.stochastic_depth),
        "total_blocks": network.total_blocks,
        "head_dropout": _float(network.head.dropout),
        "head_norm": network.head.norm,
        "kaiming": conv.init == "kaiming",
        "zero_last_norm": conv.zero_last_norm,
        "bias_before_norm": bias_before_norm,
        "bias_without_norm": bias_without_norm,
        "stem_convs": stem_convs,
        "stem_norm": stem.norm,
        "pool": pool.kind if pool else None,
        "pool_kernel": pool.kernel if pool else 0,
        "pool_stride": pool.stride if pool else 0,
        "pool_padding": pool.padding if pool else 0,
        "kinds": kinds,
        "has_basic": "basic" in kinds,
        "has_bottleneck": "bottleneck" in kinds,
        "has_preact_basic": "preact_basic" in kinds,
        "has_preact_bottleneck": "preact_bottleneck" in kinds,
        "has_pad": "pad" in shortcuts,
        "has_subsample": "subsample" in shortcuts or "subsample" in downsamples,
        "has_avgpool": "pool_project" in shortcuts or "avgpool" in downsamples,
        "has_projection": bool(shortcuts & {"project", "pool_project"}),
        # Zeros pad the stem's max pool as keras.applications does: the same as PyTorch's -inf
        # after a ReLU, and keras' own choice for the V2 stems without norm. After a norm and
        # SiLU or GELU, whose outputs can be negative, -inf pads it as PyTorch does.
        "minus_inf_pad": bool(pool and pool.kind == "max" and stem.norm and act != "relu"),
        "deep_graph": network.total_blocks >= DEEP_GRAPH_BLOCKS,
        "stages": render(stages, prefix="STAGES = "),
    }


def _bias(conv_bias: str) -> tuple[bool, bool]:
    """Whether convolutions followed by a norm, and those not, have biases."""
    if conv_bias == "on":
        return True, True
    if conv_bias == "off":
        return False, False
    return False, True


@lru_cache(maxsize=1)
def _template():
    from resdsl.backend import template_environment

    return template_environment(Path(__file__).parent / "templates").get_template("model.py.j2")


__all__ = ["KerasBackend", "layer_pairs"]
