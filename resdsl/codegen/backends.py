"""Backends: code generators, built in (torch, keras) or plugged in through the
`resdsl.backends` entry-point group.

A backend is a small class, as sqlglot's dialects are: a name, the file suffix it writes, and
`emit(network) -> str`. What a target cannot express it reports through `unsupported`, which
becomes a diagnostic rather than a silent drop. The built-in backends are also registered as
entry points, but are found without scanning them: the scan reads the metadata of every
installed distribution, so it runs only when another name is asked for.
"""

from __future__ import annotations

import hashlib
import importlib
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from resdsl.ir import Network

GROUP = "resdsl.backends"
BUILT_IN = {
    "torch": "resdsl.backends.torch:TorchBackend",
    "keras": "resdsl.backends.keras:KerasBackend",
}


class Backend(Protocol):
    name: str
    suffix: str

    def emit(self, network: Network) -> str:
        """The generated module's text."""

    def unsupported(self, network: Network) -> list[str]:
        """What this network uses that the target cannot express (empty when all is well)."""


def entry_points(group: str, **kwargs):
    """The installed entry points of `group` (:func:`importlib.metadata.entry_points`)."""
    from importlib import metadata

    return metadata.entry_points(group=group, **kwargs)


@lru_cache(maxsize=1)
def available() -> dict[str, str]:
    """Every backend's name and target ("module:Class"), the built-in ones and the installed
    plugins, without importing any backend. A plugin cannot take a built-in backend's name."""
    return {**{ep.name: ep.value for ep in entry_points(group=GROUP)}, **BUILT_IN}


def exists(name: str) -> bool:
    """Whether a backend called `name` is built in or installed; scans the entry points only
    for a name that is not built in."""
    return name in BUILT_IN or name in available()


def get_backend(name: str) -> Backend:
    """The backend called `name`; a KeyError names the ones that exist."""
    if name in BUILT_IN:
        module, _, attribute = BUILT_IN[name].partition(":")
        return getattr(importlib.import_module(module), attribute)()
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return ep.load()()
    raise KeyError(name)


# --------------------------------------------------------------------------- templates


def template_environment(folder: str | Path):
    """The jinja2 environment every backend renders with: templates lay out strings computed
    in Python, so undefined names are errors and no escaping or whitespace magic applies.

    Templates ship precompiled to Python modules in `folder/compiled` (`make templates`), as
    the parser ships its tables: compiling them costs a `compile` process about 20 ms, a
    sixth of its own work. When the templates or jinja2 no longer match the stamp written
    with the modules, the templates compile in memory instead. Nothing is ever written at run
    time.
    """
    import jinja2

    folder = Path(folder)
    loader: jinja2.BaseLoader = jinja2.FileSystemLoader(str(folder))
    if _compiled_are_current(folder):
        loader = jinja2.ModuleLoader(str(folder / COMPILED))
    return _environment(loader)


COMPILED = "compiled"  # the precompiled templates' folder, beside the templates
_STAMP = "STAMP"


def _environment(loader):
    import jinja2

    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def template_stamp(folder: Path) -> str:
    """What precompiled templates were compiled from: jinja2's version and every template."""
    import jinja2

    digest = hashlib.sha256(f"jinja2 {jinja2.__version__}\n".encode())
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _compiled_are_current(folder: Path) -> bool:
    try:
        stamp = (folder / COMPILED / _STAMP).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return stamp == template_stamp(folder)


def compile_templates(folder: str | Path) -> None:
    """Precompile `folder`'s templates into `folder/compiled`, with the stamp that says which
    templates and which jinja2 they were compiled from (`make templates`)."""
    import shutil

    import jinja2

    folder = Path(folder)
    target = folder / COMPILED
    shutil.rmtree(target, ignore_errors=True)
    environment = _environment(jinja2.FileSystemLoader(str(folder)))
    # Only the templates (not the compiled folder itself), in the sorted order jinja2 lists them.
    environment.compile_templates(str(target), extensions=["j2"], zip=None, ignore_errors=False)
    (target / _STAMP).write_text(template_stamp(folder) + "\n", encoding="utf-8")


def regenerate_command(network, backend: str, path: str | None = None, output: str | None = None):
    """The command line that generates `network`'s module: `resdsl compile SPEC --backend NAME`,
    with the spec's path and `-o OUTPUT` as given where known (a generated module's docstring
    says to regenerate it with this)."""
    import shlex

    words = ["resdsl", "compile", path or network.source.file, "--backend", backend]
    if output is not None:
        words += ["-o", output]
    return shlex.join(words)


def command_lines(command: str, indent: str, width: int = 100) -> str:
    """`command` at `indent`, broken between words with shell continuations (a backslash,
    doubled for the docstring it goes into) where a line would pass `width`."""
    lines: list[str] = []
    for word in command.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) + 3 <= width:
            lines[-1] += " " + word
        else:
            lines.append((indent if not lines else indent + "    ") + word)
    return " \\\\\n".join(lines)
