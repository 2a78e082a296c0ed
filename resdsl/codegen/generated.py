"""Importing generated code: the one way resdsl, its tests and its benchmarks turn the text of a
generated module (or a file holding one) into a module object.

The module is registered in `sys.modules` while its code runs, because dataclasses and typing
look classes' modules up there; if the code raises, the entry is removed again, so a failed
import leaves nothing behind. Both functions execute the code they are given: use them only
on code resdsl generated (or that you trust as much).
"""

from __future__ import annotations

import hashlib
import linecache
import os
import re
import sys
from types import ModuleType


def import_source(code: str, name: str, origin: str) -> ModuleType:
    """Execute `code` as a new module called `name`, and return it.

    `origin` is the module's `__file__` and the file name that tracebacks show: a real path
    when the code came from a file, or a description such as `<resdsl torch resnet50.res>`.
    The text of a description-named module is kept in :mod:`linecache`, so tracebacks and
    `inspect.getsource` (which `torch.compile` uses) still see its lines. A module already
    registered under `name` is replaced.
    """
    module = ModuleType(name)
    module.__file__ = origin
    if not os.path.isfile(origin):
        linecache.cache[origin] = (len(code), None, code.splitlines(keepends=True), origin)
    sys.modules[name] = module
    try:
        exec(compile(code, origin, "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def import_file(path: str | os.PathLike) -> ModuleType:
    """Import the Python file at `path` under a module name made from its absolute path.

    The name, `resdsl_generated_<stem>_<hash>`, is the same for the same path and differs
    between paths, so two files never clash, and importing a rewritten file again replaces
    the module with its new code. The file is read afresh each time (no bytecode cache, which
    could serve a stale compilation of a file rewritten within the same second).
    """
    path = os.path.abspath(os.fspath(path))
    with open(path, encoding="utf-8") as handle:
        code = handle.read()
    return import_source(code, module_name(path), path)


def module_name(path: str | os.PathLike) -> str:
    """The module name :func:`import_file` gives the file at `path`."""
    path = os.path.abspath(os.fspath(path))
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0], flags=re.ASCII)
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"resdsl_generated_{stem}_{digest}"
