"""What keeps a `resdsl check` or `compile` process short: built-in backends found without an
entry-point scan, templates compiled in memory without writing any file, the prebuilt parser
tables, the formatter's parser built once. Timings are left to
benchmarks/; these tests check behaviour only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resdsl import backend

ROOT = Path(__file__).resolve().parent.parent


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
    """In a fresh process: no torch, tensorflow or keras, no entry-point scan of ours, and no
    pydantic validator or serializer built for any IR model (see resdsl.ir)."""
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
from resdsl.cli import main
runner = CliRunner()
spec = {str(ROOT / "specs/resnet18.res")!r}
codes = [runner.invoke(main, ["check", spec]).exit_code]
for name in ("torch", "keras"):
    codes.append(runner.invoke(main, ["compile", spec, "--backend", name]).exit_code)
heavy = sorted(m for m in ("torch", "tensorflow", "keras", "numpy") if m in sys.modules)
from resdsl import ir
models = [m for m in vars(ir).values() if isinstance(m, type) and issubclass(m, ir.Node)]
built = sorted(m.__name__ for m in models if m.__pydantic_complete__)
print(json.dumps({{"codes": codes, "heavy": heavy, "scanned": scanned, "built": built}}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["codes"] == [0, 0, 0]
    assert found["heavy"] == []
    assert backend.GROUP not in found["scanned"]
    assert found["built"] == []


def test_the_formatter_builds_its_parser_once():
    from resdsl.formatter import _token_parser, format_text

    text = (ROOT / "specs/resnet50.res").read_text()
    assert format_text(text) == format_text(text)
    assert _token_parser.cache_info().misses <= 1
