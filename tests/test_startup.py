"""What keeps a `resdsl check` or `compile` process short: built-in backends found without an
entry-point scan, compiled templates cached in a private per-user folder (and never in an
unsafe one), the prebuilt parser tables, the formatter's parser built once. Timings are left to
benchmarks/; these tests check behaviour only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from resdsl import backend
from resdsl.cache import user_cache_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


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


# --------------------------------------------------------------------------- the cache folder


def test_cache_folder_is_private(cache_home):
    folder = user_cache_dir("things")
    assert folder == cache_home / "resdsl" / "things"
    for path in (folder, folder.parent):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert user_cache_dir("things") == folder  # found again


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
def test_a_folder_others_can_write_is_not_used(cache_home, mode):
    (cache_home / "resdsl" / "things").mkdir(parents=True)
    os.chmod(cache_home / "resdsl", mode)
    assert user_cache_dir("things") is None
    os.chmod(cache_home / "resdsl", 0o700)
    os.chmod(cache_home / "resdsl" / "things", mode)
    assert user_cache_dir("things") is None


def test_a_link_is_not_used(cache_home, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (cache_home / "resdsl").mkdir(parents=True, mode=0o700)
    (cache_home / "resdsl" / "things").symlink_to(elsewhere)
    assert user_cache_dir("things") is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_a_folder_of_another_user_is_not_used(cache_home):
    (cache_home / "resdsl").mkdir(parents=True, mode=0o700)
    os.chown(cache_home / "resdsl", 12345, 12345)
    assert user_cache_dir("things") is None


def test_no_usable_cache_home_gives_none(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert user_cache_dir("things") is None


# --------------------------------------------------------------------------- templates


@pytest.fixture
def templates(tmp_path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.py.j2").write_text(
        "{% for n in names %}\n{{ n }} = {{ loop.index }}\n{% endfor %}\n"
    )
    return folder


def _render(folder: Path) -> str:
    return backend.template_environment(folder).get_template("t.py.j2").render(names=["a", "b"])


def test_templates_are_cached_and_render_the_same(cache_home, templates):
    first = _render(templates)
    cached = list((cache_home / "resdsl").glob("templates-*/*"))
    assert len(cached) == 1
    assert _render(templates) == first == "a = 1\nb = 2\n"
    (templates / "t.py.j2").write_text("{{ names | join(', ') }}\n")  # a changed template
    assert _render(templates) == "a, b\n"


def test_a_damaged_cache_entry_is_compiled_again(cache_home, templates):
    _render(templates)
    (entry,) = (cache_home / "resdsl").glob("templates-*/*")
    for damage in (b"", b"garbage", entry.read_bytes()[:-7]):
        entry.write_bytes(damage)
        assert _render(templates) == "a = 1\nb = 2\n"


def test_templates_render_without_a_cache(tmp_path, monkeypatch, templates):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert backend.template_environment(templates).bytecode_cache is None
    assert _render(templates) == "a = 1\nb = 2\n"


def test_an_unsafe_cache_is_neither_read_nor_written(cache_home, templates):
    (cache_home / "resdsl").mkdir(parents=True)
    os.chmod(cache_home / "resdsl", 0o777)
    assert backend.template_environment(templates).bytecode_cache is None
    assert _render(templates) == "a = 1\nb = 2\n"
    assert not list((cache_home / "resdsl").iterdir())


# --------------------------------------------------------------------------- whole processes


def test_check_and_compile_import_no_framework_and_scan_no_entry_points(tmp_path):
    """In a fresh process: no torch, tensorflow or keras, and no entry-point scan of ours."""
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
print(json.dumps({{"codes": codes, "heavy": heavy, "scanned": scanned}}))
"""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["codes"] == [0, 0, 0]
    assert found["heavy"] == []
    assert backend.GROUP not in found["scanned"]


def test_the_formatter_builds_its_parser_once():
    from resdsl.formatter import _token_parser, format_text

    text = (ROOT / "specs/resnet50.res").read_text()
    assert format_text(text) == format_text(text)
    assert _token_parser.cache_info().misses <= 1
