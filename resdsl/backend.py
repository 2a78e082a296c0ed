"""Backends: code generators, built in (torch, keras) or plugged in through the
`resdsl.backends` entry-point group.

A backend is a small class, as sqlglot's dialects are: a name, the file suffix it writes, and
`emit(network) -> str`. What a target cannot express it reports through `unsupported`, which
becomes a diagnostic rather than a silent drop. The built-in backends are also registered as
entry points, but are found without scanning them: the scan reads the metadata of every
installed distribution, so it runs only when another name is asked for.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from .ir import Network

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

    Templates compile in memory, once per process. (A bytecode cache in the user's cache
    folder was measured to save about 5 ms of a `compile`, within the noise of a whole
    process, and would be a file written outside the project: it is not used.)
    """
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
