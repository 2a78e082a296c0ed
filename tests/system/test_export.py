"""`resdsl export --format onnx`: onnxruntime computes what the torch model computes, for any
batch size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import resdsl  # noqa: E402
from resdsl.cli.export import build_torch_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# A small ResNet-D: deep stem, bottlenecks, average-pool shortcuts on odd sizes (72 -> 9 -> 5),
# where the pool's ceil mode and the excluded padding must survive the export.
SMALL_BOTTLENECK = """\
network small_d {
  input    3x72x72
  classes  7
  stem     deep(width: 8, channels: 16)
  block    bottleneck(expansion: 4)
  shortcut D

  stage layer1: 1 x 8
  stage layer2: 2 x 16 / 2
  stage layer3: 1 x 32 / 2
}
"""


def _randomise_norms(model) -> None:
    """Running statistics away from 0 and 1, so the export of every norm is exercised."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


@pytest.mark.parametrize("spec", ["cifar/resnet20.res", "small_bottleneck"])
def test_onnx_matches_torch_for_batch_1_and_3(spec, tmp_path, monkeypatch):
    if spec == "small_bottleneck":
        path = tmp_path / "small_d.res"
        path.write_text(SMALL_BOTTLENECK)
    else:
        path = ROOT / "specs" / spec
    network = resdsl.load(path)
    torch.manual_seed(0)
    model = build_torch_model(network)
    _randomise_norms(model)
    output = tmp_path / "net.onnx"
    # The command exports a freshly initialised model; to compare outputs, export this one
    # through the same code path the command uses.
    from resdsl.cli import export as export_module

    monkeypatch.setattr(export_module, "build_torch_model", lambda net, classes=None: model)
    from click.testing import CliRunner

    from resdsl.cli.main import main

    result = CliRunner().invoke(main, ["export", str(path), "--format", "onnx", "-o", str(output)])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    c, h, w = network.input.channels, network.input.height, network.input.width
    for batch in (1, 3):
        x = torch.randn(batch, c, h, w, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(None, {"input": x.numpy()})
        assert got.shape == expected.shape == (batch, network.classes)
        scale = float(abs(expected).max())
        assert float(abs(got - expected).max()) <= 1e-4 * scale


def test_export_command_writes_a_loadable_model_and_refuses_bad_specs(tmp_path):
    output = tmp_path / "resnet20.onnx"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "resdsl",
            "export",
            str(ROOT / "specs/cifar/resnet20.res"),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    import onnx

    onnx.checker.check_model(onnx.load(str(output)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet20.onnx"]  # no temporaries

    bad = tmp_path / "bad.res"
    bad.write_text("network n {\n  input $\n}\n")
    run = subprocess.run(
        [sys.executable, "-m", "resdsl", "export", str(bad), "-o", str(tmp_path / "bad.onnx")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert "error[E011]" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "bad.onnx").exists()


def test_export_says_what_it_wrote(tmp_path):
    """One line on standard error on success, as `port-weights` and `import -o` print."""
    from train_helpers import in_process

    output = tmp_path / "net.onnx"
    status, stdout, stderr = in_process("export", ROOT / "specs/cifar/resnet20.res", "-o", output)
    assert status == 0 and output.is_file()
    assert (stdout, stderr) == ("", f"wrote {output}\n")


def test_export_with_trained_weights_matches_them(tmp_path):
    """`--weights` exports what was trained (a `resdsl train` checkpoint wraps the state dict
    under `model`; the classifier's size comes from the weights)."""
    import numpy as np
    import onnxruntime
    import torch

    import resdsl
    from resdsl.cli.export import build_torch_model

    spec = ROOT / "specs/cifar/resnet20.res"
    trained = build_torch_model(resdsl.load(spec), num_classes=7)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"format": 1, "model": trained.state_dict()}, checkpoint)
    output = tmp_path / "trained.onnx"
    command = [sys.executable, "-m", "resdsl", "export", str(spec), "-o", str(output)]
    run = subprocess.run([*command, "--weights", str(checkpoint)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = trained.eval()(x).numpy()
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
    other = tmp_path / "other.pt"
    torch.save(build_torch_model(resdsl.load(ROOT / "specs/resnet18.res")).state_dict(), other)
    run = subprocess.run([*command, "--weights", str(other)], capture_output=True, text=True)
    assert run.returncode == 2 and "does not fit" in run.stderr and "Traceback" not in run.stderr


def test_onnx_metadata_says_how_to_feed_the_graph(tmp_path):
    """metadata_props, read back with onnx: the checkpoint's class names and normalisation,
    the input size and the spec's hash; the preprocessing they describe, in NumPy alone, gives
    onnxruntime the probabilities `resdsl predict` computes for the same image."""
    import json

    import numpy as np
    import onnx
    from PIL import Image

    from resdsl.train import data as datasets

    spec = ROOT / "specs/cifar/resnet20.res"
    network = resdsl.load(spec)
    shape = (network.input.channels, network.input.height, network.input.width)
    digits = datasets.load("digits", shape)
    record = {"name": "digits", "mean": list(digits.mean), "std": list(digits.std),
              "classes": digits.class_names, "augment": "cifar"}  # fmt: skip
    model = build_torch_model(network, num_classes=10)
    _randomise_norms(model)
    weights = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "data": record}, weights)
    output = tmp_path / "net.onnx"
    command = [sys.executable, "-m", "resdsl", "export", str(spec), "-o", str(output)]
    run = subprocess.run([*command, "--weights", str(weights)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    props = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert json.loads(props["classes"]) == digits.class_names
    assert json.loads(props["mean"]) == pytest.approx(digits.mean)
    assert json.loads(props["std"]) == pytest.approx(digits.std)
    assert json.loads(props["input_size"]) == list(shape) and props["input_layout"] == "NCHW"
    assert props["spec_sha256"] == network.source.sha256
    assert props["spec"] == "resnet20.res" and props["num_classes"] == "10"

    image = tmp_path / "digit.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(image)
    _, height, width = json.loads(props["input_size"])
    assert props["eval_transform"] == f"resize to {height}x{width}"
    resized = Image.open(image).convert("RGB").resize((width, height), Image.BILINEAR)
    pixels = np.asarray(resized, np.float32).transpose(2, 0, 1) / 255.0
    mean = np.asarray(json.loads(props["mean"]), np.float32)[:, None, None]
    std = np.asarray(json.loads(props["std"]), np.float32)[:, None, None]
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": ((pixels - mean) / std)[None]})
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    predicted = subprocess.run(
        [sys.executable, "-m", "resdsl", "predict", str(spec), str(image), "--weights",
         str(weights), "--json", "--top", "3"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    top = json.loads(predicted.stdout)[0]["top"]
    names = json.loads(props["classes"])
    assert [e["index"] for e in top] == np.argsort(-probabilities[0])[:3].tolist()
    for entry in top:
        assert names[entry["index"]] == entry["class"]
        assert probabilities[0][entry["index"]] == pytest.approx(entry["probability"], abs=1e-4)


def test_onnx_metadata_of_fresh_weights_names_the_spec_only(tmp_path):
    import onnx

    spec = ROOT / "specs/cifar/resnet20.res"
    output = tmp_path / "fresh.onnx"
    run = subprocess.run([sys.executable, "-m", "resdsl", "export", str(spec), "-o", str(output)],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    props = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert props["spec_sha256"] == resdsl.load(spec).source.sha256
    assert "mean" not in props and "classes" not in props  # fresh weights know no data
