"""`extends`: a spec and its chain of parents, merged into one set of declarations.

A parent is named relative to its child's folder. It must be a `.res` file inside the folder
of the spec that was named (or inside one of the extra roots given, `--root`), after symlinks
are resolved: `extends` cannot make resdsl read, or echo in a diagnostic, any other file. Each
file of the chain is read and parsed; a parent outside, a cycle, a chain deeper than
:data:`MAX_EXTENDS_DEPTH` or a missing parent is a diagnostic.
Merging overlays each child on its parent: a child's setting replaces its parent's, and a stage
replaces the parent's stage of the same name in place or is appended.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from resdsl.diagnostics import core as dx
from resdsl.diagnostics.core import Diagnostics
from resdsl.ir import Name, NetworkDecl, Setting, StageDecl, String
from resdsl.language.parser import parse, read_source
from resdsl.language.values import closest

MAX_EXTENDS_DEPTH = 16


@dataclass
class Merged:
    """A network after `extends`: the last word on each setting and each stage, in order."""

    decl: NetworkDecl
    settings: dict[str, Setting]
    stages: dict[str, StageDecl]


def load_merged(
    text: str,
    file: str,
    diags: Diagnostics,
    sources: dict[str, str],
    roots: tuple[str, ...] = (),
) -> Merged | None:
    """Parse `text` (the spec at `file`), read and parse its parents, and merge the chain.

    Parents may come from the folder of `file` (the current folder for text without one) and
    from `roots`. Every file read is added to `sources`. None when a file of the chain does not
    parse or a parent cannot be loaded; the diagnostics say why.
    """
    allowed = tuple(os.path.realpath(r) for r in (os.path.dirname(file) or ".", *roots))
    return _load(text, file, diags, sources, chain=[], roots=allowed)


def inside(path: str, roots: tuple[str, ...]) -> bool:
    real = os.path.realpath(path)
    return real.endswith(".res") and any(os.path.commonpath([real, root]) == root for root in roots)


def _load(
    text: str,
    file: str,
    diags: Diagnostics,
    sources: dict[str, str],
    chain: list[str],
    roots: tuple[str, ...],
) -> Merged | None:
    tree = parse(text, file, diags)
    if tree is None:
        return None
    decl = tree.network
    parent = None
    if decl.extends is not None:
        path = parent_path(file, decl.extends)
        if not inside(path, roots):
            # Nothing of the file is read or shown, not even whether it exists, unless adding
            # `.res` names an allowed parent (`extends "resnet50"`).
            suffixed = path + ".res"
            missing_suffix = not path.endswith(".res") and inside(suffixed, roots)
            if missing_suffix and os.path.isfile(suffixed):
                label, help_text = "no `.res`", f'write `extends "{decl.extends.text}.res"`'
            else:
                label = "outside the spec's folder"
                help_text = (
                    "keep parents beside the specs that extend them, or allow another folder "
                    "with `--root DIR`"
                )
            diags.add(
                dx.E_PARENT_OUTSIDE,
                f"parent `{decl.extends.text}` is not a `.res` file inside the spec's folder",
                decl.extends.span,
                label=label,
                help=help_text,
            )
            return None
        key = os.path.realpath(path)
        if key in chain or key == os.path.realpath(file):
            diags.add(
                dx.E_EXTENDS_CYCLE,
                f"`{file}` extends `{path}`, which extends it back",
                decl.extends.span,
                label="this closes a cycle",
                help="a spec cannot extend itself or one of its own children",
            )
            return None
        if len(chain) >= MAX_EXTENDS_DEPTH:
            diags.add(
                dx.E_EXTENDS_DEPTH,
                f"more than {MAX_EXTENDS_DEPTH} specs deep in `extends`",
                decl.extends.span,
                help="extend a spec nearer the root of the chain",
            )
            return None
        if not os.path.isfile(path):
            hint, fixes = _near_file(decl.extends, path)
            diags.add(
                dx.E_PARENT_MISSING,
                f"parent spec `{path}` not found",
                decl.extends.span,
                label="no such file",
                help=hint or "`extends` names a file relative to this spec's folder",
                suggestions=fixes,
            )
            return None
        parent_text = read_source(path, diags, sources)
        if parent_text is None:
            return None
        parent = _load(parent_text, path, diags, sources, [*chain, os.path.realpath(file)], roots)
        if parent is None:
            return None
    return merge(decl, parent, diags)


def parent_path(child_file: str, extends: String) -> str:
    """A parent named relative to the child's folder, kept relative so output never holds an
    absolute path."""
    folder = os.path.dirname(child_file)
    return (
        os.path.normpath(os.path.join(folder, extends.text))
        if folder
        else os.path.normpath(extends.text)
    )


def merge(child: NetworkDecl, parent: Merged | None, diags: Diagnostics) -> Merged:
    """Overlay a network's own settings and stages on its parent's."""
    settings = _overlay(
        child.settings,
        lambda s: s.key,
        parent.settings if parent else {},
        diags,
        message="`{}` is set twice",
        verbs=("set again here", "first set here"),
        help="remove one of them",
    )
    stages = _overlay(
        child.stages,
        lambda s: s.name,
        parent.stages if parent else {},
        diags,
        message="stage `{}` is declared twice",
        verbs=("declared again here", "first declared here"),
        help="give each stage its own name",
    )
    return Merged(child, settings, stages)


def _overlay(items, name_of, inherited: dict, diags: Diagnostics, *, message, verbs, help) -> dict:
    """`inherited` with each of `items` replacing the entry of its name in place (dict order is
    kept) or appended; a name given twice among `items` is an error at the second."""
    merged = dict(inherited)
    own: dict[str, Name] = {}
    for item in items:
        name = name_of(item)
        if name.text in own:
            diags.add(
                dx.E_DUPLICATE,
                message.format(name.text),
                name.span,
                label=verbs[0],
                notes=(dx.Label(own[name.text].span, verbs[1]),),
                help=help,
            )
            continue
        own[name.text] = name
        merged[name.text] = item
    return merged


_MAX_LISTED = 1000  # `.res` files of a folder compared with a missing parent's name


def _near_file(extends, path: str) -> tuple[str | None, tuple]:
    """A "did you mean" for a parent that does not exist: the `.res` file beside where it was
    looked for whose name is closest (`extends "resnet_50.res"` for `resnet50.res`), as a
    suggestion that rewrites the string."""
    folder, name = os.path.split(path)
    try:
        with os.scandir(folder or ".") as entries:
            names = sorted(
                e.name
                for e in itertools.islice(entries, 10 * _MAX_LISTED)
                if e.name.endswith(".res")
            )[:_MAX_LISTED]
    except OSError:
        return None, ()
    found = closest(name, names)
    if found is None:
        return None, ()
    option, applicability = found
    written = extends.text
    text = written[: len(written) - len(os.path.basename(written))] + option
    suggestion = dx.Suggestion(extends.span, f'"{text}"', applicability)
    return f'did you mean `extends "{text}"`?', (suggestion,)
