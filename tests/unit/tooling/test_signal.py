"""`resdsl summary --signal` (issue 27): each block's signal statistics at initialisation,
compared with a direct computation through forward hooks and autograd on the same model."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from torch_helpers import ALL_SPECS, SPECS, spec_id

import resdsl
from resdsl.cli.main import main
from resdsl.driver import analyze_file
from resdsl.interop.weights import build_generated
from resdsl.tooling.signal import branch_end, signal_propagation

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch = pytest.importorskip("torch")

# In `make test`: basic, plain, ResNet-D, pre-activation, squeeze-excited grouped bottlenecks with
# a deep stem; every spec of the library under `make conformance`.
QUICK = [
    "cifar/resnet20",
    "cifar/plain20",
    "resnet50d",
    "preact_resnet18",
    "timm/seresnext26d_32x4d",
]
LIBRARY = ALL_SPECS + sorted((SPECS / "timm").glob("*.res"))


def _small(path):
    """The spec at a small input, so that an ImageNet net runs in a moment (its own where the
    small one does not check: bilinear attention's maps must be whole blocks)."""
    network = resdsl.load(path)
    size = 32 if network.input.height <= 32 else 64
    small = analyze_file(str(path), input_shape=(network.input.channels, size, size))
    return small.network if small.ok else network


def _direct(network, batch: int = 4, seed: int = 0) -> list[dict]:
    """The statistics computed another way: E[x^2] - E[x]^2 over each channel, the gradient of
    the same loss with respect to every block's input by torch.autograd.grad."""
    torch.manual_seed(seed)
    model = build_generated(network, "torch").build_model().train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) or type(module).__name__ == "DropPath":
            module.eval()
    generator = torch.Generator().manual_seed(seed)
    shape = (network.input.channels, network.input.height, network.input.width)
    x = torch.randn(batch, *shape, generator=generator).requires_grad_(True)
    inputs, outputs, branches, handles = [], [], {}, []
    for _, stage, position, block in network.blocks():
        module = model.get_submodule(stage.torch_prefix(position))
        handles.append(module.register_forward_pre_hook(lambda m, a: inputs.append(a[0])))
        handles.append(module.register_forward_hook(lambda m, a, o: outputs.append(o.clone())))
        end = branch_end(block)
        if end is not None:
            index = len(handles)
            handles.append(
                module.get_submodule(end).register_forward_hook(
                    lambda m, a, o, i=index: branches.__setitem__(i, o.clone())
                )
            )
    logits = model(x)
    loss = torch.nn.functional.mse_loss(logits, torch.randn(logits.shape, generator=generator))
    grads = torch.autograd.grad(loss, inputs)
    for handle in handles:
        handle.remove()

    def stats(t):
        flat = t.detach().double().transpose(0, 1).reshape(t.shape[1], -1)
        mean = flat.sum(1) / flat.shape[1]
        return float((mean**2).mean()), float(((flat**2).mean(1) - mean**2).mean())

    branch_values = list(branches.values())
    rows, taken = [], 0
    for (_, stage, position, block), out, grad in zip(
        network.blocks(), outputs, grads, strict=True
    ):
        squared, variance = stats(out)
        branch = out
        if branch_end(block) is not None:
            branch, taken = branch_values[taken], taken + 1
        rows.append(
            {
                "block": stage.torch_prefix(position),
                "squared_mean": squared,
                "variance": variance,
                "branch_variance": stats(branch)[1],
                "grad_norm": float(grad.double().norm()),
            }
        )
    return rows


@pytest.mark.parametrize(
    "path",
    [p if spec_id(p) in QUICK else pytest.param(p, marks=pytest.mark.conformance) for p in LIBRARY],
    ids=spec_id,
)
def test_signal_matches_a_direct_computation(path):
    network = _small(path)
    got = [r.as_dict() for r in signal_propagation(network, batch=4)]
    expected = _direct(network, batch=4)
    assert [g["block"] for g in got] == [e["block"] for e in expected]
    assert len(got) == network.total_blocks
    for g, e in zip(got, expected, strict=True):
        for key in ("squared_mean", "variance", "branch_variance", "grad_norm"):
            assert g[key] == pytest.approx(e[key], rel=1e-6, abs=1e-9), (g["block"], key)


def test_shortcuts_keep_the_gradient_in_bounds_where_a_plain_net_does_not():
    """The argument for shortcuts, measured: across 27 batch-normalised plain blocks the input
    gradient's norm changes by four orders of magnitude (it explodes toward the input); with
    shortcuts, by less than two."""

    def decay(name: str) -> float:
        rows = signal_propagation(resdsl.load(SPECS / f"cifar/{name}.res"), batch=8)
        return rows[0].grad_norm / rows[-1].grad_norm

    assert decay("plain56") > 1000
    assert decay("resnet56") < 100


def test_the_command_prints_a_table_json_and_a_picture(tmp_path):
    spec = str(SPECS / "cifar/resnet20.res")
    runner = CliRunner()
    done = runner.invoke(main, ["summary", spec, "--signal", "--batch", "4"])
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert "signal propagation" in lines[0] and len(lines) == 2 + 9
    assert lines[1].split()[:2] == ["block", "output"]
    png = tmp_path / "signal.png"
    done = runner.invoke(main, ["summary", spec, "--signal", "--json", "--png", str(png)])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["batch"] == 8 and len(data["blocks"]) == 9
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert runner.invoke(main, ["summary", spec, "--png", str(png)]).exit_code == 2
    assert runner.invoke(main, ["summary", spec, "--signal", "--batch", "1"]).exit_code == 2
