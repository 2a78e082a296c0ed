"""The specs the tests run on, and which of them `make test` runs at full size.

`make test` checks behaviour on a representative handful: every block layout, pre- and
post-activation, every shortcut kind, the deep stem, strided-last stages, grouped and dilated
convolutions. The same checks on every spec at full size (ResNet-152, ResNet-1202 ...) are
marked `conformance` and run under `make conformance`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
# specs/timm (timm's registry, 79 networks) has tests of its own, at small inputs
# (tests/parity/test_timm_torch.py, tests/parity/test_timm_keras.py); the code-level checks add
# it back.
TIMM_SPECS = sorted((SPECS / "timm").glob("*.res"))
ALL_SPECS = sorted(set(SPECS.rglob("*.res")) - set(TIMM_SPECS))
FEATURE_SPECS = sorted((Path(__file__).parent / "torch_specs").glob("*.res"))
CONFORMANCE = pytest.mark.conformance
# torchvision's ten ResNet builders, each with a spec of the same name in specs/.
TORCHVISION_BUILDERS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
)  # fmt: skip
REPRESENTATIVE = {
    "specs/cifar/resnet20",
    "specs/resnet18",
    "specs/resnet50",
    "specs/resnet50d",
    "specs/preact_resnet18",
    "specs/keras/resnet50v2",
    "tests/support/torch_specs/features_a",
    "tests/support/torch_specs/features_b",
    "tests/support/torch_specs/features_c",
    "tests/support/torch_specs/features_d",
    "tests/support/torch_specs/features_e",
}


def spec_id(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


def sized(paths: list[Path]) -> list:
    """`paths` as test parameters: the representative ones plain, the rest `conformance`."""
    return [
        path
        if spec_id(path) in REPRESENTATIVE
        else pytest.param(path, marks=CONFORMANCE, id=spec_id(path))
        for path in paths
    ]


# Networks the Keras backend once refused, as text: a stage striding its last block after a
# dilated stage (its first block dilates as the stage before, unlike its others), and a
# shortcut average pool at stride 3 on sizes where Keras' "same" pooling would pad before
# (34) and after (35). Both backends must compute the same function
# (tests/unit/interop/test_weights.py).
KERAS_EDGE_SPECS = {
    "last_dilated": """network last_dilated {
  input 3x64x64
  classes 10
  block bottleneck
  strided_block last
  stage a: 2 x 16 / 2
  stage b: 2 x 32 { dilation 2  waive halve_double }
  stage c: 3 x 64 / 2 { dilation 4 }
  stage d: 2 x 64 { dilation 2 }
}
""",
    "pool_stride3": """network pool_stride3 {
  input 3x34x35
  classes 3
  block basic
  shortcut D
  stem cifar
  stage a: 1 x 16
  stage b: 2 x 32 / 3 { waive halve_double }
  stage c: 1 x 64 / 2
}
""",
}
