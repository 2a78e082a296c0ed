"""resdsl.codegen.generated: importing generated code from memory or from a file."""

from __future__ import annotations

import inspect
import sys
import traceback

import pytest
from spec_sets import ROOT

from resdsl.codegen.generated import import_file, import_source, module_name

CODE = """\
from dataclasses import dataclass


@dataclass
class Box:
    size: int


def double(x: int) -> int:
    return 2 * x
"""


def test_import_source_registers_the_module_and_keeps_its_lines():
    module = import_source(CODE, "_resdsl_test_box", "<resdsl test box>")
    try:
        assert sys.modules["_resdsl_test_box"] is module
        assert module.Box(3).size == 3  # dataclasses found the module in sys.modules
        assert module.double(4) == 8
        assert "return 2 * x" in inspect.getsource(module.double)
    finally:
        sys.modules.pop("_resdsl_test_box", None)


def test_a_failing_import_leaves_nothing_registered():
    with pytest.raises(ZeroDivisionError) as error:
        import_source("x = 1\ny = 1 / 0\n", "_resdsl_test_broken", "<resdsl test broken>")
    assert "_resdsl_test_broken" not in sys.modules
    assert "y = 1 / 0" in "".join(traceback.format_exception(error.value))


def test_import_file_names_each_path_apart_and_rereads_a_rewritten_file(tmp_path):
    first, second = tmp_path / "a" / "model.py", tmp_path / "b" / "model.py"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(CODE)
    one, two = import_file(first), import_file(second)
    try:
        assert one.__name__ != two.__name__
        assert one.__name__ == module_name(first) and one.__name__.isidentifier()
        assert one.__file__ == str(first)
        assert "class Box" in inspect.getsource(one.Box)
        first.write_text(CODE.replace("2 * x", "3 * x"))  # same size, same second
        again = import_file(first)
        assert again.double(1) == 3
        assert sys.modules[again.__name__] is again
    finally:
        for module in (one, two):
            sys.modules.pop(module.__name__, None)


def test_import_file_of_broken_code_leaves_nothing_registered(tmp_path):
    path = tmp_path / "broken-model.py"
    path.write_text("import no_such_module_anywhere\n")
    with pytest.raises(ModuleNotFoundError):
        import_file(path)
    assert module_name(path) not in sys.modules


# --------------------------------------------------------------------------- as backbones


@pytest.mark.parametrize(
    "spec", ["specs/resnet50.res", "specs/preact_resnet18.res", "specs/timm/seresnet18.res"]
)
def test_torch_models_serve_as_backbones(spec):
    """`forward_features` is what the head pools (a pre-activation net's final norm included),
    `forward_stages` every stage's output at the IR's shapes, and `forward` the head on top."""
    torch = pytest.importorskip("torch")
    import resdsl
    from resdsl.interop.weights import build_generated

    network = resdsl.load(ROOT / spec)
    model = build_generated(network, "torch").build_model().eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        features = model.forward_features(x)
        stages = model.forward_stages(x)
        logits = model(x)
        pooled = torch.flatten(model.avgpool(features), 1)
        assert torch.allclose(model.fc(pooled), logits, rtol=1e-5, atol=1e-6)
    assert [s.shape[1] for s in stages] == [stage.out_shape.channels for stage in network.stages]
    assert stages[-1].shape[2:] == features.shape[2:]
    if network.head.norm:
        assert not torch.equal(features, stages[-1])
    else:
        assert torch.equal(features, stages[-1])


def test_keras_models_take_keras_applications_options():
    pytest.importorskip("keras")
    import keras
    import numpy as np

    import resdsl
    from resdsl.interop.weights import build_generated

    network = resdsl.load(ROOT / "specs/keras/resnet50.res")
    module = build_generated(network, "keras")
    reference = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg")
    ours = module.build_model(include_top=False, pooling="avg")
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    ours.set_weights(reference.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(ours(x), reference(x), rtol=1e-4, atol=1e-4)
    assert module.build_model(include_top=False).output.shape[1:] == (7, 7, 2048)
    assert module.build_model(include_top=False, pooling="max").output.shape[1:] == (2048,)
    soft = module.build_model(5, (64, 64, 3), classifier_activation="softmax")
    np.testing.assert_allclose(np.asarray(soft(x[:1, :64, :64])).sum(), 1.0, rtol=1e-5)
