"""Helpers shared by the tooling commands: load a spec or exit with its diagnostics."""

from __future__ import annotations

import sys

from ..cli import EXIT_SPEC, _report
from ..driver import analyze_file
from ..ir import Network


def load_or_exit(path: str) -> Network:
    """The elaborated network of `path`; on errors, print them and exit 1 (2 for I/O)."""
    result = analyze_file(path)
    status = _report([result], "text")
    if not result.ok:
        sys.exit(status or EXIT_SPEC)
    return result.network
