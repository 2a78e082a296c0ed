"""Helpers for the torch backend's tests: compile a spec and import the generated module."""

from __future__ import annotations

import functools
import hashlib
import tempfile
from pathlib import Path

import resdsl
from resdsl.generated import import_file

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ALL_SPECS = sorted(set(SPECS.rglob("*.res")) - set((SPECS / "timm").glob("*.res")))
_MODULES = Path(tempfile.mkdtemp(prefix="resdsl-torch-"))


def spec_id(path: Path) -> str:
    return path.relative_to(SPECS).with_suffix("").as_posix()


@functools.cache
def compiled(path_or_text: str) -> str:
    return resdsl.compile(path_or_text, backend="torch")


@functools.cache
def import_code(code: str):
    """Import generated code from a real file, as a user would (torch.compile reads sources);
    the same code is imported once."""
    path = _MODULES / f"resdsl_gen_{hashlib.sha256(code.encode()).hexdigest()[:16]}.py"
    path.write_text(code)
    return import_file(path)


def generated(path_or_text: str | Path):
    """The generated module of a spec file or text."""
    return import_code(compiled(str(path_or_text)))


def randomise_norms(model) -> None:
    """Give `model`'s norms realistic random scales, offsets and (batch norm) running
    statistics, so that a comparison with another model covers them: a fresh model's are ones
    and zeros. Draws from torch's global generator; seed it first."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
