"""The README's generated sections: the language reference and the diagnostic catalogue.

Both are rendered from the compiler's own tables (:data:`resdsl.diagnostics.core.CODES`,
:data:`resdsl.language.schema.FIELDS` and the kinds tables), so the documentation cannot drift from
the code; a test compares the README's sections, between their markers, with this output.

    python -m resdsl.tooling.catalogue              # the diagnostic catalogue
    python -m resdsl.tooling.catalogue --reference  # the language reference
    python -m resdsl.tooling.catalogue --coverage   # timm's ResNet registry in the spec library
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable

from resdsl.blocks import RECIPES
from resdsl.diagnostics.core import CODES, render_text
from resdsl.driver import analyze_text
from resdsl.language import schema
from resdsl.language.values import on_off

MARKERS = {
    "catalogue": ("<!-- catalogue:start -->", "<!-- catalogue:end -->"),
    "reference": ("<!-- reference:start -->", "<!-- reference:end -->"),
    "coverage": ("<!-- coverage:start -->", "<!-- coverage:end -->"),
}

EXAMPLE_FILE = "example.res"


# --------------------------------------------------------------------------- catalogue


def _example_output(code: str, example: str) -> str:
    """The diagnostics the example produces, rendered as `resdsl check` prints them."""
    result = analyze_text(example, EXAMPLE_FILE)
    if code not in {d.code for d in result.diagnostics} and 'extends "' in example:
        # A cycle needs the file to extend itself: name it after its parent.
        parent = example.split('extends "', 1)[1].split('"', 1)[0]
        result = analyze_text(example, parent)
    shown = [d for d in result.diagnostics if d.code == code] or result.diagnostics
    return render_text(shown, result.sources).rstrip("\n")


def catalogue() -> str:
    """Every diagnostic code: severity, title, an example that triggers it and its output."""
    out = [
        "| code | severity | meaning |",
        "| --- | --- | --- |",
        *(f"| [{c.code}](#{c.code.lower()}) | {c.severity} | {c.title} |" for c in CODES.values()),
        "",
    ]
    for c in CODES.values():
        out.append(f"### {c.code}")
        out.append("")
        out.append(f"**{c.severity}: {c.title}**")
        out.append("")
        if not c.example:
            out.append(_NO_EXAMPLE.get(c.code, "Raised by the input itself; no spec shows it."))
            out.append("")
            continue
        out += ["```res", c.example.rstrip("\n"), "```", "", "```text"]
        out += [_example_output(c.code, c.example), "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


_NO_EXAMPLE = {
    "E001": "The file named cannot be read: it does not exist, is a directory, or is not "
    "readable. `resdsl` exits with status 2.",
    "E002": "The file is not UTF-8 text, or holds a NUL byte.",
    "E003": "The file is over 1 MiB; a spec describes one network in a few dozen lines.",
    "E004": "The file holds more than 4,096 tokens (words, numbers, sizes, strings, punctuation; "
    "comments do not count); the largest spec in the library has about 150. The parser does "
    "not start, so any input is answered in well under a second.",
    "E152": "`extends` chains more than 16 specs deep.",
    "E701": "The backend a spec is compiled for (`compile --backend`, `check --backend`, "
    "`resdsl.compile` and `resdsl.build`) reports something in the network that it cannot "
    "express. The built-in backends, torch and keras, express every network that validates; "
    "a plugin backend (the `resdsl.backends` entry points) may not. Located at the `network` "
    "line; the help names the way out.",
}


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


def default_text(value) -> str:
    if value is None:
        return "(derived)"
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
                f"`{arg}` ({default_text(kind.defaults.get(arg))}; {describe_reader(reader)})"
                for arg, reader in kind.readers.items()
                if arg not in skipped
            )
            out.append(f"| `{setting}` | `{name}` | {args or 'none'} |")
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- coverage

# The spec library of timm's ResNet registry, in the repository (not in the wheel).
TIMM_SPECS = "specs/timm"


def _features(network) -> tuple[str, list[str]]:
    """A network's family name and what its spec says beyond a plain ResNet, in words, read
    from its elaborated IR."""
    stages = network.stages
    blocks = [run.block for stage in stages for run in stage.runs]
    specs = [stage.block for stage in stages]
    convs = network.stem.convs
    needs = []
    if network.stem.preset == "deep":
        kind = "tiered" if convs[0].out_channels != convs[1].out_channels else "deep"
        needs.append(f"{kind} stem " + "-".join(str(c.out_channels) for c in convs[:3]))
    conv_pool = any(
        layer.torch == "maxpool.0" and layer.op == "conv" for layer in network.stem.layers
    )
    if conv_pool:
        needs.append("strided-conv stem pool")
    if any(b.shortcut.kind == "pool_project" for b in blocks):
        needs.append("`shortcut D`")
    kernel = max((b.shortcut.conv.kernel for b in blocks if b.shortcut.conv is not None), default=1)
    if kernel > 1:
        needs.append(f"{kernel}x{kernel} projections")
    attention = next((x for b in blocks for x in b.branch if x.op in ("se", "eca")), None)
    if attention is not None and attention.op == "se":
        needs.append(f"SE 1/{round(1 / attention.ratio)}" if attention.ratio else "SE")
    elif attention is not None:
        needs.append("ECA")
    needs += [f"`anti_alias {kind}`" for kind in sorted({b.anti_alias for b in blocks} - {"none"})]
    if network.conventions.norm == "group":
        needs.append(f"group norm ({network.conventions.norm_groups} groups)")
    grouped = max(s.groups for s in specs) > 1
    wide = max(s.width_factor for s in specs) > 1
    reduced = max(s.reduce_first for s in specs) > 1
    mixed = len({s.layout for s in specs}) > 1
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
    if conv_pool:
        family = "ResNet-RS"
    elif reduced:
        family = "SENet"
    elif mixed:
        family = "test network"
    else:
        prefix = {"se": "SE-", "eca": "ECA-"}.get(attention.op if attention else "", "")
        family = prefix + ("ResNeXt" if grouped else "Wide ResNet" if wide else "ResNet")
    return family, needs


def coverage(folder: str = TIMM_SPECS) -> str:
    """timm's ResNet registry as the spec library covers it: each family, its networks and
    what their specs need beyond a plain ResNet, read from the specs themselves."""
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


# --------------------------------------------------------------------------- README sections


def section(name: str) -> str:
    """The text that belongs between a marker pair of the README."""
    if name == "coverage":
        return coverage()
    return catalogue() if name == "catalogue" else reference()


def readme_section(readme: str, name: str) -> str | None:
    """The README's current text between the markers of `name`; None when they are absent."""
    start, end = MARKERS[name]
    if start not in readme or end not in readme:
        return None
    body = readme.split(start, 1)[1].split(end, 1)[0]
    return body.strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    name = next((n for n in ("reference", "coverage") if f"--{n}" in args), "catalogue")
    sys.stdout.write(section(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
