"""The README's generated sections: the language reference and the diagnostic catalogue.

Both are rendered from the compiler's own tables (:data:`resdsl.diagnostics.CODES`,
:data:`resdsl.schema.FIELDS` and the kinds tables), so the documentation cannot drift from the
code; a test compares the README's sections, between their markers, with this output.

    python -m resdsl.catalogue              # the diagnostic catalogue
    python -m resdsl.catalogue --reference  # the language reference
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable

from . import schema
from .diagnostics import CODES, render_text
from .driver import analyze_text
from .values import on_off

MARKERS = {
    "catalogue": ("<!-- catalogue:start -->", "<!-- catalogue:end -->"),
    "reference": ("<!-- reference:start -->", "<!-- reference:end -->"),
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
    "E152": "`extends` chains more than 16 specs deep.",
}


# --------------------------------------------------------------------------- reference


def _describe_reader(reader: Callable) -> str:
    """What values a reader (see :mod:`resdsl.values`) accepts, read from its closure."""
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
        return f"whole number {bound['low']}..{bound['high']:,}"
    if "high_open" in bound:
        close = ")" if bound["high_open"] else "]"
        return f"number in [{bound['low']:g}, {bound['high']:g}{close}"
    if "high" in bound:
        return f"positive number up to {bound['high']:g}"
    return getattr(reader, "__name__", "")  # pragma: no cover - a reader not described here


def _default_text(value) -> str:
    if value is None:
        return "(derived)"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


_SETTING_DEFAULTS = {
    "input": "required",
    "classes": "required",
    "block": "required",
    "stem": "`imagenet`",
    "shortcut": "`B`",
    "strided_block": "`first`",
    "conv_bias": "`off`",
    "norm": "`batch`",
    "activation": "`relu`",
    "init": "`kaiming`",
    "stochastic_depth": "`0`",
    "head": "`avgpool`",
    "dilation": "`1`",
    "waive": "none",
}

_SYNTAX = """\
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
average-pools before a stride-1 projection.
"""


def reference() -> str:
    """The syntax, every setting with its values and default, every kind with its arguments."""
    out = ["#### Syntax", "", _SYNTAX, "#### Settings", ""]
    out += ["| setting | where | values | default |", "| --- | --- | --- | --- |"]
    for key, field in schema.FIELDS.items():
        where = " and ".join(
            w for w, ok in (("network", field.network), ("stage", field.stage)) if ok
        )
        values = _describe_reader(field.reader)
        out.append(f"| `{key}` | {where} | {values} | {_SETTING_DEFAULTS.get(key, '')} |")
    out += ["", "#### Kinds and their arguments", ""]
    out += ["| setting | kind | arguments (default; values) |", "| --- | --- | --- |"]
    tables = (
        ("stem", schema.STEMS),
        ("block", schema.BLOCKS),
        ("shortcut", schema.SHORTCUTS),
        ("norm", schema.NORMS),
        ("init", schema.INITS),
        ("head", schema.HEADS),
    )
    for setting, kinds in tables:
        for name, kind in kinds.items():
            args = "; ".join(
                f"`{arg}` ({_default_text(kind.defaults.get(arg))}; {_describe_reader(reader)})"
                for arg, reader in kind.readers.items()
            )
            out.append(f"| `{setting}` | `{name}` | {args or 'none'} |")
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- README sections


def section(name: str) -> str:
    """The text that belongs between a marker pair of the README."""
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
    name = "reference" if "--reference" in args else "catalogue"
    sys.stdout.write(section(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
