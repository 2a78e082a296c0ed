"""Helpers for the torch backend's tests: compile a spec and import the generated module."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
import tempfile
from pathlib import Path

import resdsl

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ALL_SPECS = sorted(SPECS.rglob("*.res"))
_MODULES = Path(tempfile.mkdtemp(prefix="resdsl-torch-"))


def spec_id(path: Path) -> str:
    return path.relative_to(SPECS).with_suffix("").as_posix()


@functools.cache
def compiled(path_or_text: str) -> str:
    return resdsl.compile(path_or_text, backend="torch")


def import_code(code: str):
    """Import generated code from a real file, as a user would (torch.compile reads sources)."""
    name = "resdsl_gen_" + hashlib.sha256(code.encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    path = _MODULES / f"{name}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def generated(path_or_text: str | Path):
    """The generated module of a spec file or text."""
    return import_code(compiled(str(path_or_text)))
