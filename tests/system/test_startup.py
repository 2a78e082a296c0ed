"""What keeps a `resdsl check` or `compile` process short: built-in backends found without an
entry-point scan, templates compiled in memory without writing any file, the prebuilt parser
tables, the formatter's parser built once, an IR of plain classes (no pydantic unless a JSON
output or validation asks for it), nothing imported that only other commands need. Timings are
left to benchmarks/; these tests check behaviour only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resdsl.codegen import backends as backend

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- backends


def test_built_in_backends_are_found_without_scanning_entry_points(monkeypatch):
    def scan(**kwargs):
        raise AssertionError("entry points scanned for a built-in backend")

    monkeypatch.setattr(backend, "entry_points", scan)
    backend.available.cache_clear()
    try:
        assert backend.exists("torch") and backend.exists("keras")
        assert type(backend.get_backend("torch")).__name__ == "TorchBackend"
        with pytest.raises(AssertionError):
            backend.exists("elsewhere")  # any other name is looked up among the plugins
    finally:
        backend.available.cache_clear()


def test_unknown_backend_is_a_key_error():
    with pytest.raises(KeyError):
        backend.get_backend("no-such-backend")
    assert not backend.exists("no-such-backend")
    assert {"torch", "keras"} <= set(backend.available())


# --------------------------------------------------------------------------- templates


def test_templates_render_and_leave_no_file_behind(tmp_path, monkeypatch):
    """Templates compile in memory: rendering writes nothing, in the project or outside it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.py.j2").write_text(
        "{% for n in names %}\n{{ n }} = {{ loop.index }}\n{% endfor %}\n"
    )
    environment = backend.template_environment(folder)
    assert environment.get_template("t.py.j2").render(names=["a", "b"]) == "a = 1\nb = 2\n"
    assert environment.bytecode_cache is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["templates"]


@pytest.mark.parametrize("name", ["torch", "keras"])
def test_shipped_templates_are_precompiled_and_current(name):
    """`make templates` after editing a template: the backends then load the compiled modules
    (a stale or missing stamp falls back to compiling in memory, tested below)."""
    import jinja2

    folder = ROOT / "backends" / name / "templates"
    environment = backend.template_environment(folder)
    assert isinstance(environment.loader, jinja2.ModuleLoader), "run `make templates`"
    compiled = {p.name for p in (folder / backend.COMPILED).iterdir() if p.suffix == ".py"}
    assert len(compiled) == len(list(folder.glob("*.j2")))


def test_stale_compiled_templates_are_not_used(tmp_path):
    import jinja2

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.py.j2").write_text("{{ a }}\n")
    backend.compile_templates(folder)
    assert isinstance(backend.template_environment(folder).loader, jinja2.ModuleLoader)
    assert backend.template_environment(folder).get_template("t.py.j2").render(a=1) == "1\n"
    (folder / "t.py.j2").write_text("{{ a }}{{ a }}\n")  # edited, not recompiled
    environment = backend.template_environment(folder)
    assert isinstance(environment.loader, jinja2.FileSystemLoader)
    assert environment.get_template("t.py.j2").render(a=1) == "11\n"


# --------------------------------------------------------------------------- whole processes


def test_check_and_compile_import_no_framework_and_scan_no_entry_points(tmp_path):
    """In a fresh process: no torch, tensorflow, keras or matplotlib, no entry-point scan of
    ours, and no pydantic (the IR's nodes are plain classes, see resdsl.ir)."""
    script = f"""
import json, sys
from importlib import metadata
scanned = []
real = metadata.entry_points
def spy(**kwargs):
    scanned.append(kwargs.get("group"))
    return real(**kwargs)
metadata.entry_points = spy
from click.testing import CliRunner
from resdsl.cli.main import main
runner = CliRunner()
spec = {str(ROOT / "specs/resnet18.res")!r}
codes = [runner.invoke(main, ["check", spec]).exit_code]
for name in ("torch", "keras"):
    codes.append(runner.invoke(main, ["compile", spec, "--backend", name]).exit_code)
heavy = ("torch", "tensorflow", "keras", "numpy", "matplotlib")
heavy = sorted(m for m in heavy if m in sys.modules)
avoided = ("pydantic", "pydantic_core", "resdsl.ir.models")
loaded = sorted(m for m in avoided if m in sys.modules)
print(json.dumps({{"codes": codes, "heavy": heavy, "scanned": scanned, "loaded": loaded}}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["codes"] == [0, 0, 0]
    assert found["heavy"] == []
    assert backend.GROUP not in found["scanned"]
    assert found["loaded"] == []


# What only other commands, error messages or the JSON outputs need (the IR's pydantic models:
# resdsl.ir.models). importlib.resources: package data is read beside the package's files.
NOT_AT_START_UP = (
    "pydantic",
    "pydantic_core",
    "resdsl.ir.models",
    "rich",
    "difflib",
    "importlib.resources",
    "importlib.metadata",
    "matplotlib",
)


@pytest.mark.parametrize(
    "arguments",
    [["check"], ["compile", "--backend", "torch"], ["compile", "--backend", "keras"]],
    ids=["check", "compile-torch", "compile-keras"],
)
def test_a_whole_process_imports_only_what_it_needs(arguments):
    """`python -X importtime -m resdsl ...` lists every module the process imports."""
    command, *options = arguments
    spec = "specs/resnet152.res"
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "resdsl", command, spec, *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "resdsl.language.parser" in imported  # the listing is there
    assert sorted(imported & set(NOT_AT_START_UP)) == []


def test_the_formatter_builds_its_parser_once():
    from resdsl.tooling.formatter import _token_parser, format_text

    text = (ROOT / "specs/resnet50.res").read_text()
    assert format_text(text) == format_text(text)
    assert _token_parser.cache_info().misses <= 1
