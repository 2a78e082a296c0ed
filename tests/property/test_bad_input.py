"""Any bytes given as a spec give diagnostics and exit 1 (2 for I/O), never a traceback."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from resdsl.diagnostics.core import render_github, render_json, render_text
from resdsl.driver import analyze_file, analyze_text

ROOT = Path(__file__).parents[2]
IO_CODES = {"E001", "E002", "E003"}


def _random_unicode(seed: int, n: int) -> str:
    rng = random.Random(seed)
    chars = []
    while len(chars) < n:
        c = rng.randrange(0x20, 0x30000)
        if 0xD800 <= c < 0xE000:
            continue
        chars.append(chr(c))
    return "".join(chars)


CASES: dict[str, bytes] = {
    "empty": b"",
    "blank": b"   \n\t\n",
    "binary": bytes(range(256)) * 4,
    "nul": b"network n {\x00}\n",
    "latin1": "network caf\xe9 {}\n".encode("latin-1"),
    "utf16": "network n {}\n".encode("utf-16"),
    "bom": b"\xef\xbb\xbf" + (ROOT / "specs/cifar/resnet20.res").read_bytes(),
    "huge": b"# " + b"x" * (1 << 20) + b"\n",
    "braces": b"network n " + b"{" * 100_000 + b"}" * 100_000,
    "parens": b"network n { block " + b"(" * 100_000 + b")" * 100_000 + b" }",
    "calls": b"network n { block b(" + b"a: b(" * 50_000 + b")" * 50_000 + b" }",
    "long_line": b"network n { input 3x32x32 " + b"classes 10 " * 10_000 + b"}",
    "long_name": b"network " + b"n" * 500_000 + b" { }",
    "long_number": b"network n {\n stage a: " + b"9" * 200_000 + b" x 16\n}",
    "many_stages": b"network n {\n input 3x32x32\n classes 10\n block basic\n"
    + b"".join(b"stage s%d: 1 x 16\n" % i for i in range(5_000))
    + b"}",
    "many_errors": b"network n {\n" + b"bogus 1\n" * 5_000 + b"}",
    "unicode": _random_unicode(1, 5_000).encode("utf-8"),
    "unicode_in_spec": "network n {\n  input 3x32x32 \u00e9\u4e2d\U0001f600\n}\n".encode(),
    "crlf": (ROOT / "specs/cifar/resnet20.res").read_bytes().replace(b"\n", b"\r\n"),
    "cr_only": b"network n {\r  input 3x32x32\r}",
    "lone_surrogate": b"network \xed\xa0\x80 {}",
    "nan": b"network n {\n input 3x32x32\n classes 10\n block bottleneck(expansion: nan)\n}",
    "inf": b"network n {\n stochastic_depth 1e999\n}",
    "tabs": b"network n {\n\tinput\t3x32x32\n\tstage\ta:\t1x16\t/\t\n}",
}
OK_CASES = {"bom", "crlf"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_in_process(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("spec.res").write_bytes(CASES[name])
    result = analyze_file("spec.res")
    if name in OK_CASES:
        assert result.ok, render_text(result.diagnostics, result.sources)
        return
    assert not result.ok
    assert result.diagnostics
    for d in result.diagnostics:
        if d.span is None:
            assert d.code in IO_CODES
            continue
        assert d.span.file == "spec.res"
        assert d.span.line >= 1 and d.span.column >= 1
    # Every renderer copes, whatever the input held.
    assert render_text(result.diagnostics, result.sources)
    assert render_json(result.diagnostics).startswith("[")
    render_github(result.diagnostics)
    # The text is capped however many errors there are.
    assert render_text(result.diagnostics, result.sources).count("error[") <= 50


def test_analyze_text_never_raises():
    for name, data in CASES.items():
        text = data.decode("utf-8", errors="replace")
        result = analyze_text(text, file=f"{name}.res")
        assert result.ok or result.diagnostics


def test_directory_and_missing(tmp_path):
    for path in (tmp_path, tmp_path / "missing.res"):
        result = analyze_file(str(path))
        assert [d.code for d in result.diagnostics] == ["E001"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resdsl", "check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("empty", 1),
        ("binary", 1),
        ("latin1", 1),
        ("huge", 1),
        ("braces", 1),
        ("parens", 1),
        ("many_errors", 1),
        ("unicode", 1),
    ],
)
def test_cli(name, status, tmp_path):
    path = tmp_path / f"{name}.res"
    path.write_bytes(CASES[name])
    run = _cli(str(path))
    assert run.returncode == status, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert "error[" in run.stderr


def test_cli_io_errors(tmp_path):
    folder = tmp_path / "folder.res"  # a directory that looks like a spec: walked, nothing found
    folder.mkdir()
    run = _cli(str(folder))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    run = _cli(str(tmp_path / "missing.res"))
    assert run.returncode == 2 and "error[E001]" in run.stderr
    unreadable = tmp_path / "locked.res"
    unreadable.write_text("network n {}\n")
    unreadable.chmod(0)
    try:
        run = _cli(str(unreadable))
        if os.access(unreadable, os.R_OK):  # running as root
            assert run.returncode == 1
        else:
            assert run.returncode == 2 and "error[E001]" in run.stderr
    finally:
        unreadable.chmod(0o644)
    assert "Traceback" not in run.stderr


def test_missing_required_setting_with_other_errors():
    """Found by fuzzing: a misspelt `input` crashed the spec builder with a KeyError."""
    text = (ROOT / "specs/resnet34.res").read_text().replace("input", "nput", 1)
    result = analyze_text(text, "resnet34.res")
    assert {"E101", "E106"} <= {d.code for d in result.diagnostics}
