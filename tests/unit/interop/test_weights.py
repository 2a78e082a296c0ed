"""Weight porting: the PyTorch and Keras models of every spec give the same logits with ported
weights, a torchvision checkpoint runs in Keras, the port-weights command both ways."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# torchvision (through triton) segfaults when imported after TensorFlow in one process; the
# Keras tests load TensorFlow, so take torchvision first wherever these tests run.
with contextlib.suppress(ImportError):
    import torchvision  # noqa: F401
from spec_sets import (
    ALL_SPECS,
    FEATURE_SPECS,
    KERAS_EDGE_SPECS,
    REPRESENTATIVE,
    ROOT,
    SPECS,
    sized,
    spec_id,
)

import resdsl
from resdsl.interop import weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch = pytest.importorskip("torch")

PYTHON = sys.executable
# ResNet-1202 takes half a minute to build in Keras; its blocks are ResNet-20's.
EQUIVALENCE_SPECS = [p for p in ALL_SPECS + FEATURE_SPECS if p.stem != "resnet1202"]
# Stems whose max pool sees negative values after a norm: PyTorch's -inf padding matters.
STEM_TEXT = """network {name}_stem {{
  input 3x40x40
  classes 4
  stem imagenet(channels: 16)
  block basic
  shortcut B
  activation {name}
  stage s1: 1 x 16
  stage s2: 1 x 32 / 2
}}
"""


def _last_norms(network) -> set[str]:
    """Each block's last branch norm, by its PyTorch name in the model."""
    found = set()
    for _, stage, position, block in network.blocks():
        norms = [x for x in block.branch if x.op == "norm"]
        if norms:
            found.add(f"{stage.torch_prefix(position)}.{norms[-1].torch}")
    return found


def randomize_norms(model, network=None) -> None:
    """Norm statistics and affine parameters away from their identity defaults; with
    `network`, each branch's last norm at a small scale, as trained networks' are, so that
    the deepest networks stay well conditioned (at scales near 1, 50 SE-bottlenecks of
    legacy_seresnet152 leave float32 outputs tens of percent apart between two correct
    implementations)."""
    generator = torch.Generator().manual_seed(0)
    last = _last_norms(network) if network is not None else set()
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                scale = torch.rand(n, generator=generator)
                module.weight.copy_(0.1 + 0.2 * scale if name in last else scale + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) - 0.5)


def relative_error(expected, got) -> float:
    return float(np.abs(expected - got).max() / np.abs(expected).max())


@pytest.mark.parametrize(
    "path",
    sized(EQUIVALENCE_SPECS)
    + [STEM_TEXT.format(name=a) for a in ("silu", "gelu")]
    + sorted(KERAS_EDGE_SPECS.values()),
    ids=lambda p: spec_id(p) if isinstance(p, Path) else p.split()[1],
)
def test_torch_and_keras_agree(path):
    network = resdsl.load(path if isinstance(path, str) else str(path))
    torch.manual_seed(0)
    torch_model = weights.build_generated(network, "torch").build_model().eval()
    keras_model = weights.build_generated(network, "keras").build_model()
    # The IR names every layer with weights once; both generated models have exactly those
    # layers, with the IR's shapes.
    state = torch_model.state_dict()
    layout = weights.state_dict_layout(network)
    tensors = {k.rpartition(".")[0] for k in state if not k.endswith("num_batches_tracked")}
    assert tensors == {prefix for prefix, _, _ in layout}
    assert all(tuple(state[f"{prefix}.weight"].shape) == shape for prefix, _, shape in layout)
    pairs = weights.layer_pairs(network)
    weighted = {layer.name for layer in keras_model.layers if layer.weights}
    assert weighted == {name for _, name, _ in pairs}
    # Parameter counts: the IR's (ResNet-1202's are checked in test_keras_backend).
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert trainable == network.params
    assert keras_model.count_params() == network.params + network.norm_stats

    randomize_norms(torch_model, network)
    weights.torch_to_keras(torch_model, keras_model, network)
    x = torch.randn(
        1,
        network.input.channels,
        network.input.height,
        network.input.width,
        generator=torch.Generator().manual_seed(1),
    )
    with torch.no_grad():
        expected = torch_model(x).numpy()
    got = keras_model(weights.to_keras_images(x), training=False).numpy()
    error = relative_error(expected, got)
    assert error <= 1e-4

    # And back: a fresh PyTorch model gets the very same tensors.
    fresh = weights.build_generated(network, "torch").build_model().eval()
    weights.keras_to_torch(keras_model, fresh, network)
    original = torch_model.state_dict()
    assert all(
        torch.equal(t, original[k])
        for k, t in fresh.state_dict().items()
        if not k.endswith("num_batches_tracked")
    )


# A ResNet-50 through a second process: `make conformance`; tests/property/test_weights_files.py
# runs port-weights through the command line in `make test`.
@pytest.mark.conformance
def test_torchvision_checkpoint_through_the_command(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.resnet50().eval()
    randomize_norms(reference)
    checkpoint = tmp_path / "resnet50.pt"
    torch.save(reference.state_dict(), checkpoint)
    out = tmp_path / "resnet50.weights.h5"
    done = subprocess.run(
        [
            PYTHON,
            "-m",
            "resdsl.cli.main",
            "port-weights",
            "specs/resnet50.res",
            "--from",
            "torch",
            str(checkpoint),
            "--to",
            "keras",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # TensorFlow's start-up lines are held to TF_CPP_MIN_LOG_LEVEL here too (build_generated).
    assert "oneDNN" not in done.stderr and "absl::InitializeLog" not in done.stderr, done.stderr
    network = resdsl.load(str(SPECS / "resnet50.res"))
    keras_model = weights.build_generated(network, "keras").build_model()
    keras_model.load_weights(out)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(x).numpy()
    got = keras_model(weights.to_keras_images(x), training=False).numpy()
    assert relative_error(expected, got) <= 1e-4

    # Back to PyTorch (in this process, where the frameworks are loaded): the same state dict.
    back = tmp_path / "back.pt"
    done = run_cli(SPECS / "resnet50.res", "--from", "keras", out, "--to", "torch", back)
    assert done.returncode == 0, done.stderr[-3000:]
    original = reference.state_dict()
    ported = torch.load(back, weights_only=True)
    assert ported.keys() == original.keys()
    assert all(torch.equal(ported[k], original[k]) for k in original)


class _Done:
    """An in-process run of the command, shaped like a finished subprocess."""

    def __init__(self, result):
        # Only a deliberate exit may end the command: an uncaught exception is a traceback.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        self.returncode = result.exit_code
        self.stderr = result.stderr


def run_cli(*args):
    """`resdsl port-weights ARGS` in this process (the frameworks are imported once here; the
    torchvision test above runs the command as a real process)."""
    from click.testing import CliRunner

    from resdsl.cli.main import main

    return _Done(CliRunner().invoke(main, ["port-weights", *map(str, args)]))


def test_command_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = "specs/cifar/resnet20.res"
    out = tmp_path / "out.weights.h5"
    # A checkpoint of another network: named layers missing, nothing written. The spec is
    # fine, the file is not (status 2; 1 is for specs with errors).
    other = weights.build_generated(resdsl.load("specs/resnet18.res"), "torch").build_model()
    wrong = tmp_path / "resnet18.pt"
    torch.save(other.state_dict(), wrong)
    done = run_cli(spec, "--from", "torch", str(wrong), "--to", "keras", str(out))
    assert done.returncode == 2 and "does not fit" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))
    # weights_only=True refuses pickled objects other than tensors.
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"conv1.weight": torch.zeros(1), "extra": object.__new__(Unsafe)}, unsafe)
    done = run_cli(spec, "--from", "torch", str(unsafe), "--to", "keras", str(out))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not out.exists()
    # Missing input, bad suffix, same framework.
    done = run_cli(spec, "--from", "torch", str(tmp_path / "nope.pt"), "--to", "keras", str(out))
    assert done.returncode == 2 and "no such file" in done.stderr
    done = run_cli(spec, "--from", "torch", str(wrong), "--to", "keras", str(tmp_path / "x.h5"))
    assert done.returncode == 2
    done = run_cli(spec, "--from", "torch", str(wrong), "--to", "torch", str(tmp_path / "x.pt"))
    assert done.returncode == 2


class Unsafe:
    pass


def test_a_classifier_of_another_size_ports_both_ways(tmp_path):
    """A checkpoint trained on 3 classes, for a spec that says 10: both directions size the
    classifier by the weights (as eval and export do), and the round trip is exact."""
    spec = SPECS / "cifar" / "resnet20.res"
    model = weights.build_generated(resdsl.load(str(spec)), "torch").build_model(3)
    randomize_norms(model)
    original = model.state_dict()
    checkpoint, keras_file, back = (
        tmp_path / "best.pt",
        tmp_path / "out.weights.h5",
        tmp_path / "back.pt",
    )
    torch.save(original, checkpoint)
    done = run_cli(spec, "--from", "torch", checkpoint, "--to", "keras", keras_file)
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"wrote {keras_file}\n"
    done = run_cli(spec, "--from", "keras", keras_file, "--to", "torch", back)
    assert done.returncode == 0, done.stderr
    ported = torch.load(back, weights_only=True)
    assert ported["fc.weight"].shape == (3, 64)
    assert ported.keys() == original.keys()
    assert all(torch.equal(ported[k], original[k]) for k in original)


def test_grouped_kernels_move_whole_groups():
    """ResNeXt's grouped 3x3: each group's kernel lands on its own output channels."""
    network = resdsl.load(str(SPECS / "resnext50_32x4d.res"))
    torch_model = weights.build_generated(network, "torch").build_model().eval()
    keras_model = weights.build_generated(network, "keras").build_model()
    weights.torch_to_keras(torch_model, keras_model, network)
    torch_kernel = torch_model.layer1[0].conv2.weight.detach().numpy()
    keras_kernel = keras_model.get_layer("layer1_block1_2_conv").kernel.numpy()
    assert keras_kernel.shape == (3, 3, torch_kernel.shape[1], torch_kernel.shape[0])
    assert np.array_equal(keras_kernel, torch_kernel.transpose(2, 3, 1, 0))


# Every spec, ResNet-1202 included (Keras on PyTorch builds it in seconds), under `make
# conformance`; the representative ones in `make test`.
KERAS_TORCH_SPECS = {
    # The small ones: Keras on PyTorch builds and runs an ImageNet net at 224 slowly on a CPU,
    # and test_torch_and_keras_agree covers those on Keras' own backend in `make test`.
    "representative": [
        p
        for p in ALL_SPECS + FEATURE_SPECS
        if spec_id(p) in REPRESENTATIVE and resdsl.load(p).input.height <= 64
    ]
    + sorted(KERAS_EDGE_SPECS.values()),
    "every": pytest.param(ALL_SPECS + FEATURE_SPECS, marks=pytest.mark.conformance),
}


@pytest.mark.parametrize("paths", KERAS_TORCH_SPECS.values(), ids=KERAS_TORCH_SPECS.keys())
def test_agree_on_keras_torch_backend(paths):
    """The same comparison with Keras running on PyTorch (a subprocess: Keras fixes its backend
    at import), then a training step there. Norm statistics are randomised; where that
    overflows in eval mode (ResNet-1202's 600 blocks), they come from a training-mode pass, as
    after training."""
    script = r"""
import json, sys
import numpy as np, torch, keras, resdsl
from resdsl.interop import weights
assert keras.backend.backend() == "torch"
torch.manual_seed(0)
out = {}
for path in sys.argv[1:]:
    net = resdsl.load(path)
    tm = weights.build_generated(net, "torch").build_model().eval()
    norms = [m for m in tm.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    x = torch.randn(2, net.input.channels, net.input.height, net.input.width)
    with torch.no_grad():
        for m in norms:
            m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 1.5)
        if not torch.isfinite(tm(x)).all():
            for m in norms:
                m.momentum = None  # running statistics = this batch's
            tm.train()(torch.randn(4, *x.shape[1:]))
            tm.eval()
    km = weights.build_generated(net, "keras").build_model()
    weights.torch_to_keras(tm, km, net)
    with torch.no_grad():
        a = tm(x).numpy()
    b = keras.ops.convert_to_numpy(km(weights.to_keras_images(x), training=False))
    error = float(np.abs(a - b).max() / np.abs(a).max())
    km.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    km.train_on_batch(weights.to_keras_images(x), np.array([0, 1]))
    y = keras.ops.convert_to_numpy(km(weights.to_keras_images(x), training=False))
    out[path] = [error, list(y.shape), bool(np.isfinite(y).all()), km.count_params()]
print(json.dumps(out))
"""
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    paths = [str(p) for p in paths]
    done = subprocess.run(
        [PYTHON, "-c", script, *paths], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for path in paths:
        network = resdsl.load(path)
        error, shape, finite, count = results[path]
        assert error <= 1e-4, (path, error)
        assert shape == [2, network.classes] and finite, path
        assert count == network.params + network.norm_stats, path


# --------------------------------------------------------------------------- stems

STEM_SWEEP = """network stem_sweep {{
  input 3x19x19
  classes 3
  stem imagenet(channels: 8, kernel: {kernel}, stride: {stride}, pool: {pool})
  block basic
  stage s1: 1 x 8
}}
"""
STEMS = [(k, s, p) for k in range(1, 8) for s in (1, 2, 3) for p in ("max", "avg", "none")]


@pytest.mark.parametrize(
    "kernel,stride,pool",
    [
        config
        if config[0] in (2, 3, 4) and config[1] in (1, 2) and config[2] in ("max", "none")
        else pytest.param(*config, marks=pytest.mark.conformance)
        for config in STEMS
    ],
)
def test_stem_sweep_agrees_with_the_ir_in_both_backends(kernel, stride, pool):
    """Odd and even stem kernels, strides and pools: both backends give the IR's shapes, and
    the same outputs with ported weights (Keras once padded even kernels differently)."""
    network = resdsl.load(STEM_SWEEP.format(kernel=kernel, stride=stride, pool=pool))
    torch_model = weights.build_generated(network, "torch").build_model().eval()
    keras_model = weights.build_generated(network, "keras").build_model()
    randomize_norms(torch_model)
    weights.torch_to_keras(torch_model, keras_model, network)
    stem = network.stem.out_shape
    seen = {}
    torch_model.s1.register_forward_hook(lambda _m, inputs, _o: seen.update(stem=inputs[0].shape))
    x = torch.randn(2, 3, 19, 19, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = torch_model(x).numpy()
    assert tuple(seen["stem"][1:]) == (stem.channels, stem.height, stem.width)
    keras_stem = keras_model.get_layer("s1_block1_1_conv").input.shape
    assert tuple(keras_stem[1:]) == (stem.height, stem.width, stem.channels)
    got = keras_model(weights.to_keras_images(x), training=False).numpy()
    assert relative_error(expected, got) <= 1e-4
