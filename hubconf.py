"""torch.hub entries for every spec of the library: `torch.hub.load(CHECKOUT, "resnet50d",
source="local")` builds the network of specs/resnet50d.res with resdsl's generated PyTorch code.

The entries are made from specs/ when torch.hub imports this file, one per spec: a spec at the
top of specs/ by its file's stem (`resnet50d`), one in a subfolder by the folder and the stem
(`cifar_resnet20`, `timm_resnet50d`). `torch.hub.list(CHECKOUT, source="local")` lists them and
`torch.hub.help(CHECKOUT, "resnet50d", source="local")` says which spec an entry builds.

Each takes `num_classes` (default: the spec's) and `weights`, a file of trained weights
(`resdsl train`'s best.pt, a state dict that fits, torchvision's or timm's, read with
weights_only=True, through the reader every resdsl command uses). A spec has no pretrained
weights of its own: `pretrained=True` is an error that says so.
"""

from __future__ import annotations

import re
from pathlib import Path

# What torch.hub checks before it imports this file (resdsl's own, imported from the checkout).
dependencies = ["torch", "lark", "pydantic", "jinja2", "click", "rich"]

_SPECS = Path(__file__).resolve().parent / "specs"


def _entry_name(path: Path) -> str:
    """`resnet50d` for specs/resnet50d.res, `cifar_resnet20` for specs/cifar/resnet20.res."""
    relative = path.relative_to(_SPECS).with_suffix("")
    return re.sub(r"\W", "_", "_".join(relative.parts))


def _build(spec: Path, pretrained: bool, num_classes: int | None, weights: str | None):
    import resdsl

    if pretrained:
        raise ValueError(
            f"{spec.name} has no pretrained weights: train them (resdsl train) and pass "
            "weights='runs/NAME/best.pt'"
        )
    network = resdsl.load(spec)
    state = None
    if weights is not None:
        from resdsl.interop.weight_files import read_trained
        from resdsl.interop.weights import classifier_size

        state, _ = read_trained(weights, network, str(spec))
        num_classes = num_classes or classifier_size(state, network)
    model = resdsl.build(spec, backend="torch", num_classes=num_classes)
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model


def _entry(spec: Path):
    def entry(pretrained: bool = False, num_classes: int | None = None, weights=None):
        return _build(spec, pretrained, num_classes, weights)

    name = _entry_name(spec)
    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"The network of specs/{spec.relative_to(_SPECS).as_posix()}, built by resdsl's "
        "PyTorch backend; num_classes replaces the spec's, weights loads trained weights."
    )
    return name, entry


globals().update(dict(_entry(path) for path in sorted(_SPECS.rglob("*.res"))))
