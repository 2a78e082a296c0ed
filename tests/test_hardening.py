"""Hardening: random valid specs run in both backends, nothing from a spec escapes into
generated code, writes are atomic, output is deterministic."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from spec_strategy import spec_texts

import resdsl
from resdsl.files import atomic_write
from resdsl.generated import import_file

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FUZZ = bool(os.environ.get("RESDSL_FUZZ"))
EXAMPLES = 1000 if FUZZ else 25  # `make fuzz` draws 1,000


def _import(code: str, tmp_path: Path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(code)
    return import_file(path)


# --------------------------------------------------------------------------- property tests


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=spec_texts())
def test_random_specs_run_in_both_backends_with_the_irs_shapes(text, tmp_path_factory):
    """Any valid spec compiles for torch and keras; each module imports, and a forward pass
    gives the IR's shape after every stage and its parameter count."""
    import keras
    import numpy as np
    import torch

    network = resdsl.load(text)
    tmp = tmp_path_factory.mktemp("drawn")
    c, h, w = network.input.channels, network.input.height, network.input.width

    torch_module = _import(resdsl.compile(text, backend="torch"), tmp, "drawn_torch")
    model = torch_module.build_model().eval()
    seen = {}
    for stage in network.stages:
        getattr(model, stage.name).register_forward_hook(
            lambda _m, _i, out, name=stage.name: seen.__setitem__(name, tuple(out.shape[1:]))
        )
    with torch.no_grad():
        out = model(torch.randn(2, c, h, w))
    assert tuple(out.shape) == (2, network.classes)
    for stage in network.stages:
        shape = stage.out_shape
        assert seen[stage.name] == (shape.channels, shape.height, shape.width), stage.name
    assert sum(p.numel() for p in model.parameters()) == network.params

    keras_module = _import(resdsl.compile(text, backend="keras"), tmp, "drawn_keras")
    kmodel = keras_module.build_model()
    logits = kmodel(np.random.default_rng(0).normal(size=(2, h, w, c)).astype("float32"))
    assert tuple(logits.shape) == (2, network.classes)
    for stage in network.stages:
        last = kmodel.get_layer(f"{stage.name}_block{stage.blocks}_out")
        shape = stage.out_shape
        assert tuple(last.output.shape[1:]) == (shape.height, shape.width, shape.channels)
    trainable = sum(int(np.prod(v.shape)) for v in kmodel.trainable_weights)
    assert trainable == network.params
    keras.backend.clear_session()


# --------------------------------------------------------------------------- injection

_BASE = """network {name} {{
  input 3x32x32
  classes 10
  stem cifar
  block basic
  stage {stage}: 1 x 16
}}
"""

HOSTILE_NAMES = [
    'a"b',
    "a'b",
    "a\\b",
    "a\nb",
    "__import__",
    "__class__",
    "class",
    "import",
    "lambda",
    "None",
    "True",
    "match",
    "аbc",  # Cyrillic a
    "ａbc",  # fullwidth a
    "a\u200bb",  # zero-width space
    "a\x00b",
    "a\x1bb",
    "a;b",
    "a)b",
    "a#b",
    "eval(1)",
    "a" * 300,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
@pytest.mark.parametrize("where", ["network", "stage"])
def test_hostile_names_are_rejected_with_a_located_diagnostic(name, where):
    text = _BASE.format(
        name=name if where == "network" else "net", stage=name if where == "stage" else "s1"
    )
    result = resdsl.analyze(text)
    assert not result.ok
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert errors and all(d.span is not None for d in errors)
    lines = text.split("\n")
    for d in errors:
        assert 1 <= d.span.line <= len(lines)


_ALLOWED_IMPORTS = {
    "torch": {"__future__", "typing", "torch", "math", "collections", "dataclasses"},
    "keras": {"__future__", "typing", "keras", "math", "sys", "collections", "dataclasses"},
}
_FORBIDDEN_CALLS = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr",
                    "globals", "locals", "vars", "input", "breakpoint"}  # fmt: skip


def _audit(code: str, backend: str) -> None:
    """The module imports only its framework and the standard library, and calls nothing that
    could reach outside the network's construction."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] in _ALLOWED_IMPORTS[backend], alias.name
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] in _ALLOWED_IMPORTS[backend], node.module
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in _FORBIDDEN_CALLS, node.func.id
        elif isinstance(node, ast.Attribute):
            assert not node.attr.startswith("__") or node.attr in {"__init__"}, node.attr


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_text_from_a_spec_cannot_break_out_of_generated_code(backend, tmp_path):
    """Everything a spec can put into code: names at their limits, comments full of code,
    a hostile file name. The module's AST holds nothing but the network."""
    hostile_file = tmp_path / 'x"""; __import__("os").system("echo pwned") #\\n.res'
    hostile_file.write_text(
        '# """; import os; os.system(\'echo pwned\')\n'
        "network " + "n" * 64 + " {  # '''; __import__('os')\n"
        "  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n"
        "  stage " + "s" * 64 + ": 1 x 16  # \\n import os\n"
        "}\n"
    )
    result = resdsl.analyze(hostile_file)
    assert result.ok, result.diagnostics
    from resdsl.backend import get_backend

    code = get_backend(backend).emit(result.network)
    _audit(code, backend)
    assert "echo pwned" not in code and "os.system" not in code
    assert "\\" not in result.network.source.file and '"' not in result.network.source.file


@pytest.mark.parametrize("backend", ["torch", "keras"])
@pytest.mark.parametrize(
    "spec", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").rglob("*.res"))
)
def test_every_spec_module_passes_the_audit(backend, spec):
    _audit(resdsl.compile(ROOT / spec, backend=backend), backend)


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "model.py"
    target.write_text("old\n")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]


@pytest.mark.parametrize(
    "command",
    [
        ["compile", "specs/resnet50.res", "--backend", "torch", "-o", "{out}"],
        ["compile", "specs/keras/resnet50.res", "--backend", "keras", "-o", "{out}"],
        ["fmt", "{out}"],
    ],
    ids=["compile-torch", "compile-keras", "fmt"],
)
def test_a_kill_mid_write_leaves_the_previous_file_intact(command, tmp_path):
    """SIGKILL while the new file is being written (fsync made slow): the old file survives."""
    target = tmp_path / ("spec.res" if command[0] == "fmt" else "model.py")
    old = "network old {\n  input 3x8x8\n  classes 2\n  block basic\n  stage s:1 x 4\n}\n"
    target.write_text(old)
    marker = tmp_path / "writing"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        real_fsync = os.fsync
        def slow_fsync(fd):
            open({str(marker)!r}, "w").close()
            time.sleep(60)
            real_fsync(fd)
        os.fsync = slow_fsync
        from resdsl.cli import main
        sys.argv = ["resdsl", *{[a.replace("{out}", str(target)) for a in command]!r}]
        main()
        """
    )
    process = subprocess.Popen([PYTHON, "-c", script], cwd=ROOT)
    try:
        while not marker.exists():  # no deadline: finishing first fails the test
            assert process.poll() is None, "finished before writing"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert target.read_text() == old


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_output_is_identical_across_input_paths_and_hash_seeds(backend, tmp_path):
    spec = ROOT / "specs" / "resnet101.res"  # extends, so the parent is found relative to it
    outputs = set()
    for seed, path, cwd in [
        ("0", "specs/resnet101.res", ROOT),
        ("1", "./specs/../specs/resnet101.res", ROOT),
        ("2", str(spec), tmp_path),
        ("3", "resnet101.res", ROOT / "specs"),
    ]:
        done = subprocess.run(
            [PYTHON, "-m", "resdsl", "compile", path, "--backend", backend],
            cwd=cwd,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_ir_json_is_identical_across_input_paths_but_for_the_file_spans_name(tmp_path):
    """Spans name the file as it was given (that is what an editor jumps to); everything else
    in `resdsl ir` is the same whichever path reaches the spec."""
    import json

    def without_span_files(node):
        if isinstance(node, dict):
            return {
                k: without_span_files(v)
                for k, v in node.items()
                if k != "file" or "line" not in node
            }
        if isinstance(node, list):
            return [without_span_files(v) for v in node]
        return node

    outputs = []
    for path, cwd in [("specs/resnet50d.res", ROOT), (str(ROOT / "specs/resnet50d.res"), tmp_path)]:
        done = subprocess.run(
            [PYTHON, "-m", "resdsl", "ir", path], cwd=cwd, capture_output=True, check=True
        )
        outputs.append(without_span_files(json.loads(done.stdout)))
    assert outputs[0] == outputs[1]
    assert outputs[0]["source"]["file"] == "resnet50d.res"
