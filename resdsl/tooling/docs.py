"""The docs site's generated pages, and the text of `resdsl explain CODE`.

One page per diagnostic code (`docs/diagnostics/CODE.md`): what the code means, an example that
triggers it with what `resdsl check` prints for it, and how to fix it; `resdsl explain CODE`
prints the same page in the terminal. The pages are rendered from the code registry
(:data:`resdsl.diagnostics.core.CODES`) and their examples; the site's other generated tables
(the language reference and the family's coverage from :mod:`resdsl.tooling.catalogue`, the
index of codes) sit between markers in hand-written pages. A test fails
when a page is stale.

    python -m resdsl.tooling.docs           # write the generated pages and sections under docs/
    python -m resdsl.tooling.docs --check   # list the stale ones, exit 1 if any
"""

from __future__ import annotations

import os
import sys

# Where the site is published: the language server links each diagnostic to its page here
# (LSP `codeDescription.href`), and mkdocs.yml's `site_url` says the same (a test checks).
SITE_URL = "https://resdsl.readthedocs.io/en/latest/"

DOCS = "docs"
DIAGNOSTICS = "diagnostics"

EXAMPLE_FILE = "example.res"  # the name a code's example is checked under
NO_EXAMPLE = {
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

# What each code means, in a few sentences; the example and the fix come from the registry.
MEANINGS = {
    "E001": "The file named on the command line, or a parent named by `extends`, cannot be read.",
    "E002": "A spec is text in UTF-8; the file holds bytes that are not, or a NUL byte.",
    "E003": "resdsl refuses files over 1 MiB before reading them as a spec.",
    "E004": "resdsl counts the tokens before it parses, and refuses a file of more than 4,096, "
    "so that no input can keep the parser busy.",
    "E005": "At most 50 diagnostics of one file are shown; this one, last, counts those left "
    "out. It appears in every output format, so that a broken file cannot flood a CI log.",
    "E010": "The parser met a word, number or sign where the grammar allows none of its kind.",
    "E011": "The file holds a character that is no part of the language, outside a comment.",
    "E012": "The file ends inside the `network` block: a `}` (or more) is missing.",
    "E013": "The file holds no `network NAME { ... }` block: it is empty, or only comments.",
    "E101": "The key of a setting is none that the language knows. A misspelt key gets the "
    "nearest one as a suggestion.",
    "E102": "The kind named for a setting (a block type, a shortcut policy, a stem preset, an "
    "attention or anti-aliasing kind, a norm, an activation) is not one of the setting's "
    "kinds.",
    "E103": "A kind was given an argument it does not take, such as `groups` for a basic block.",
    "E104": "A setting or an argument was given a value of another kind: a word where a number "
    "belongs, a size where a word does.",
    "E105": "A setting or a stage name appears twice in one network (or in one stage's braces).",
    "E106": "A spec must say its `input`, its `classes`, its `block` and at least one `stage`; "
    "every other setting has a default.",
    "E107": "Stage names become attribute names of the PyTorch model and prefixes of the Keras "
    "layers, so a stage may not take a name the model already has (`fc`, `conv1`, "
    "`state_dict`, ...), a Python keyword, or one starting with `_`.",
    "E108": "The setting is allowed on the network but not inside a stage's braces, or the "
    "other way round (`dilation` and `waive` belong to a stage).",
    "E150": "The parent named by `extends` is not there, relative to the spec's folder. Where a "
    "`.res` file beside it has a close name, the help names it.",
    "E151": "Following `extends` from parent to parent comes back to a spec already in the chain.",
    "E152": "`extends` chains at most 16 specs deep.",
    "E153": "A parent must be a `.res` file inside the folder of the spec that was named "
    "(symlinks resolved), or inside a folder allowed with `--root DIR`; anything else is "
    "refused before it is read.",
    "E160": "A network's stages are listed (`stage` lines) or generated (`stages regnet(...)`), "
    "not both: the generator writes every stage, and a listed one would have no place among "
    "them.",
    "E161": "RegNet's generator cannot make a network of these numbers: `w0` is not a multiple "
    "of the quantum (8), `wm` does not grow the width (it must be above 1), a stage's width "
    "rounds to nothing with its group size, or the widths step up other than three times, "
    "giving other than RegNet's four stages. The message says which stage and why.",
    "E201": "The ResNet design rule: when a stage halves the spatial size, it doubles the "
    "width; when the size stays, the width stays. It is checked at every stage boundary; a "
    "stage that breaks it on purpose waives it with `{ waive halve_double }`.",
    "W202": "A stage waives the design rule, but its widths follow the rule anyway: the waiver "
    "can go.",
    "E301": "`shortcut identity` adds a block's input to its output unchanged, which needs both "
    "to have the same shape; a block that strides or widens has none.",
    "E302": "Option A's shortcut subsamples and zero-pads the new channels; it cannot take "
    "channels away, so a stage that narrows needs a projection.",
    "E303": "Option A pads the new channels equally on both sides, so the width must grow by an "
    "even number.",
    "E304": "Stochastic depth drops a block's residual branch; in a plain network "
    "(`shortcut none`) the branch is the only path, so nothing would be left.",
    "E305": "`zero_last_norm` zeroes each residual branch's last norm; in a plain network the "
    "branch is the only path, so the network would output zeros.",
    "E306": "`shortcut none` holds for the whole network: a plain stage among residual ones is "
    "refused.",
    "E401": "A basic block's two 3x3 convolutions are not grouped: `groups` and `group_width` "
    "belong to bottlenecks.",
    "E402": "A block kind builds its layers its own way, and some arguments and settings have "
    "nothing to act on there: a `res2net` block strides each split's 3x3, so `stride_on`, "
    "`reduce_first` and anti-aliasing do not apply. Remove them, or choose a kind that takes "
    "them (`bottleneck`).",
    "E403": "A grouped convolution splits its channels into `groups` equal parts, so the groups "
    "must divide the width; so must the paths of a composite layer that splits its input "
    "(a selective kernel's `paths` with `split: on`, each reading an equal share).",
    "E404": "`expansion` multiplies a block's width into its output width; below 1 the block "
    "would narrow what it expands.",
    "E405": "`stride_on` says which of a bottleneck's convolutions strides (`1x1` or `3x3`); a "
    "basic block has no such choice.",
    "E406": "A bottleneck's inner width, computed from the width, `group_width`, `groups` and "
    "`width_factor` as torchvision computes it, rounds down to zero channels.",
    "E407": "Group norm splits each norm's channels into `groups` equal parts, so the groups "
    "must divide the channels of every norm in the network.",
    "E408": "The squeeze-excitation layers of one network share one gate, and its global "
    "context layers one fusion: the generated module writes one helper of each. Stages that "
    "choose different gates (`sigmoid`, `hard_sigmoid`) or fusions (`add`, `scale`) are refused.",
    "E501": "The strides of the stem and the stages shrink the feature map below one pixel "
    "before the head.",
    "W502": "A stride of 2 met an odd size, which is floored (as PyTorch and Keras floor it); "
    "the network runs, but the shapes lose a row and a column.",
    "E503": "A blur pool reflects its map's edge pixels to pad it; a late map smaller than the "
    "padding cannot be reflected.",
    "E504": "Bilinear attention mixes each map with matrices of `block_size` rows and columns, "
    "widened to the map by a Kronecker product with the identity, so every map it sees must be "
    "a whole number of blocks on each side (timm asserts the same). The check uses the spec's "
    "input; a model built for another size needs the same.",
    "E601": "The number must be 1 or more: a stage of 0 blocks, a width of 0.",
    "E602": "The number is beyond what resdsl supports for it (block counts, widths, kernels, "
    "...): no real network uses it, and building one could run out of memory.",
    "E603": "The value counts something (blocks, channels, groups) and must be a whole number.",
    "E604": "The value lies outside the range its setting allows, e.g. a drop rate of 1 or more.",
    "E605": "The network would have more than 10 billion parameters; resdsl refuses it unless "
    "`--max-params N` allows it.",
    "E701": "The backend a spec is compiled for cannot express something in the network.",
}


def code_url(code: str) -> str:
    """The site's page of a diagnostic code (the LSP's `codeDescription.href`)."""
    return f"{SITE_URL}{DIAGNOSTICS}/{code}/"


def _example(code: str):
    """The analysis of a code's example (a cycle needs the file to be its own parent: it is
    named after it), and the diagnostics of that code in it (all of them where it has none)."""
    from resdsl.diagnostics.core import CODES
    from resdsl.driver import analyze_text

    example = CODES[code].example
    result = analyze_text(example, EXAMPLE_FILE)
    if code not in {d.code for d in result.diagnostics} and 'extends "' in example:
        result = analyze_text(example, example.split('extends "', 1)[1].split('"', 1)[0])
    found = [d for d in result.diagnostics if d.code == code] or result.diagnostics
    return result, found


def _fix(code: str) -> list[str]:
    """How to fix it: the help the example's diagnostic gives, and what `--fix` applies."""
    from resdsl.diagnostics.core import CODES
    from resdsl.diagnostics.fixes import apply
    from resdsl.driver import analyze_text

    example = CODES[code].example
    result, found = _example(code)
    helps = list(dict.fromkeys(d.help for d in found if d.help))
    out = [f"{h[0].upper()}{h[1:]}" + ("" if h.endswith(("?", ".")) else ".") for h in helps]
    suggestions = [s for d in found for s in d.suggestions]
    if suggestions:
        safe = all(s.applicability == "safe" for s in suggestions)
        how = "`resdsl check --fix`" if safe else "`resdsl check --fix --unsafe-fixes`"
        edits = ", ".join(
            f"`{example[s.span.start : s.span.end]}` by `{s.replacement}`" for s in suggestions
        )
        out += [
            "",
            f"The diagnostic carries a {'safe' if safe else 'unsafe'} suggestion, which {how} "
            f"and the editor's quick fix apply: it replaces {edits}.",
        ]
        fixed, _ = apply(example, suggestions)
        if not analyze_text(fixed, next(iter(result.sources))).diagnostics:
            out += ["", "```res", fixed.rstrip("\n"), "```"]
    return out


def code_page(code: str, site: bool = True) -> str:
    """The Markdown page of one code: what it means, an example and its diagnostic, the fix.
    `site` adds the links a page of the site has (the terminal's copy leaves them out)."""
    from resdsl.diagnostics.core import CODES, render_text

    c = CODES[code]
    out = [f"# {c.code}: {c.title}", ""]
    severity = f"**{c.severity}**"
    out += [f"{severity} · [every code](index.md)" if site else severity, ""]
    out += ["## What it means", "", MEANINGS[code], ""]
    if not c.example:
        out += [NO_EXAMPLE.get(code, "Raised by the input itself; no spec shows it."), ""]
    else:
        out += ["## An example", "", "```res", c.example.rstrip("\n"), "```", ""]
        out += ["`resdsl check example.res` prints:", "", "```text"]
        result, found = _example(code)
        out += [render_text(found, result.sources).rstrip("\n"), "```", ""]
        out += ["## How to fix it", "", *_fix(code), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def code_index() -> str:
    """The table of every code with its page (the diagnostics page's generated section)."""
    from resdsl.diagnostics.core import CODES

    out = ["| code | severity | meaning |", "| --- | --- | --- |"]
    out += [f"| [{c.code}]({c.code}.md) | {c.severity} | {c.title} |" for c in CODES.values()]
    return "\n".join(out) + "\n"


def code_list() -> str:
    """`resdsl explain` without a code: every code with its one-line title."""
    from resdsl.diagnostics.core import CODES

    return "".join(f"{c.code}  {c.severity:<7}  {c.title}\n" for c in CODES.values())


# --------------------------------------------------------------------------- the site's files

# Marked sections of hand-written pages: (page, marker name) -> what belongs between them.
START, END = "<!-- {}:start -->", "<!-- {}:end -->"
SECTIONS = {
    ("language.md", "reference"): "reference",
    ("family.md", "coverage"): "coverage",
    ("family.md", "res2net coverage"): "res2net coverage",
    ("family.md", "sknet coverage"): "sknet coverage",
    ("family.md", "resnest coverage"): "resnest coverage",
    ("family.md", "byobnet coverage"): "byobnet coverage",
    ("family.md", "legacy senet coverage"): "legacy senet coverage",
    ("family.md", "regnet coverage"): "regnet coverage",
    ("family.md", "torchvision regnet coverage"): "torchvision regnet coverage",
    ("family.md", "resnetv2 coverage"): "resnetv2 coverage",
    (f"{DIAGNOSTICS}/index.md", "codes"): "codes",
}


def section(name: str) -> str:
    """A marked section's generated text."""
    if name == "codes":
        return code_index()
    from resdsl.tooling.catalogue import section as catalogue_section

    return catalogue_section(name)


def marked(text: str, name: str) -> str | None:
    """The text between `name`'s markers in `text`; None where they are absent."""
    start, end = START.format(name), END.format(name)
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def _replace(text: str, name: str, body: str) -> str:
    start, end = START.format(name), END.format(name)
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}{end}{rest.split(end, 1)[1]}"


def generated(root: str) -> dict[str, str]:
    """Every generated file under `root`/docs, path -> its text as it should be: the code
    pages whole, the marked pages with their sections replaced."""
    from resdsl.diagnostics.core import CODES

    docs = os.path.join(root, DOCS)
    files = {
        os.path.join(docs, DIAGNOSTICS, f"{code}.md"): code_page(code) for code in sorted(CODES)
    }
    for (page, name), source in SECTIONS.items():
        path = os.path.join(docs, page)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if marked(text, name) is None:
            raise ValueError(f"{path} has no {name} markers")
        files[path] = _replace(text, name, section(source))
    return files


def stale(root: str) -> list[str]:
    """The generated files that differ from what they should be, or are missing, and the code
    pages of codes that are no more."""
    out = []
    for path, text in generated(root).items():
        try:
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = None
        if current != text:
            out.append(path)
    folder = os.path.join(root, DOCS, DIAGNOSTICS)
    from resdsl.diagnostics.core import CODES

    out += [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.endswith(".md") and name != "index.md" and name[:-3] not in CODES
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = os.getcwd()
    if "--check" in args:
        found = stale(root)
        for path in found:
            print(f"stale: {os.path.relpath(path, root)}")
        return 1 if found else 0
    for path, text in generated(root).items():
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    for path in stale(root):  # what is left: pages of codes that are no more
        os.remove(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
