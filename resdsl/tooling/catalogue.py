"""The site's generated tables of the language: the reference (every setting, kind and
argument, from :data:`resdsl.language.schema.FIELDS`, the kinds' tables and the block registry)
and the family's coverage (the spec library against timm's registry), so the documentation
cannot drift from the code; :mod:`resdsl.tooling.docs` writes them into their pages and a test
compares.

    python -m resdsl.tooling.catalogue              # the language reference
    python -m resdsl.tooling.catalogue --coverage   # timm's ResNet registry in the spec library
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from itertools import pairwise

from resdsl.blocks import RECIPES
from resdsl.language import schema
from resdsl.language.values import on_off

# --------------------------------------------------------------------------- reference


def describe_reader(reader: Callable) -> str:
    """What values a reader (see :mod:`resdsl.language.values`) accepts, read from its closure."""
    if reader is on_off:
        return "`on` or `off`"
    if reader is schema.read_input:
        return "`CxHxW`, e.g. `3x224x224`"
    bound = inspect.getclosurevars(reader).nonlocals
    if "options" in bound:
        return " \\| ".join(f"`{o}`" for o in bound["options"])
    if "kinds" in bound:
        return " \\| ".join(f"`{k}`" for k in bound["kinds"])
    if "low" in bound and isinstance(bound["low"], int) and "high_open" not in bound:
        odd = "odd " if bound.get("odd") else ""
        return f"{odd}whole number {bound['low']}..{bound['high']:,}"
    if "high_open" in bound:
        close = ")" if bound["high_open"] else "]"
        return f"number in [{bound['low']:g}, {bound['high']:g}{close}"
    if "high" in bound:
        return f"positive number up to {bound['high']:g}"
    return getattr(reader, "__name__", "")  # pragma: no cover - a reader not described here


def default_text(value, setting: str = "") -> str:
    """An argument's default in words; None is derived from the rest, or (a generator's: the
    `stages` setting's) required."""
    if value is None:
        return "required" if setting == "stages" else "(derived)"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


SETTING_DEFAULTS = {
    "input": "required",
    "classes": "required",
    "block": "required",
    "stem": "`imagenet`",
    "shortcut": "`B`",
    "strided_block": "`first`",
    "conv_bias": "`off`",
    "attention": "`none`",
    "anti_alias": "`none`",
    "norm": "`batch`",
    "activation": "`relu`",
    "init": "`kaiming`",
    "stochastic_depth": "`0`",
    "head": "`avgpool`",
    "naming": "`resnet`",
    "dilation": "`1`",
    "waive": "none",
}

SYNTAX = """\
| construct | form | example |
| --- | --- | --- |
| network | `network NAME { ... }` | `network resnet50 {` |
| inheritance | `network NAME extends "FILE" { ... }`: the parent's settings and stages, \
overridden by the child's (stages matched by name, replaced in place or appended) | \
`network resnet101 extends "resnet50.res" {` |
| setting | `KEY VALUE`, one per line by convention | `classes 1000` |
| kind with arguments | `KIND(ARG: VALUE, ...)` | `block bottleneck(expansion: 4, stride_on: 3x3)` |
| stage | `stage NAME: BLOCKS x WIDTH` | `stage layer1: 3 x 64` |
| strided stage | `stage NAME: BLOCKS x WIDTH / STRIDE` | `stage layer2: 4 x 128 / 2` |
| stage overrides | `stage ... { KEY VALUE ... }` | `stage conv5: 3 x 512 { dilation 2 }` |
| waiver | `waive RULE` inside a stage's braces | `stage b: 2 x 16 / 2 { waive halve_double }` |
| size | digits joined by `x` | `3x224x224`, `3x3` |
| number | integer or decimal, optional exponent | `4`, `0.1`, `1.001e-5` |
| string | double-quoted, no escapes | `"resnet50.res"` |
| comment | `#` to the end of the line | `# ResNet-50` |

Shortcut policies, as the ResNet papers name them: `identity` everywhere (shapes must match);
`A` zero-pads the new channels of a widening block after subsampling; `B` projects (1x1
convolution and norm) only where the shape changes; `C` projects in every block; `D` (ResNet-D)
average-pools before a stride-1 projection; `none` has no shortcut and no addition, the
paper's plain network (for every stage at once).
"""


def reference() -> str:
    """The syntax, every setting with its values and default, every kind with its arguments."""
    out = ["#### Syntax", "", SYNTAX, "#### Settings", ""]
    out += ["| setting | where | values | default |", "| --- | --- | --- | --- |"]
    for key, field in schema.FIELDS.items():
        where = " and ".join(
            w for w, ok in (("network", field.network), ("stage", field.stage)) if ok
        )
        values = describe_reader(field.reader)
        out.append(f"| `{key}` | {where} | {values} | {SETTING_DEFAULTS.get(key, '')} |")
    out += ["", "#### Kinds and their arguments", ""]
    out += ["| setting | kind | arguments (default; values) |", "| --- | --- | --- |"]
    for setting, kinds in schema.KIND_TABLES.items():
        for name, kind in kinds.items():
            skipped = RECIPES[name].inapplicable if setting == "block" else frozenset()
            args = "; ".join(
                f"`{arg}` ({default_text(kind.defaults.get(arg), setting)}; "
                f"{describe_reader(reader)})"
                for arg, reader in kind.readers.items()
                if arg not in skipped
            )
            out.append(f"| `{setting}` | `{name}` | {args or 'none'} |")
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- coverage

# The spec library of timm's ResNet registry, in the repository (not in the wheel).
TIMM_SPECS = "specs/timm"
# The families of timm's other modules, each a folder of specs with a table of its own.
FAMILY_SPECS = {
    "coverage": TIMM_SPECS,
    "res2net coverage": "specs/res2net",
    "sknet coverage": "specs/sknet",
    "resnest coverage": "specs/resnest",
    "byobnet coverage": "specs/byobnet",
    "legacy senet coverage": "specs/legacy_senet",
    "regnet coverage": "specs/regnet",
    "torchvision regnet coverage": "specs/torchvision_regnet",
    "resnetv2 coverage": "specs/resnetv2",
}


def _features(network) -> tuple[str, list[str]]:
    """A network's family name and what its spec says beyond a plain ResNet, in words, read
    from its elaborated IR."""
    stages = network.stages
    blocks = [run.block for stage in stages for run in stage.runs]
    specs = [stage.block for stage in stages]
    convs = network.stem.convs
    needs = []
    generated = any(stage.generated for stage in stages)
    if generated:
        needs.append("`stages regnet(...)`")
    if any(b.preact for b in blocks):
        needs.append("pre-activation")
    if network.stem.preset == "deep":
        kind = "tiered" if convs[0].out_channels != convs[1].out_channels else "deep"
        needs.append(f"{kind} stem " + "-".join(str(c.out_channels) for c in convs[:3]))
    elif network.stem.preset == "quad":
        layers = network.stem.layers
        count = sum(a.op == b.op == "conv" for a, b in pairwise(layers))
        plain = f", {count} without norms" if count else ""
        needs.append("quad stem " + "-".join(str(c.out_channels) for c in convs) + plain)
    if convs and convs[-1].stride > 1 and len(convs) > 1:
        needs.append("stem strides last")
    if network.conventions.activation != "relu":
        from resdsl.codegen.words import ACTIVATION_NAMES  # not at import: the LSP reads this

        needs.append(ACTIVATION_NAMES[network.conventions.activation])
    conv_pool = any(
        layer.torch == "maxpool.0" and layer.op == "conv" for layer in network.stem.layers
    )
    if conv_pool:
        needs.append("strided-conv stem pool")
    if any(x.op == "pool" and x.pool.kind == "max" and x.pool.ceil for x in network.stem.layers):
        needs.append("Caffe's stem pool")
    if any(b.attention_after == "activation" for b in blocks):
        needs.append("an activation before the attention")
    if any(b.shortcut.kind == "pool_project" for b in blocks):
        needs.append("`shortcut D`")
    kernel = max((b.shortcut.conv.kernel for b in blocks if b.shortcut.conv is not None), default=1)
    if kernel > 1:
        needs.append(f"{kernel}x{kernel} projections")
    attention = next(
        (x for b in blocks for x in b.branch if x.op in ("se", "eca", "gc", "bat")), None
    )
    where = " after the 3x3" if attention is not None and attention.width == "mid" else ""
    of = " of the input" if getattr(attention, "basis", None) == "in" else ""
    if attention is not None and attention.op == "se":
        ratio = f"SE 1/{round(1 / attention.ratio)}{of}" if attention.ratio else "SE"
        needs.append(ratio + where)
    elif attention is not None and attention.op == "bat":
        needs.append(f"BAT {attention.block_size}x{attention.block_size}" + where)
    elif attention is not None and attention.op == "gc":
        needs.append(("GC" if attention.fuse == "add" else "GC gating") + where)
    elif attention is not None:
        needs.append("ECA" + where)
    sizes = sorted({s.group_size for s in specs if s.group_size is not None})
    if not generated:  # a generator's group size is one of its numbers, not a feature
        needs += [f"groups of {size}" if size > 1 else "depthwise 3x3s" for size in sizes]
    if any(b.shortcut.transition for b in blocks):
        needs.append("no shortcut where the shape changes")
    if any(b.shortcut.kind == "identity" and b.shortcut.source == "preactivated" for b in blocks):
        needs.append("identities from the first norm")
    if generated and not any(b.post for b in blocks) and not any(b.preact for b in blocks):
        needs.append("no activation after the sum")
    if network.head.in_features != network.stages[-1].out_shape.channels:
        needs.append(f"1x1 to {network.head.in_features} before the pool")
    needs += [f"`anti_alias {kind}`" for kind in sorted({b.anti_alias for b in blocks} - {"none"})]
    if network.conventions.conv_eps is not None:
        needs.append("weight-standardized convolutions")
    if network.conventions.norm in ("evonorm_s0", "frn"):
        needs.append({"evonorm_s0": "EvoNorm-S0", "frn": "FRN with TLU"}[network.conventions.norm])
    if any(x.op == "linear" and x.conv for x in network.head.layers):
        needs.append("a 1x1-convolution classifier")
    if network.conventions.norm == "group" and network.conventions.norm_group_size:
        needs.append(f"group norm (groups of {network.conventions.norm_group_size})")
    elif network.conventions.norm == "group":
        needs.append(f"group norm ({network.conventions.norm_groups} groups)")
    scales = sorted({s.option("scale") for s in specs if s.name == "res2net"})
    needs += [f"`res2net(scale: {scale})`" for scale in scales]
    selective = [s for s in specs if s.name.startswith("sk_")]
    for kind in sorted({s.name for s in selective}):
        split = {s.option("split") for s in selective if s.name == kind}
        attention = {(s.option("reduction"), s.option("divisor")) for s in selective}
        words = ", ".join(f"1/{r:g} in multiples of {d}" for r, d in sorted(attention))
        reads = "split" if split == {True} else "whole input" if split == {False} else "mixed"
        needs.append(f"`{kind}` ({reads}, attention {words})")
    split = [s for s in specs if s.name == "resnest"]
    for radix, first in sorted({(s.option("radix"), s.option("avd_first")) for s in split}):
        where = "before" if first else "after"
        needs.append(f"`resnest(radix: {radix})` (the average pool {where})")
    if any(s.name == "aggregated" for s in specs):
        needs.append("summed paths (ResNeXt's Fig. 3a)")
    if any(s.name == "edge" for s in specs):
        needs.append("edge blocks")
    if any(dict(s.options).get("extra_3x3") for s in specs):
        needs.append("a second 3x3")
    grouped = max(s.groups for s in specs) > 1 or any(s.group_size for s in specs)
    wide = max(s.width_factor for s in specs) > 1
    if generated:  # RegNet's words: groups are the design space's, a wider inside is inverted
        grouped = False
        if wide:
            needs.append("inverted bottlenecks")
            wide = False
    reduced = max(s.reduce_first for s in specs) > 1
    # per-stage block types, but for byobnet's edge blocks before bottlenecks
    mixed = len({s.layout for s in specs} - {"edge"}) > 1
    needs += [
        words
        for words, used in (
            ("grouped bottlenecks", grouped),
            ("`reduce_first`", reduced),
            ("`width_factor`", wide),
            ("per-stage block types", mixed),
            ("`waive halve_double`", any(stage.waivers for stage in stages)),
        )
        if used
    ]
    if generated:
        family = f"RegNet{stages[0].letter}"
    elif network.conventions.conv_eps is not None:
        family = "BiT"
    elif scales:
        family = "Res2NeXt" if grouped else "Res2Net"
    elif selective:
        family = "SK-ResNeXt" if grouped else "SK-ResNet"
    elif split:
        family = "ResNeSt"
    elif conv_pool:
        family = "ResNet-RS"
    elif reduced:
        family = "SENet"
    elif mixed:
        family = "test network"
    else:
        prefixes = {"se": "SE-", "eca": "ECA-", "gc": "GC-", "bat": "BAT-"}
        prefix = prefixes.get(attention.op if attention else "", "")
        family = prefix + ("ResNeXt" if grouped else "Wide ResNet" if wide else "ResNet")
        if any(b.preact for b in blocks):
            family += "V2"  # the 2016 paper's pre-activation ResNets
    return family, needs


def coverage(folder: str = TIMM_SPECS) -> str:
    """A folder of the spec library (timm's ResNet registry, by default) as it covers its
    networks: each family, its networks and what their specs need beyond a plain ResNet, read
    from the specs themselves."""
    import os

    from resdsl.driver import analyze_file

    root = os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), folder
    )
    rows: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for file in sorted(os.listdir(root)):
        if not file.endswith(".res"):
            continue
        network = analyze_file(os.path.join(root, file)).network
        if network is None:
            raise ValueError(f"{folder}/{file} does not check")
        family, needs = _features(network)
        rows.setdefault((family, tuple(needs)), []).append(network.name)
    out = [
        "| family | networks | what the spec needs beyond a plain ResNet |",
        "| --- | --- | --- |",
    ]
    for (family, needs), names in sorted(rows.items()):
        listed = ", ".join(f"`{n}`" for n in sorted(names, key=_natural))
        out.append(f"| {family} | {listed} | {', '.join(needs) or 'nothing'} |")
    total = sum(len(names) for names in rows.values())
    out += ["", f"{total} specs in `{folder}/`."]
    return "\n".join(out) + "\n"


def _natural(name: str) -> tuple:
    """`resnet18` before `resnet101`."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


# --------------------------------------------------------------------------- generated sections


def section(name: str) -> str:
    """A generated table of the site: `reference`, or a family's coverage (`coverage`,
    `res2net coverage`)."""
    return coverage(FAMILY_SPECS[name]) if name in FAMILY_SPECS else reference()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(section("coverage" if "--coverage" in args else "reference"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
