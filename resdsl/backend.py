"""Backends: code generators registered under the `resdsl.backends` entry-point group.

A backend is a small class, as sqlglot's dialects are: a name, the file suffix it writes, and
`emit(network) -> str`. What a target cannot express it reports through `unsupported`, which
becomes a diagnostic rather than a silent drop. The built-in torch and keras backends register
through the same entry points as a third party's would.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from .ir import Network

GROUP = "resdsl.backends"


class Backend(Protocol):
    name: str
    suffix: str

    def emit(self, network: Network) -> str:
        """The generated module's text."""

    def unsupported(self, network: Network) -> list[str]:
        """What this network uses that the target cannot express (empty when all is well)."""


@lru_cache(maxsize=1)
def available() -> dict[str, str]:
    """Backend names and their entry-point targets, without importing any backend."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def template_environment(folder: str | Path):
    """The jinja2 environment every backend renders with: templates lay out strings computed
    in Python, so undefined names are errors and no escaping or whitespace magic applies."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def get_backend(name: str) -> Backend:
    """The backend called `name`; a KeyError names the ones that exist."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return ep.load()()
    raise KeyError(name)
