"""The PyTorch backend: fidelity to torchvision, shapes and parameters against the IR, every
feature of the IR, torch.compile / export / channels_last, the generated text's structure.
Goldens, ruff, determinism and imports: tests/unit/codegen/test_codegen.py, for every backend."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from resdsl.backends.torch import TorchBackend
from torch_helpers import ALL_SPECS, ROOT, SPECS, compiled, generated, import_code, spec_id

import resdsl
from resdsl.interop.weights import state_dict_layout

TORCH_SPECS = Path(__file__).parents[1] / "support" / "torch_specs"
FEATURE_SPECS = sorted(TORCH_SPECS.glob("*.res"))
EVERY_SPEC = ALL_SPECS + FEATURE_SPECS


def _id(path: Path) -> str:
    return spec_id(path) if path.is_relative_to(SPECS) else path.stem


# --------------------------------------------------------------------------- fidelity

TORCHVISION = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
]


@pytest.mark.parametrize("name", TORCHVISION)
def test_matches_torchvision(name):
    import torchvision

    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)().eval()
    # Random norm statistics, so the comparison covers the running buffers too.
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    module = generated(SPECS / f"{name}.res")
    if name in ("resnet18", "resnet34"):
        model = module.build_model()
        model.load_state_dict(reference.state_dict(), strict=True)
    else:  # skip initialising weights that are replaced at once
        with torch.device("meta"):
            model = module.build_model()
        model.load_state_dict(reference.state_dict(), strict=True, assign=True)
    model.eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    # Any size runs through the adaptive pool; 96x96 keeps every stage's output above 1x1.
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    scale = expected.abs().max()
    assert (actual - expected).abs().max() <= 1e-5 * scale


# --------------------------------------------------------------------------- shapes, params


@pytest.mark.parametrize("path", EVERY_SPEC, ids=_id)
def test_stage_shapes_and_parameters(path):
    network = resdsl.load(path)
    # Large networks run on the meta device: shapes without arithmetic (the fidelity tests
    # run the big ones for real).
    device = "meta" if network.macs > 3e8 or network.total_blocks > 100 else "cpu"
    with torch.device(device):
        model = generated(path).build_model().eval()
    assert sum(p.numel() for p in model.parameters()) == network.params
    seen = {}
    for stage in network.stages:
        # the stage's module: `layer1`, or byobnet's `stages.0`
        module = model.get_submodule(stage.torch_prefix(0).rpartition(".")[0])
        module.register_forward_hook(
            lambda m, i, o, name=stage.name: seen.__setitem__(name, tuple(o.shape[1:]))
        )
    x = torch.randn(1, network.input.channels, network.input.height, network.input.width)
    with torch.no_grad():
        y = model(x.to(device))
    assert tuple(y.shape) == (1, *network.output_shape)
    for stage in network.stages:
        s = stage.out_shape
        assert seen[stage.name] == (s.channels, s.height, s.width), stage.name


# The norms that hold their nonlinearity, each a module of the generated code's.
FUSED = {"evonorm_s0": "EvoNormS0", "frn": "FilterResponseNorm"}


@pytest.mark.parametrize("path", EVERY_SPEC, ids=_id)
def test_state_dict_layout_matches_model(path):
    network = resdsl.load(path)
    with torch.device("meta"):
        model = generated(path).build_model()
    weights = {
        name[: -len(".weight")]: tuple(t.shape)
        for name, t in model.state_dict().items()
        if name.endswith(".weight")
    }
    layout = state_dict_layout(network)
    assert [(p, s) for p, _, s in layout] == list(weights.items())
    kinds = {name: type(m) for name, m in model.named_modules()}
    expected = {
        "conv": torch.nn.Conv2d,
        "channel_conv": torch.nn.Conv1d,  # ECA's
        "line_conv": torch.nn.Conv2d,  # bilinear attention's (block_size, 1) and (1, block_size)
        "norm": torch.nn.BatchNorm2d,
        "linear": torch.nn.Linear,
    }
    # A norm of the network's kind; global context's layer norm is the module's LayerNorm2d
    norms = {"batch": torch.nn.BatchNorm2d, "group": torch.nn.GroupNorm}
    for (prefix, kind, _), (_, _, layer) in zip(layout, network.weighted_layers(), strict=True):
        if kind == "norm" and layer.kind == "layer":
            assert issubclass(kinds[prefix], torch.nn.LayerNorm), prefix
        elif kind == "norm" and layer.kind in FUSED:  # the module's own: EvoNormS0, ...
            assert kinds[prefix].__name__ == FUSED[layer.kind], prefix
        elif kind == "conv" and layer.conv.standardized:  # BiT's StdConv2d
            assert kinds[prefix].__name__ == "StdConv2d", prefix
            assert issubclass(kinds[prefix], torch.nn.Conv2d), prefix
        elif kind == "linear" and layer.conv:  # timm's ResNetV2: a 1x1-convolution classifier
            assert kinds[prefix] is torch.nn.Conv2d, prefix
        else:
            assert kinds[prefix] is (norms[layer.kind] if kind == "norm" else expected[kind]), (
                prefix
            )


def test_pool_project_and_deep_stem_follow_timm_names():
    layout = {p: k for p, k, _ in state_dict_layout(resdsl.load(SPECS / "resnet50d.res"))}
    for name in ("conv1.0", "conv1.3", "conv1.6", "layer2.0.downsample.1"):
        assert layout[name] == "conv"
    for name in ("conv1.1", "conv1.4", "bn1", "layer2.0.downsample.2"):
        assert layout[name] == "norm"
    model = generated(SPECS / "resnet50d.res").build_model()
    assert isinstance(model.layer2[0].downsample[0], torch.nn.AvgPool2d)


def test_preact_names_and_head_norm():
    layout = [p for p, _, _ in state_dict_layout(resdsl.load(SPECS / "preact_resnet18.res"))]
    assert layout[2:5] == ["layer1.0.bn1", "layer1.0.conv1", "layer1.0.bn2"]
    assert layout[-2:] == ["norm", "fc"]


# --------------------------------------------------------------------------- behaviour


def test_cifar_resnet20_trains():
    torch.manual_seed(0)
    model = generated(SPECS / "cifar" / "resnet20.res").build_model().train()
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8


def test_torch_compile_has_no_graph_breaks():
    model = generated(SPECS / "cifar" / "resnet20.res").build_model().eval()
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 32, 32))
    assert explanation.graph_break_count == 0


def test_torch_export():
    model = generated(SPECS / "cifar" / "resnet20.res").build_model().eval()
    x = torch.randn(2, 3, 32, 32)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(program.module()(x), model(x), atol=1e-5)


@pytest.mark.parametrize("spec", ["resnet18.res", "cifar/resnet20.res"])
def test_channels_last(spec):
    network = resdsl.load(SPECS / spec)
    model = generated(SPECS / spec).build_model().eval()
    size = min(network.input.height, 64)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        actual = model(x.to(memory_format=torch.channels_last))
    assert torch.allclose(actual, expected, atol=1e-4 * expected.abs().max().item())


def test_drop_path_only_in_training_and_per_sample():
    path = TORCH_SPECS / "features_a.res"
    network = resdsl.load(path)
    module = generated(path)
    model = module.build_model()
    rates = [
        block.drop_path.rate if isinstance(block.drop_path, module.DropPath) else 0.0
        for stage in network.stages
        for block in getattr(model, stage.name)
    ]
    assert rates == [network.drop_path_rate(i) for i, *_ in network.blocks()]
    x = torch.randn(64, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    drop = module.DropPath(0.5).train()
    torch.manual_seed(0)
    out = drop(torch.ones(256, 2, 3, 3))
    kept = out.flatten(1)
    # Each sample is dropped or kept whole, and kept ones are scaled by 1 / (1 - rate).
    assert set(kept.unique().tolist()) <= {0.0, 2.0}
    assert (kept == kept[:, :1]).all()
    assert 0 < (kept[:, 0] == 0).sum() < 256


def test_zero_last_norm_and_init():
    b = generated(TORCH_SPECS / "features_b.res").build_model()
    for block in b.s1:
        assert block.bn3.weight.abs().sum() == 0
    a = generated(TORCH_SPECS / "features_a.res").build_model()
    assert a.s1[0].conv2.weight.abs().sum() == 0  # pre-activation: the last convolution
    assert a.s3[0].bn2.weight.abs().sum() == 0  # post-activation: the last norm
    assert a.fc.bias.abs().sum() == 0  # glorot: zero biases, Linear included
    assert a.conv1.bias.abs().sum() == 0
    r50 = generated(SPECS / "resnet50.res").build_model()
    assert r50.layer1[0].bn3.weight.abs().min() > 0
    # kaiming fan-out: std of a conv weight near sqrt(2 / fan_out).
    weight = r50.layer3[0].conv2.weight
    fan_out = weight.shape[0] * weight.shape[2] * weight.shape[3]
    assert abs(weight.std().item() / (2 / fan_out) ** 0.5 - 1) < 0.05


def test_norm_eps_momentum_activation_biases():
    module = generated(TORCH_SPECS / "features_a.res")
    model = module.build_model()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {(m.eps, m.momentum) for m in norms} == {(1e-3, 0.01)}
    assert any(isinstance(m, torch.nn.SiLU) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert isinstance(model.dropout, torch.nn.Dropout) and model.dropout.p == 0.5
    b = generated(TORCH_SPECS / "features_b.res").build_model()
    assert any(isinstance(m, torch.nn.GELU) for m in b.modules())
    # A dilated stage's first block keeps the stage before's dilation (torchvision, timm).
    assert b.s3[1].conv2.dilation == (2, 2) and b.s3[1].conv2.padding == (2, 2)
    assert b.s3[0].conv2.dilation == (1, 1) and b.s4[0].conv2.dilation == (2, 2)
    assert b.s1[0].conv2.dilation == (1, 1) and b.s1[0].conv2.padding == (1, 1)
    assert b.s2[0].conv2.groups == 4 and b.s4[0].conv2.groups == 1
    # stride_on 1x1 (s2) and 3x3 (s4), and only on each stage's first block.
    assert (b.s2[0].conv1.stride, b.s2[0].conv2.stride) == ((2, 2), (1, 1))
    assert (b.s4[0].conv1.stride, b.s4[0].conv2.stride) == ((1, 1), (2, 2))
    assert b.s2[1].conv1.stride == (1, 1)


def test_num_classes_override():
    model = generated(SPECS / "cifar" / "resnet20.res").build_model(num_classes=3)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


# --------------------------------------------------------------------------- generated text


def test_docstring_names_network_source_version_and_command():
    network = resdsl.load(SPECS / "resnet50.res")
    doc = ast.get_docstring(ast.parse(compiled(str(SPECS / "resnet50.res"))))
    assert network.name in doc and network.source.sha256 in doc
    assert f"generated by resdsl {resdsl.__version__} from `resnet50.res`" in doc
    assert "Do not edit" in doc
    assert "`resdsl compile resnet50.res --backend torch`" in doc
    assert str(ROOT) not in compiled(str(SPECS / "resnet50.res"))


@pytest.mark.parametrize("path", EVERY_SPEC, ids=_id)
def test_backend_expresses_every_spec(path):
    assert TorchBackend().unsupported(resdsl.load(path)) == []


def _replace_run(network, stage_index: int, run_index: int, block):
    stage = network.stages[stage_index]
    runs = list(stage.runs)
    runs[run_index] = runs[run_index].model_copy(update={"block": block})
    stages = list(network.stages)
    stages[stage_index] = stage.model_copy(update={"runs": tuple(runs)})
    return network.model_copy(update={"stages": tuple(stages)})


def test_what_the_plan_cannot_rebuild_is_reported_not_generated():
    network = resdsl.load(SPECS / "resnet50.res")
    body = network.stages[2].runs[1].block  # layer3's blocks after the first
    # A convolution whose padding no class argument gives: no class rebuilds the block.
    conv2 = body.branch[3]
    odd = conv2.model_copy(update={"conv": conv2.conv.model_copy(update={"padding": 0})})
    broken = body.model_copy(update={"branch": (*body.branch[:3], odd, *body.branch[4:])})
    problems = TorchBackend().unsupported(_replace_run(network, 2, 1, broken))
    assert problems and any("rebuild" in p for p in problems)
    with pytest.raises(ValueError, match="cannot express"):
        TorchBackend().emit(_replace_run(network, 2, 1, broken))
    # A shortcut only some blocks of one (width, stride) case have: no function gives it.
    first = network.stages[1].runs[0].block
    projected = body.model_copy(update={"shortcut": first.shortcut})
    assert TorchBackend().unsupported(_replace_run(network, 2, 1, projected))


def test_size_does_not_grow_with_depth():
    lines = {n: compiled(str(SPECS / f"{n}.res")).count("\n") for n in ("resnet50", "resnet152")}
    assert lines["resnet50"] == lines["resnet152"]
    cifar = {
        n: compiled(str(SPECS / "cifar" / f"{n}.res")).count("\n")
        for n in ("resnet20", "resnet1202")
    }
    assert cifar["resnet20"] == cifar["resnet1202"]


def _calls(code: str, function: str) -> list[dict[str, str]]:
    """The keyword arguments of every call of `function` in `code`, as source text."""
    calls = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == function:
            calls.append({k.arg: ast.unparse(k.value) for k in node.keywords})
    return calls


@pytest.mark.parametrize("spec", ["resnet152.res", "cifar/resnet1202.res", "resnet50d.res"])
def test_one_make_stage_call_per_stage_with_the_real_block_count(spec):
    network = resdsl.load(SPECS / spec)
    calls = _calls(compiled(str(SPECS / spec)), "make_stage")
    assert [int(c["blocks"]) for c in calls] == [s.blocks for s in network.stages]
    for call, stage in zip(calls, network.stages, strict=True):
        assert int(call.get("stride", "1")) == stage.stride
        assert int(call["in_channels"]) == stage.in_shape.channels
        assert int(call["out_channels"]) == stage.out_shape.channels


def test_no_string_dispatch_and_no_run_table():
    for path in EVERY_SPEC:
        code = compiled(str(path))
        assert "NamedTuple" not in code and "Run(" not in code
        assert not re.search(r"kind ==|== \"", code), path
        assert "startswith" not in code


def test_only_used_classes_are_emitted():
    code = compiled(str(SPECS / "resnet18.res"))
    assert "class BasicBlock" in code
    for absent in (
        "Bottleneck",
        "PreAct",
        "DropPath",
        "PadChannels",
        "FromInput",
        "F.pad",
        "Callable",
        "stride_last",
        "**options",
        "groups",
        "dilation",
    ):
        assert absent not in code, absent
    # One shortcut function, called by make_stage directly.
    assert "shortcut=" not in code and "def project(" in code


def _parameters(module, name: str) -> list[str]:
    return list(inspect.signature(getattr(module, name)).parameters)


def test_block_classes_take_only_what_they_use():
    widths = ["in_channels", "mid_channels", "out_channels", "stride", "downsample"]
    r18 = generated(SPECS / "resnet18.res")
    assert _parameters(r18.BasicBlock, "__init__") == ["self", *widths]
    x50 = generated(SPECS / "resnext50_32x4d.res")
    assert _parameters(x50.Bottleneck, "__init__") == ["self", *widths, "groups"]
    calls = _calls(compiled(str(SPECS / "resnext50_32x4d.res")), "make_stage")
    assert {c.get("groups") for c in calls} == {"32"}
    b = generated(TORCH_SPECS / "features_b.res")
    assert _parameters(b.BottleneckStride1x1, "__init__") == [
        "self", *widths, "groups", "dilation"
    ]  # fmt: skip
    # s4's block dilates as s3 (a dilated stage's first block keeps the stage before's).
    assert _parameters(b.BottleneckStride3x3, "__init__") == ["self", *widths, "dilation"]
    a = generated(TORCH_SPECS / "features_a.res")
    for name in ("BasicBlock", "PreActBasicBlock"):
        assert _parameters(getattr(a, name), "__init__") == ["self", *widths, "drop_path"]


def test_shortcut_functions_follow_the_ir():
    # Projection where the shape changes, as torchvision: a single function, no dispatch.
    r50 = generated(SPECS / "resnet50.res")
    assert r50.project(64, 64, 1) is None
    assert [type(m) for m in r50.project(64, 256, 1)] == [torch.nn.Conv2d, torch.nn.BatchNorm2d]
    # ResNet-D: pool, then project, where the stride is not 1.
    d = generated(SPECS / "resnet50d.res")
    assert [type(m) for m in d.pool_project(256, 512, 2)] == [
        torch.nn.AvgPool2d,
        torch.nn.Conv2d,
        torch.nn.BatchNorm2d,
    ]
    # At stride 1, timm keeps the pool's place with an identity: the convolution is `1`.
    assert [type(m) for m in d.pool_project(64, 256, 1)] == [
        torch.nn.Identity,
        torch.nn.Conv2d,
        torch.nn.BatchNorm2d,
    ]
    # Several functions: make_stage takes the stage's as an argument.
    code = compiled(str(TORCH_SPECS / "features_c.res"))
    assert [c["shortcut"] for c in _calls(code, "make_stage")] == [
        "project_or_subsample",
        "pool_project",
        "pad",
    ]
    c = generated(TORCH_SPECS / "features_c.res")
    assert isinstance(c.project_or_subsample(32, 32, 2), c.FromInput)
    assert not isinstance(c.project_or_subsample(16, 32, 1), c.FromInput)
    model = c.build_model()
    assert model.s1[1].reads_input and not model.s1[0].reads_input
    assert not model.s2[1].reads_input  # a pool-project: the pre-activated input


@pytest.mark.parametrize(
    "path", [SPECS / "keras" / "resnet50v2.res", TORCH_SPECS / "features_c.res"], ids=_id
)
def test_preactivated_and_input_shortcuts(path):
    """Each pre-activation block's shortcut reads what the IR's `source` says: the block's
    input, or its pre-activated input (checked with a hook on the shortcut module)."""
    network = resdsl.load(path)
    model = generated(path).build_model().eval()
    for _, stage, position, block in network.blocks():
        if not block.shortcut.layers or not block.pre:
            continue
        # the stage's module: `layer1`, or byobnet's `stages.0`
        module = model.get_submodule(stage.torch_prefix(0).rpartition(".")[0])[position]
        seen = {}
        module.downsample.register_forward_pre_hook(lambda m, a, seen=seen: seen.update(x=a[0]))
        x = torch.randn(1, block.in_channels, 8, 8)
        with torch.no_grad():
            module(x)
            norm, act = (getattr(module, layer.torch) for layer in block.pre)
            preactivated = act(norm(x))
        expected = x if block.shortcut.source == "input" else preactivated
        assert torch.equal(seen["x"], expected), (stage.name, position)


# --------------------------------------------------------------------------- API and CLI


def test_api_compile_text_and_backend_class():
    text = (SPECS / "cifar" / "resnet20.res").read_text()
    code = resdsl.compile(text, backend="torch")
    assert import_code(code).build_model()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    backend = TorchBackend()
    assert (backend.name, backend.suffix) == ("torch", ".py")
    assert backend.unsupported(resdsl.load(text)) == []


def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "resdsl", *args], cwd=cwd, capture_output=True, text=True
    )


def test_cli_compile_stdout_and_file(tmp_path):
    out = _cli("compile", "specs/cifar/resnet20.res", "--backend", "torch")
    # the module the API gives, but for the command it names: the one that wrote it
    default = "resdsl compile resnet20.res --backend torch"
    given = "resdsl compile specs/cifar/resnet20.res --backend torch"
    expected = compiled("specs/cifar/resnet20.res")
    assert out.returncode == 0 and out.stdout == expected.replace(default, given)
    target = tmp_path / "resnet20.py"
    written = _cli("compile", "specs/cifar/resnet20.res", "--backend", "torch", "-o", str(target))
    assert written.returncode == 0
    from resdsl.codegen.backends import get_backend, regenerate_command

    network = resdsl.load("specs/cifar/resnet20.res")
    command = regenerate_command(network, "torch", "specs/cifar/resnet20.res", str(target))
    assert target.read_text() == get_backend("torch").emit(network, command=command)


def test_cli_invalid_spec_writes_nothing(tmp_path):
    bad = tmp_path / "bad.res"
    bad.write_text(
        "network bad {\n  input 3x32x32\n  classes 10\n  block basicc\n  stage s1: 1 x 16\n}\n"
    )
    target = tmp_path / "bad.py"
    run = _cli("compile", str(bad), "--backend", "torch", "-o", str(target))
    assert run.returncode == 1
    assert "basicc" in run.stderr and "Traceback" not in run.stderr
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [bad]


# --------------------------------------------------------------------------- property


def test_any_valid_spec_compiles_and_runs():
    from hypothesis import HealthCheck, given, settings
    from spec_strategy import spec_texts

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(spec_texts())
    def check(text):
        result = resdsl.analyze(text)
        # The strategy draws valid specs only: one that is not is a bug of the strategy or of
        # the compiler, never a case to skip.
        assert result.ok, text + "\n" + "\n".join(d.message for d in result.diagnostics)
        network = result.network
        assert TorchBackend().unsupported(network) == []
        model = import_code(TorchBackend().emit(network)).build_model().eval()
        assert sum(p.numel() for p in model.parameters()) == network.params
        weights = [
            (n[: -len(".weight")], tuple(t.shape))
            for n, t in model.state_dict().items()
            if n.endswith(".weight")
        ]
        assert [(p, s) for p, _, s in state_dict_layout(network)] == weights
        i = network.input
        with torch.no_grad():
            y = model(torch.randn(1, i.channels, i.height, i.width))
        assert tuple(y.shape) == (1, *network.output_shape)

    check()
