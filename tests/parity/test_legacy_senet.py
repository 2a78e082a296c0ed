"""The backends against timm's legacy SENets (`senet.py`, the layout of Cadene's
pretrainedmodels: `naming senet`): the stem in `layer0`, Caffe's rounding-up stem pool
(`pool: max_ceil`), bottlenecks striding on their first 1x1, squeeze-excitation as
`se_module` (after an activation of its own in the basic blocks), `last_linear`.

Every network of timm's `senet` module (read from timm) has a spec of its name in
specs/legacy_senet. `make test` checks every one's state dict (keys in timm's order, shapes),
parameter count and multiply-accumulates, and the outputs of one network per feature with timm's
weights loaded strictly; `make conformance` compares the outputs of all of them. The Keras
backend's comparison with timm is tests/parity/test_timm_keras.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from torch_helpers import assert_same_layout_as_timm, assert_same_outputs_as_timm, by_cost

timm = pytest.importorskip("timm")

SPECS = Path(__file__).resolve().parents[2] / "specs" / "legacy_senet"
NAMES = timm.list_models(module="senet")
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "legacy_seresnet18": "basic blocks with an activation before squeeze-excitation, the pool",
    "legacy_seresnet50": "bottlenecks striding on their first 1x1 (Caffe's)",
    "legacy_seresnext26_32x4d": "grouped bottlenecks striding on their 3x3",
}


def test_every_legacy_senet_of_timm_has_a_spec_and_no_other_has():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(NAMES)
    assert set(REPRESENTATIVE) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_parameters_and_macs_match_timm(name, tmp_path):
    assert_same_layout_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, REPRESENTATIVE))
def test_outputs_match_timm(name, tmp_path):
    assert_same_outputs_as_timm(SPECS / f"{name}.res", name, tmp_path)
