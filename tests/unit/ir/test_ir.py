"""The elaborated IR against the real models: parameter counts and multiply-accumulates of
torchvision's and keras.applications' networks, computed here, and the `ir` command's JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import resdsl
from resdsl.ir import Network

ROOT = Path(__file__).parents[3]
SPECS = ROOT / "specs"

TORCHVISION = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "wide_resnet50_2",
]  # fmt: skip


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_params_and_macs(name):
    torch = pytest.importorskip("torch")
    models = pytest.importorskip("torchvision.models")
    from torch.utils.flop_counter import FlopCounterMode

    network = resdsl.load(SPECS / f"{name}.res")
    model = getattr(models, name)(weights=None).eval()
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(
        b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")
    )
    assert network.params == params
    assert network.norm_stats == buffers
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, *network.input.model_dump().values()))
    assert network.macs * 2 == counter.get_total_flops()
    assert network.output_shape == (1000,)


# The paper's published figures (He et al. 2016, table 6): the one place typed numbers are right.
CIFAR_PAPER = {
    "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586,
    "resnet56": 853_018, "resnet110": 1_727_962,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CIFAR_PAPER))
def test_cifar_params_match_the_paper(name):
    network = resdsl.load(SPECS / "cifar" / f"{name}.res")
    assert network.params == CIFAR_PAPER[name]


def test_resnet1202_elaborates_in_runs():
    network = resdsl.load(SPECS / "cifar" / "resnet1202.res")
    assert network.total_blocks == 600
    assert all(len(stage.runs) <= 3 for stage in network.stages)
    assert sum(1 for _ in network.blocks()) == 600
    indices = [i for i, *_ in network.blocks()]
    assert indices == list(range(600))


# The keras.applications nets' parameter counts are checked against the IR in
# test_keras_backend.py::test_matches_keras_applications, which builds those models anyway.


def test_v2_waiver_free_and_preact_head():
    network = resdsl.load(SPECS / "keras" / "resnet50v2.res")
    assert network.head.norm
    assert all(stage.waivers == () for stage in network.stages)


# --------------------------------------------------------------------------- the ir command


def _cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resdsl", *args], capture_output=True, text=True, cwd=cwd
    )


def test_ir_command_round_trips(monkeypatch):
    monkeypatch.chdir(ROOT)
    run = _cli("ir", "specs/resnet50.res")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    network = Network.model_validate_json(run.stdout)
    assert network == resdsl.load("specs/resnet50.res")
    assert data["params"] == network.params
    assert Network.model_validate_json(network.model_dump_json()) == network


def test_ir_schema():
    run = _cli("ir", "--schema")
    assert run.returncode == 0, run.stderr
    schema = json.loads(run.stdout)
    assert schema == json.loads(json.dumps(Network.model_json_schema()))
    assert {"stages", "params", "macs", "head"} <= set(schema["properties"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(_cli("ir", "specs/resnet18.res").stdout), schema)


def test_ir_spec_level_and_errors(tmp_path):
    run = _cli("ir", "--spec", "specs/resnet18.res")
    assert run.returncode == 0 and json.loads(run.stdout)["name"] == "resnet18"
    bad = tmp_path / "bad.res"
    bad.write_text("network n {\n}\n")
    run = _cli("ir", str(bad))
    assert run.returncode == 1 and run.stdout == "" and "E106" in run.stderr
    assert _cli("ir").returncode == 2
    assert _cli("ir", str(tmp_path / "missing.res")).returncode == 2


def test_ir_is_deterministic_and_path_free():
    first = _cli("ir", "specs/resnet18.res").stdout
    assert first == _cli("ir", "specs/resnet18.res").stdout
    assert str(ROOT) not in first


# --------------------------------------------------------------------------- construction

from spec_sets import ALL_SPECS, FEATURE_SPECS, TIMM_SPECS, spec_id  # noqa: E402


@pytest.mark.parametrize("path", ALL_SPECS + FEATURE_SPECS + TIMM_SPECS, ids=spec_id)
def test_every_level_is_what_validation_gives(path):
    """The phases build nodes without pydantic's validation (resdsl.ir explains why): at every
    level, every spec's IR must be exactly what validating its JSON gives, and serialise
    without a warning (an int where a float belongs, a list where a tuple belongs)."""
    import warnings

    from resdsl.diagnostics.core import Diagnostics
    from resdsl.ir import Node
    from resdsl.language.parser import parse

    def nodes(value):
        if isinstance(value, Node):
            yield value
            for field in type(value).model_fields:
                yield from nodes(getattr(value, field))
        elif isinstance(value, (tuple, list)):
            yield from (n for item in value for n in nodes(item))
        elif isinstance(value, dict):
            yield from (n for item in value.values() for n in nodes(item))

    result = resdsl.analyze(path)
    tree = parse(path.read_text(), str(path), Diagnostics())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Each node on its own, its children taken as they are.
        for node in nodes((tree, result.spec, result.network)):
            assert type(node).model_validate(dict(node)) == node, type(node).__name__
        # The two levels that `resdsl ir` writes, through JSON.
        for node in (result.spec, result.network):
            data = node.model_dump_json()
            again = type(node).model_validate_json(data)
            assert again == node
            assert again.model_dump_json() == data


def test_construction_checks_field_names():
    from resdsl.ir import Shape

    with pytest.raises(TypeError, match="missing width"):
        Shape(channels=1, height=2)
    with pytest.raises(TypeError, match="unknown depth"):
        Shape(channels=1, height=2, width=3, depth=4)


def test_nodes_behave_as_frozen_models():
    """Nodes are plain classes (resdsl.ir says why) with what the phases, backends and tools
    used of pydantic's models: keyword construction with defaults, value equality and hashing,
    immutability, `dict(node)`, repr and str, and `model_copy(update=...)`."""
    from resdsl.ir import Conv, Shape

    conv = Conv(in_channels=3, out_channels=64, kernel=7, stride=2, padding=3)
    assert (conv.dilation, conv.groups, conv.bias) == (1, 1, False)  # defaults
    assert list(dict(conv)) == [
        "in_channels", "out_channels", "kernel", "stride", "padding", "dilation", "groups", "bias",
        "standardized",
    ]  # fmt: skip
    same = Conv(in_channels=3, out_channels=64, kernel=7, stride=2, padding=3)
    assert conv == same and hash(conv) == hash(same) and len({conv, same}) == 1
    assert conv != Shape(channels=3, height=64, width=7)
    with pytest.raises(AttributeError):
        conv.stride = 1
    wider = conv.model_copy(update={"out_channels": 128})
    assert (wider.out_channels, wider.kernel, conv.out_channels) == (128, 7, 64)
    with pytest.raises(TypeError, match="unknown depth"):
        conv.model_copy(update={"depth": 1})
    shape = Shape(channels=1, height=2, width=3)
    assert repr(shape) == "Shape(channels=1, height=2, width=3)"
    assert str(Conv(in_channels=1, out_channels=2, kernel=1)).startswith("in_channels=1 ")


def test_every_node_class_has_its_pydantic_model():
    """resdsl.ir.models derives, for each node class, a pydantic model of the same name,
    docstring and fields in the same order; validating gives nodes back."""
    import pydantic

    from resdsl import ir
    from resdsl.ir.models import model

    nodes = [getattr(ir, name) for name in ir.__all__]
    nodes = [
        v for v in nodes if isinstance(v, type) and issubclass(v, ir.Node) and v is not ir.Node
    ]
    assert len(nodes) >= 48  # every level's nodes
    for node in nodes:
        derived = model(node)
        assert issubclass(derived, pydantic.BaseModel)
        assert (derived.__name__, derived.__doc__) == (node.__name__, node.__doc__)
        assert list(node.model_fields) == list(node._fields)
        assert derived.model_config["frozen"] and derived.model_config["extra"] == "forbid"
    shape = ir.Shape.model_validate({"channels": 1, "height": 2, "width": 3})
    assert type(shape) is ir.Shape and shape == ir.Shape(channels=1, height=2, width=3)
    with pytest.raises(pydantic.ValidationError):
        ir.Shape.model_validate({"channels": 1, "height": 2, "width": 3, "depth": 4})
    with pytest.raises(pydantic.ValidationError):
        ir.Conv.model_validate({"in_channels": "many", "out_channels": 2, "kernel": 1})
