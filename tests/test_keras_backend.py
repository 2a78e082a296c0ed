"""The Keras backend: fidelity to keras.applications, parameters against the IR, formatting,
determinism, imports, goldens, and the model on Keras' torch backend."""

from __future__ import annotations

import ast
import contextlib
import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# torchvision (through triton) segfaults when imported after TensorFlow in one process; the
# Keras tests load TensorFlow, so take torchvision first wherever these tests run.
with contextlib.suppress(ImportError):
    import torchvision  # noqa: F401
from resdsl.backends.keras import KerasBackend, layer_pairs

import resdsl

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ALL_SPECS = sorted(SPECS.rglob("*.res"))
FEATURE_SPECS = sorted((Path(__file__).parent / "torch_specs").glob("*.res"))
GOLDEN = Path(__file__).parent / "golden" / "keras"
UPDATE = os.environ.get("RESDSL_UPDATE_GOLDEN") == "1"
PYTHON = sys.executable


def spec_id(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


def emit(path: Path) -> str:
    return resdsl.compile(str(path), backend="keras")


def import_generated(path: Path):
    from resdsl.weights import build_generated

    return build_generated(resdsl.load(str(path)), "keras")


# --------------------------------------------------------------------------- the text


@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_golden(path):
    golden = GOLDEN / path.relative_to(SPECS).with_suffix(".py")
    code = emit(path)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(code)
    assert golden.exists(), f"no golden file {golden}; run with RESDSL_UPDATE_GOLDEN=1"
    expected = golden.read_text()
    if code != expected:
        diff = difflib.unified_diff(
            expected.splitlines(True), code.splitlines(True), str(golden), "generated"
        )
        pytest.fail(
            "generated code differs from the golden file (RESDSL_UPDATE_GOLDEN=1 regenerates):\n"
            + "".join(diff)
        )


def test_ruff_clean():
    """`ruff check` and `ruff format --check` with the project's config, every spec."""
    ruff = Path(PYTHON).parent / "ruff"
    with tempfile.TemporaryDirectory() as folder:
        for path in ALL_SPECS + FEATURE_SPECS:
            name = spec_id(path).replace("/", "_") + ".py"
            Path(folder, name).write_text(emit(path))
        config = str(ROOT / "pyproject.toml")
        for args in (["check"], ["format", "--check"]):
            done = subprocess.run(
                [str(ruff), *args, "--config", config, "--no-cache", folder],
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", ALL_SPECS + FEATURE_SPECS, ids=spec_id)
def test_deterministic_and_imports_only_keras(path):
    code = emit(path)
    assert code == emit(path)
    assert "\r" not in code and str(ROOT) not in code
    imported = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "keras"} | set(sys.stdlib_module_names)


def test_size_does_not_grow_with_depth():
    shallow = emit(SPECS / "cifar" / "resnet20.res")
    assert len(emit(SPECS / "cifar" / "resnet110.res").splitlines()) == len(shallow.splitlines())
    # ResNet-1202 only adds the raise of Python's recursion limit that Keras needs.
    deepest = emit(SPECS / "cifar" / "resnet1202.res")
    assert len(deepest.splitlines()) <= len(shallow.splitlines()) + 6


def test_compiling_never_imports_keras():
    script = (
        "import sys, resdsl\n"
        "for p in sys.argv[1:]: resdsl.compile(p, backend='keras')\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    paths = [str(p) for p in ALL_SPECS + FEATURE_SPECS]
    done = subprocess.run([PYTHON, "-c", script, *paths], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_cli_compile(tmp_path):
    out = tmp_path / "resnet20.py"
    done = subprocess.run(
        [
            PYTHON,
            "-m",
            "resdsl.cli",
            "compile",
            "specs/cifar/resnet20.res",
            "--backend",
            "keras",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text() == emit(SPECS / "cifar" / "resnet20.res")


def test_unsupported_is_a_diagnostic(tmp_path):
    spec = tmp_path / "wide_stride.res"
    spec.write_text(
        "network wide_stride {\n  input 3x36x36\n  classes 3\n  block basic\n"
        "  shortcut D\n  stem cifar\n  stage a: 1 x 16\n"
        "  stage b: 1 x 32 / 3 { waive halve_double }\n}\n"
    )
    network = resdsl.load(str(spec))
    assert KerasBackend().unsupported(network)
    done = subprocess.run(
        [PYTHON, "-m", "resdsl.cli", "compile", str(spec), "--backend", "keras"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "cannot express" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- keras.applications

REFERENCES = {
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "resnet101v2": "ResNet101V2",
    "resnet152v2": "ResNet152V2",
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_keras_applications(name):
    import keras
    import numpy as np

    reference = getattr(keras.applications, REFERENCES[name])(
        weights=None, classifier_activation=None
    )
    model = import_generated(SPECS / "keras" / f"{name}.res").build_model()

    # keras leaves the V2 nets' strided 1x1 max pools (and the input) unnamed.
    def named(m):
        return [
            layer.name
            for layer in m.layers
            if not layer.name.startswith(("input_layer", "max_pooling2d"))
            and not layer.name.endswith("_0_pool")
        ]

    assert named(model) == named(reference)
    assert [w.path for w in model.weights] == [w.path for w in reference.weights]
    assert [tuple(w.shape) for w in model.weights] == [tuple(w.shape) for w in reference.weights]
    for ours, theirs in zip(model.layers, reference.layers, strict=True):
        if hasattr(theirs, "epsilon"):
            assert (ours.epsilon, ours.momentum) == (theirs.epsilon, theirs.momentum)
    model.set_weights(reference.get_weights())
    x = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype("float32")
    expected = reference(x, training=False).numpy()
    got = model(x, training=False).numpy()
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


# Every other spec's counts are checked in test_weights, which builds its Keras model anyway.
@pytest.mark.parametrize("path", [SPECS / "cifar" / "resnet1202.res", *FEATURE_SPECS], ids=spec_id)
def test_parameter_counts(path):
    import numpy as np

    network = resdsl.load(str(path))
    model = import_generated(path).build_model()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == network.params
    assert model.count_params() == network.params + network.norm_stats
    assert model.output_shape == (None, network.classes)
    paired = {name for _, name, _ in layer_pairs(network)}
    assert paired == {layer.name for layer in model.layers if layer.weights}


def test_build_model_arguments():
    module = import_generated(SPECS / "cifar" / "resnet20.res")
    assert module.INPUT_SHAPE == (32, 32, 3)
    model = module.build_model(num_classes=3, input_shape=(40, 48, 3))
    assert model.input_shape == (None, 40, 48, 3)
    assert model.output_shape == (None, 3)


def test_features_in_keras_layers():
    """Stochastic depth per block, dropout, GELU (exact), momentum and init conversions."""
    import keras

    path = FEATURE_SPECS[0]  # features_a: silu, stochastic depth, dropout, glorot, zero last norm
    network = resdsl.load(str(path))
    model = import_generated(path).build_model()
    rates = {
        f"{stage.name}_block{position + 1}_drop": network.drop_path_rate(index)
        for index, stage, position, _ in network.blocks()
    }
    drops = {layer.name: layer for layer in model.layers if layer.name.endswith("_drop")}
    assert {n: d.rate for n, d in drops.items()} == {n: r for n, r in rates.items() if r > 0}
    assert all(tuple(d.noise_shape) == (None, 1, 1, 1) for d in drops.values())
    assert model.get_layer("top_dropout").rate == network.head.dropout
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(abs(n.momentum - (1 - network.conventions.norm_momentum)) < 1e-12 for n in norms)
    assert all(n.epsilon == network.conventions.norm_eps for n in norms)
    gelu = import_generated(FEATURE_SPECS[1]).build_model()
    act = gelu.get_layer("conv1_1_conv")  # no norm in this stem
    assert act is not None
    x = keras.ops.convert_to_tensor([[-1.0, 0.5, 2.0]])
    exact = keras.activations.gelu(x, approximate=False)
    layer = next(la for la in gelu.layers if isinstance(la, keras.layers.Activation))
    assert keras.ops.all(layer(x) == exact)


# --------------------------------------------------------------------------- keras' torch backend

TORCH_BACKEND_SPECS = [
    SPECS / "cifar" / "resnet20.res",
    SPECS / "resnet50d.res",
    SPECS / "preact_resnet18.res",
    *FEATURE_SPECS,
]


def test_runs_on_keras_torch_backend():
    """Keras fixes its backend at import: build, train one step and predict in a subprocess."""
    script = r"""
import json, sys
import numpy as np, keras, resdsl
from resdsl.weights import build_generated
assert keras.backend.backend() == "torch"
out = {}
for path in sys.argv[1:]:
    net = resdsl.load(path)
    model = build_generated(net, "keras").build_model()
    x = np.random.default_rng(0).standard_normal(
        (2, net.input.height, net.input.width, net.input.channels)).astype("float32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="sgd", loss=loss)
    model.train_on_batch(x, np.array([0, 1]))
    y = keras.ops.convert_to_numpy(model(x, training=False))
    out[path] = [list(y.shape), bool(np.isfinite(y).all()), model.count_params()]
print(json.dumps(out))
"""
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    paths = [str(p) for p in TORCH_BACKEND_SPECS]
    done = subprocess.run(
        [PYTHON, "-c", script, *paths], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for path in paths:
        network = resdsl.load(path)
        shape, finite, count = results[path]
        assert shape == [2, network.classes] and finite
        assert count == network.params + network.norm_stats
