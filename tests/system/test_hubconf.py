"""hubconf.py: torch.hub.load(<checkout>, NAME, source="local") builds any library spec, the
entries made from specs/ (none typed in)."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import resdsl  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _hubconf():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_spec_of_the_library_has_one_entry():
    module = _hubconf()
    entries = {  # what torch.hub offers: the module's public functions
        name: value
        for name, value in vars(module).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    specs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").rglob("*.res"))
    named = sorted(re.search(r"specs/\S+\.res", e.__doc__).group() for e in entries.values())
    assert named == specs
    assert "resnet50d" in entries and "cifar_resnet20" in entries and "timm_resnet50d" in entries


@pytest.mark.parametrize(
    ("name", "spec"),
    [("resnet50d", "specs/resnet50d.res"), ("cifar_resnet20", "specs/cifar/resnet20.res")],
)
def test_torch_hub_load_builds_the_spec(name, spec, tmp_path):
    """The hub's model computes what resdsl.build's does with the same weights; weights= takes
    a checkpoint saved under DDP, as every resdsl command does."""
    model = torch.hub.load(str(ROOT), name, source="local", num_classes=5, trust_repo=True)
    reference = resdsl.build(ROOT / spec, backend="torch", num_classes=5)
    assert type(model).__name__ == type(reference).__name__
    reference.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x))
    weights = tmp_path / "best.pt"
    torch.save({"model": {f"module.{k}": v for k, v in reference.state_dict().items()}}, weights)
    loaded = torch.hub.load(str(ROOT), name, source="local", weights=str(weights))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), reference(x))


def test_pretrained_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"no pretrained weights: train them"):
        torch.hub.load(str(ROOT), "cifar_resnet20", source="local", pretrained=True)
