"""The `resdsl` command line: exit statuses, formats, inputs, and what it never imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from torch_helpers import ruff_problems

import resdsl
from resdsl.cli.main import main

ROOT = Path(__file__).parents[2]
BAD = (
    "network n {\n  input 3x32x32\n  classes 10\n  block basic\n  stage a: 1 x 16\n  clases 3\n}\n"
)


def _run(*args: str, env: dict | None = None, cwd=ROOT) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    for key in ("NO_COLOR", "FORCE_COLOR"):
        if key not in (env or {}):
            full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "resdsl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
    )


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def bad(tmp_path):
    path = tmp_path / "bad.res"
    path.write_text(BAD)
    return path


def test_python_dash_m_checks_the_library():
    run = _run("check", "specs/")
    assert run.returncode == 0, run.stderr
    assert "all valid" in run.stderr
    assert "Traceback" not in run.stderr


def test_version_and_help():
    assert _run("--version").stdout.startswith("resdsl, version ")
    result = _invoke("--help")
    assert result.exit_code == 0 and "check" in result.output and "ir" in result.output


def test_files_and_directories(tmp_path, bad):
    good = ROOT / "specs" / "resnet18.res"
    assert _invoke("check", str(good)).exit_code == 0
    assert _invoke("check", str(ROOT / "specs" / "cifar"), str(good)).exit_code == 0
    assert _invoke("check", str(tmp_path)).exit_code == 1  # the folder holds bad.res
    result = _invoke("check", str(good), str(bad))
    assert result.exit_code == 1
    assert "1 with errors" in result.output


def test_exit_statuses(tmp_path, bad):
    assert _invoke("check", str(bad)).exit_code == 1
    assert _invoke("check", str(tmp_path / "missing.res")).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _invoke("check", str(empty))
    assert result.exit_code == 2 and "no .res files" in result.output
    assert _invoke("check").exit_code == 2
    assert _invoke("check", "--format", "xml", str(bad)).exit_code == 2
    assert _invoke("frobnicate").exit_code == 2


def test_missing_file_in_subprocess(tmp_path):
    run = _run("check", str(tmp_path / "missing.res"))
    assert run.returncode == 2
    assert "error[E001]" in run.stderr and "Traceback" not in run.stderr


def test_warnings_exit_zero(tmp_path):
    from resdsl.diagnostics.core import CODES

    path = tmp_path / "warn.res"
    path.write_text(CODES["W502"].example)
    result = _invoke("check", str(path))
    assert result.exit_code == 0 and "warning[W502]" in result.output
    assert "1 warning" in result.output


def test_text_output(bad):
    run = _run("check", str(bad))
    assert run.returncode == 1
    assert f"{bad}:6:3: error[E101]: unknown setting `clases`" in run.stderr
    assert "6 |   clases 3" in run.stderr and "^^^^^^" in run.stderr
    assert "= help: did you mean `classes`?" in run.stderr
    assert "\x1b[" not in run.stderr  # not a terminal
    assert run.stdout == ""


def test_colour_is_forced_and_no_color_wins(bad):
    assert "\x1b[" in _run("check", str(bad), env={"FORCE_COLOR": "1"}).stderr
    run = _run("check", str(bad), env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[" not in run.stderr


def test_json_format(bad):
    run = _run("check", "--format", "json", str(bad), "specs/resnet18.res")
    assert run.returncode == 1
    items = json.loads(run.stdout)
    assert [i["code"] for i in items] == ["E101"]
    assert items[0]["span"]["line"] == 6 and items[0]["help"]
    ok = _run("check", "--format", "json", "specs/")
    assert ok.returncode == 0 and json.loads(ok.stdout) == []


def test_github_format(bad):
    run = _run("check", "--format", "github", str(bad))
    assert run.returncode == 1
    assert run.stdout.startswith(f"::error file={bad},line=6,col=3,")
    assert "[E101]" in run.stdout


def test_quiet(bad):
    assert _invoke("check", "-q", str(ROOT / "specs")).output == ""


SNOOP = """
import runpy, sys
sys.argv = ["resdsl", *{args!r}]
try:
    runpy.run_module("resdsl", run_name="__main__")
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("torch", "tensorflow", "keras", "torchvision") if m in sys.modules)
print("HEAVY", heavy, "EXIT", code, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["check", "specs/"],
        ["ir", "specs/resnet50.res"],
        ["ir", "--schema"],
        ["check", "--format", "json", "specs/keras"],
    ],
)
def test_check_and_ir_import_no_framework(args):
    run = subprocess.run(
        [sys.executable, "-c", SNOOP.format(args=args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert "HEAVY [] EXIT 0" in run.stderr, run.stderr[-2000:]


def test_broken_pipe_is_quiet():
    run = subprocess.run(
        f"{sys.executable} -m resdsl ir specs/resnet152.res | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert "Traceback" not in run.stderr


# --------------------------------------------------------------------------- Python API


def test_build_returns_the_model_and_writes_nothing(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    model = resdsl.build(str(ROOT / "specs/resnet18.res"), num_classes=7)
    assert isinstance(model, torch.nn.Module)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)
    assert list(tmp_path.iterdir()) == []


def test_text_resolves_extends_in_base():
    text = 'network r extends "resnet50.res" {\n  classes 10\n}\n'
    network = resdsl.load(text, base=ROOT / "specs")
    assert network.classes == 10 and network.total_blocks == 16
    assert "def build_model" in resdsl.compile(text, base=ROOT / "specs")
    with pytest.raises(resdsl.SpecError) as error:
        resdsl.load(text, base=ROOT / "tests")
    assert "E150" in str(error.value)


# --------------------------------------------------------------------------- backend limits


@pytest.fixture
def limited_keras(monkeypatch):
    """The keras backend as a plugin that cannot express a network might be: the built-in
    backends express every network that validates, so no spec shows E701 by itself."""
    from resdsl.backends.keras import KerasBackend

    def unsupported(self, network):
        return ["stages of 2 blocks"]

    monkeypatch.setattr(KerasBackend, "unsupported", unsupported)


def test_what_a_backend_cannot_express_is_a_located_diagnostic(limited_keras):
    spec = str(ROOT / "specs/resnet18.res")
    line = resdsl.load(spec).span.line  # the `network` line
    text = CliRunner().invoke(main, ["compile", spec, "--backend", "keras"])
    assert text.exit_code == 1 and text.stdout == ""
    assert f"{spec}:{line}:1: error[E701]: the keras backend cannot express stages of 2 " in (
        text.stderr
    )
    assert "= help: compile with another backend" in text.stderr
    run = CliRunner().invoke(main, ["compile", spec, "-b", "keras", "--format", "json"])
    (item,) = json.loads(run.stdout)
    assert run.exit_code == 1 and item["code"] == "E701" and item["span"]["line"] == line
    run = CliRunner().invoke(main, ["compile", spec, "-b", "keras", "--format", "github"])
    assert run.exit_code == 1 and run.stdout.startswith(f"::error file={spec},line={line},col=1,")
    # `check` reports it for the backends it is asked about, and only for those.
    assert _invoke("check", spec).exit_code == 0
    run = CliRunner().invoke(main, ["check", "--backend", "keras", "-b", "torch", spec])
    assert run.exit_code == 1 and run.stderr.count("error[E701]") == 1
    assert "checked 1 spec: 1 with errors" in run.stderr
    # The Python API raises the project's error, with the diagnostic.
    for api in (resdsl.compile, resdsl.build):
        with pytest.raises(resdsl.SpecError) as error:
            api(spec, backend="keras")
        assert [d.code for d in error.value.diagnostics] == ["E701"]


def test_check_refuses_an_unknown_backend():
    run = CliRunner().invoke(main, ["check", "--backend", "nope", str(ROOT / "specs/resnet18.res")])
    assert run.exit_code == 2 and "unknown backend `nope`" in run.stderr


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_compile_to_stdout_keeps_its_warnings_off_the_code(fmt, tmp_path):
    """Code on stdout is the whole of stdout: a warning in a machine format goes to stderr."""
    import ast

    spec = tmp_path / "odd.res"
    spec.write_text(
        "network odd {\n  input 3x30x30\n  classes 10\n  stem cifar\n  block basic\n"
        "  stage a: 1 x 16\n  stage b: 1 x 32 / 2\n  stage c: 1 x 64 / 2\n}\n"
    )
    run = _run("compile", str(spec), "--backend", "torch", "--format", fmt)
    assert run.returncode == 0, run.stderr
    ast.parse(run.stdout)
    assert "W502" in run.stderr
    if fmt == "json":
        assert [d["code"] for d in json.loads(run.stderr)] == ["W502"]


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_the_regenerate_line_is_the_command_that_wrote_it(backend, tmp_path, monkeypatch):
    """Issue 30: a module written with `-o` says to regenerate it with the spec's path and `-o`
    as given; running that line writes the same bytes. A command too long for one line is
    broken with shell continuations, and the module stays ruff-clean."""
    import shlex

    monkeypatch.chdir(ROOT)
    short = tmp_path / "r18.py"
    longer = tmp_path / ("a_folder_with_a_rather_long_name_" * 2) / "resnet18_generated.py"
    longer.parent.mkdir()
    for out in (short, longer):
        args = ["compile", "specs/resnet18.res", "--backend", backend, "-o", str(out)]
        assert CliRunner().invoke(main, args).exit_code == 0
        text = out.read_text()
        after = text.split('"""', 2)[1].split("regenerate with", 1)[1]
        if after.startswith(" `"):  # on the line itself
            command = after.split("`")[1]
        else:  # on lines of their own, continued by backslashes (doubled in the source)
            block = after.split("\n\n")[1]
            command = " ".join(
                line.strip().removesuffix("\\\\").strip() for line in block.splitlines()
            )
        words = shlex.split(command)
        assert words == ["resdsl", "compile", "specs/resnet18.res", "--backend", backend, "-o",
                         str(out)]  # fmt: skip
        out.unlink()
        assert CliRunner().invoke(main, words[1:]).exit_code == 0
        assert out.read_text() == text
        assert not ruff_problems(out)


# One spec per family feature of issue 25's: generated stages, RegNetZ's and RegNetV's
# shortcuts, torchvision's containers, weight standardization, the norms that hold their
# nonlinearity, group norms by size.
FAMILY_SPECS = (
    "specs/regnet/regnetz_005.res",
    "specs/regnet/regnetv_064.res",
    "specs/regnet/regnety_040_sgn.res",
    "specs/torchvision_regnet/regnet_y_400mf.res",
    "specs/resnetv2/resnetv2_50x1_bit.res",
    "specs/resnetv2/resnetv2_50d_evos.res",
    "specs/resnetv2/resnetv2_50d_frn.res",
)


@pytest.mark.parametrize("spec", FAMILY_SPECS)
def test_every_report_reads_the_families_settings(spec):
    """summary, ir and graph describe the network; diff against ResNet-50 names each setting
    that differs (the norms, the convolutions) and, with `--exit-code`, exits 1."""
    for command in ("summary", "ir", "graph"):
        result = _invoke(command, str(ROOT / spec))
        assert result.exit_code == 0, (command, result.output)
    result = _invoke("diff", "--exit-code", str(ROOT / "specs/resnet50.res"), str(ROOT / spec))
    assert result.exit_code == 1, result.output
    assert "norm" in result.output or "stage" in result.output
