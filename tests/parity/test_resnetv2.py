"""The backends against timm's `resnetv2` module (`naming resnetv2`): pre-activation ResNets
with 1x1-convolution classifiers, their `d` and `t` deep stems (norms after the first two
convolutions only) and -inf-padded stem pools, BiT's weight-standardized convolutions with
group norms, and the EvoNorm-S0 and FRN networks.

Every network of timm's resnetv2 module (read from timm) has a spec of its name in
specs/resnetv2. `make test` checks every one's state dict (keys in timm's order, shapes),
parameter count and multiply-accumulates, the outputs of one network per feature with timm's
weights loaded strictly, and that `resdsl import timm:NAME` gives the library spec's network
back; `make conformance` compares the outputs of all of them. The Keras backend's comparison
with timm is tests/parity/test_timm_keras.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from torch_helpers import (
    assert_imports_to_spec,
    assert_same_layout_as_timm,
    assert_same_outputs_as_timm,
    by_cost,
)

timm = pytest.importorskip("timm")

SPECS = Path(__file__).resolve().parents[2] / "specs" / "resnetv2"
NAMES = timm.list_models(module="resnetv2")
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "resnetv2_18d": "pre-activation basic blocks, the deep stem without its last norm",
    "resnetv2_50": "pre-activation bottlenecks, the stem's max pool ignoring its padding",
    "resnetv2_50t": "the tiered stem, average-pooled shortcuts",
    "resnetv2_50d_gn": "group norms",
    "resnetv2_50x1_bit": "BiT: weight-standardized convolutions, the stem pool padded with zeros",
    "resnetv2_50d_evos": "EvoNorm-S0, a norm holding its nonlinearity",
    "resnetv2_50d_frn": "Filter Response Normalization with its thresholded linear unit",
}


def test_every_resnetv2_of_timm_has_a_spec_and_no_other_has():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(NAMES)
    assert set(REPRESENTATIVE) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_parameters_and_macs_match_timm(name, tmp_path):
    assert_same_layout_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, REPRESENTATIVE, SPECS))
def test_outputs_match_timm(name, tmp_path):
    assert_same_outputs_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, REPRESENTATIVE, SPECS))
def test_timm_models_import_to_the_library_specs(name):
    """From `timm:NAME`: the strides, the projections' pool, the stem pool's padding and the
    weight standardization come from the module tree, the rest from the tensors, and nothing
    is assumed."""
    assert_imports_to_spec(f"timm:{name}", SPECS / f"{name}.res")
