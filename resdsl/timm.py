"""resdsl networks wherever timm models go: `timm.create_model` builds a spec's generated model.

    import timm
    import resdsl.timm

    resdsl.timm.register("specs/resnet26d.res", name="my_resnet26d")
    model = timm.create_model("my_resnet26d", num_classes=10)
    backbone = timm.create_model("my_resnet26d", features_only=True, out_indices=(1, 2, 3))

`register` compiles the spec with the torch backend and registers it in timm's registry under
the spec's file stem (or `name`), with a pretrained_cfg that says the input size, the
normalisation, the evaluation crop, the first convolution and the classifier. The model is the
generated one, its state dict the generated module's; timm's model interface is added around it
(a subclass: the same parameter names): `forward_features`, `forward_head(x, pre_logits)`,
`get_classifier`, `reset_classifier`, `feature_info` (one entry per stage),
`forward_intermediates` and `prune_intermediate_layers` (timm's `features_only`, through its
FeatureGetterNet), `num_features`, `num_classes`.

`register_library()` registers every spec of the repository's specs/ folder, as
`resdsl_<path>` (specs/timm/resnet50d.res is `resdsl_timm_resnet50d`): timm's own model names
are never overwritten. `python -m resdsl.timm SCRIPT ARGS...` (or the `resdsl-timm` command)
runs a script, timm's train.py or validate.py, with the library registered:

    python -m resdsl.timm train.py --data-dir DIR --model resdsl_cifar_resnet20 --num-classes 10

A spec has no pretrained weights; `pretrained=True` with `pretrained_cfg_overlay={"file":
"runs/r20/best.pt"}` loads a `resdsl train` checkpoint (timm reads its `model` entry).
"""

from __future__ import annotations

import os
import re
import sys
import types
from pathlib import Path

# The registry module timm sees for resdsl's models: `timm.list_models(module=MODULE)`.
MODULE = "resdsl_timm_models"
PREFIX = "resdsl_"
# How evaluation crops an image of this size or larger (resdsl's own eval view); CIFAR-sized
# inputs are seen whole.
CROP_PCT, CROP_FROM = 0.875, 64
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_registered: dict[str, str] = {}  # timm name -> the spec file it builds


def _registry_module() -> types.ModuleType:
    """The module timm files resdsl's entry points and pretrained cfgs under."""
    module = sys.modules.get(MODULE)
    if module is None:
        module = types.ModuleType(MODULE, "resdsl specs registered with timm (resdsl.timm)")
        module.default_cfgs = {}
        module.__all__ = []
        sys.modules[MODULE] = module
    return module


def library_root() -> Path:
    """The spec library: $RESDSL_SPECS, else the checkout's specs/ beside the package."""
    return Path(os.environ.get("RESDSL_SPECS") or Path(__file__).resolve().parent.parent / "specs")


def library_name(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """The timm name `register_library` gives a spec: `resdsl_` and its path under the library
    without `.res`, `/` and other non-word characters as `_`."""
    relative = Path(path).resolve().relative_to(Path(root or library_root()).resolve())
    return PREFIX + re.sub(r"\W", "_", str(relative.with_suffix("")).replace(os.sep, "_"))


def pretrained_cfg(network) -> dict:
    """timm's pretrained_cfg for a spec's network: input size, normalisation (ImageNet's for
    RGB, 0.5 otherwise: a spec does not say), the evaluation crop, first conv and classifier."""
    from resdsl.interop.weights import classifier, layer_pairs

    channels, height, width = network.input.channels, network.input.height, network.input.width
    first_conv = next((p[0] for p in layer_pairs(network) if p[2].op == "conv"), None)
    rgb = channels == 3
    return {
        "url": "",
        "num_classes": network.classes,
        "input_size": (channels, height, width),
        "crop_pct": CROP_PCT if min(height, width) >= CROP_FROM else 1.0,
        "crop_mode": "center",
        "interpolation": "bilinear",
        "mean": IMAGENET_MEAN if rgb else (0.5,) * channels,
        "std": IMAGENET_STD if rgb else (0.5,) * channels,
        "first_conv": first_conv,
        "classifier": classifier(network)[0],
        "license": "the spec's",
        "notes": (f"resdsl spec {network.source.file}, sha256 {network.source.sha256}",),
    }


def register(spec: str | os.PathLike, name: str | None = None, *, overwrite: bool = False) -> str:
    """Register the network of `spec` with timm as `name` (default: the file's stem) and
    return the name. A name timm already has for a model of its own is refused (ValueError)
    unless `overwrite`; a spec with errors raises resdsl.SpecError."""
    import resdsl

    network = resdsl.load(spec)
    name = name or Path(spec).stem
    if not name.isidentifier():
        raise ValueError(f"`{name}` is not a timm model name (letters, digits, `_`): pass name=")
    _check_free(name, overwrite)
    module = _registry_module()
    cfg = pretrained_cfg(network)
    module.default_cfgs[name] = cfg
    built: dict[str, type] = {}

    def entrypoint(pretrained: bool = False, **kwargs):
        from timm.models import build_model_with_cfg

        if "cls" not in built:
            built["cls"] = _timm_class(network, name)
        model_class = built["cls"]
        feature_cfg = {
            "feature_cls": "getter",
            "out_indices": tuple(range(len(model_class.stage_names))),
        }
        return build_model_with_cfg(
            model_class, name, pretrained, feature_cfg=feature_cfg, **kwargs
        )

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = MODULE
    entrypoint.__doc__ = f"{network.name}, from {network.source.file} (resdsl)."
    setattr(module, name, entrypoint)
    _register_quietly(entrypoint)
    _registered[name] = str(network.source.file)
    return name


def _check_free(name: str, overwrite: bool) -> None:
    from timm.models import is_model

    if is_model(name) and name not in _registered and not overwrite:
        raise ValueError(
            f"timm already has a model `{name}`: register the spec under another name "
            f"(name='{PREFIX}{name}'), or pass overwrite=True to replace timm's"
        )


def _register_quietly(entrypoint) -> None:
    """timm's register_model, without its warning where resdsl registers a name again."""
    import warnings

    from timm.models import register_model

    with warnings.catch_warnings():
        if entrypoint.__name__ in _registered:
            warnings.filterwarnings("ignore", message="Overwriting")
        register_model(entrypoint)


def register_library(root: str | os.PathLike | None = None) -> list[str]:
    """Register every spec under `root` (default :func:`library_root`) as
    :func:`library_name` says; the names, sorted. A spec with errors is left out (`resdsl
    check` names them)."""
    import resdsl

    root = Path(root or library_root())
    names = []
    for path in sorted(root.rglob("*.res")):
        try:
            names.append(register(path, library_name(path, root), overwrite=True))
        except resdsl.SpecError:
            continue
    return sorted(names)


def _network_class(module):
    """The generated module's network class: the one with forward_features and
    forward_stages (the blocks have neither)."""
    import torch.nn as nn

    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, nn.Module)
            and value.__module__ == module.__name__
            and hasattr(value, "forward_features")
            and hasattr(value, "forward_stages")
        ):
            return value
    raise RuntimeError(f"{module.__name__} has no network class (forward_features, forward_stages)")


def _stage_shapes(base, network) -> list[tuple[int, int]]:
    """(channels, reduction) of each stage's output, from a pass on the meta device (no
    memory, no arithmetic)."""
    import torch

    channels, height = network.input.channels, network.input.height
    with torch.device("meta"):
        model = base(network.classes)
        stages = model.forward_stages(torch.empty(1, channels, height, network.input.width))
    return [(int(s.shape[1]), max(1, round(height / int(s.shape[2])))) for s in stages]


def _timm_class(network, name: str):
    """A subclass of the generated network class with timm's model interface."""
    import torch
    import torch.nn as nn
    from timm.models._features import feature_take_indices

    from resdsl.codegen.backends import get_backend
    from resdsl.codegen.generated import import_source
    from resdsl.interop.weights import classifier

    source = get_backend("torch").emit(network)
    module = import_source(source, f"_resdsl_timm_{name}", f"<resdsl timm {network.source.file}>")
    base = _network_class(module)
    head = classifier(network)[0]
    shapes = _stage_shapes(base, network)
    stages_named = tuple(stage.name for stage in network.stages)
    spec_channels = network.input.channels

    class TimmNetwork(base):
        """The generated network with timm's model interface (resdsl.timm)."""

        stage_names = stages_named

        def __init__(
            self,
            num_classes: int = network.classes,
            in_chans: int = spec_channels,
            drop_rate: float = 0.0,
            global_pool: str = "avg",
            **kwargs,
        ):
            unknown = sorted(k for k, v in kwargs.items() if v is not None)
            if unknown:
                raise TypeError(
                    f"{name}: {', '.join(unknown)} not supported: the spec "
                    f"({network.source.file}) decides the architecture"
                )
            if in_chans != spec_channels:
                raise ValueError(
                    f"{name}: in_chans={in_chans}, but the spec's input has {spec_channels} "
                    "channels: change `input` in the spec"
                )
            if drop_rate:
                raise ValueError(f"{name}: drop_rate: set the head's dropout in the spec")
            if global_pool not in ("avg", ""):
                raise ValueError(f"{name}: global_pool={global_pool!r}: the spec's head pools avg")
            super().__init__(max(int(num_classes), 1))
            self.num_features = self.head_hidden_size = getattr(self, head).in_features
            self.num_classes = int(num_classes)
            if not num_classes:
                setattr(self, head, nn.Identity())
            self.feature_info = [
                {"num_chs": chs, "reduction": reduction, "module": stage, "index": i}
                for i, (stage, (chs, reduction)) in enumerate(
                    zip(stages_named, shapes, strict=True)
                )
            ]
            self._given_features = None

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            given, self._given_features = self._given_features, None
            return super().forward_features(x) if given is None else given

        def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
            """The head (pooling, what the spec puts before the classifier, the classifier) on
            forward_features' output; with `pre_logits`, what the classifier takes. The
            generated forward runs it, from features given instead of computed."""
            captured = []
            hook = getattr(self, head).register_forward_pre_hook(
                lambda _module, args: captured.append(args[0])
            )
            self._given_features = x
            try:
                logits = super().forward(x)
            finally:
                self._given_features = None
                hook.remove()
            return captured[0] if pre_logits else logits

        def get_classifier(self) -> nn.Module:
            return getattr(self, head)

        def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
            if global_pool not in (None, "avg", ""):
                raise ValueError(f"{name}: global_pool={global_pool!r}: the spec's head pools avg")
            self.num_classes = int(num_classes)
            fresh = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
            setattr(self, head, fresh)

        def forward_intermediates(
            self,
            x: torch.Tensor,
            indices=None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
        ):
            """timm's: the stages' outputs at `indices` (and forward_features' output)."""
            if output_fmt != "NCHW":
                raise ValueError(f"{name}: output_fmt={output_fmt!r}: the stages give NCHW")
            take, _ = feature_take_indices(len(stages_named), indices)
            stages = self.forward_stages(x)
            intermediates = [stages[i] for i in take]
            if intermediates_only:
                return intermediates
            return intermediates, self.forward_features(x)

        def prune_intermediate_layers(
            self, indices=1, prune_norm: bool = False, prune_head: bool = True
        ):
            """timm's: the stage indices kept; the classifier goes (features only). Every
            stage stays: forward_stages runs them all."""
            take, _ = feature_take_indices(len(stages_named), indices)
            if prune_head:
                self.reset_classifier(0)
            return take

    TimmNetwork.__name__ = TimmNetwork.__qualname__ = f"Timm{base.__name__}"
    return TimmNetwork


def main(argv: list[str] | None = None) -> int:
    """`python -m resdsl.timm SCRIPT [ARGS...]`: run SCRIPT (timm's train.py, validate.py...)
    as __main__ with the spec library registered (`resdsl_...` names)."""
    import runpy

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[0] + "\n\nusage: python -m resdsl.timm SCRIPT [ARGS...]")
        return 0 if argv else 2
    script = argv[0]
    if not os.path.isfile(script):
        print(f"error: no script `{script}`", file=sys.stderr)
        return 2
    names = register_library()
    print(f"resdsl: {len(names)} specs registered with timm ({names[0]} ...)", file=sys.stderr)
    sys.argv = argv
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
