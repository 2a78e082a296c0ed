"""Structured suggestions (issue 24): diagnostics carry edits with an applicability, which
`resdsl check --fix` applies (safe ones; unsafe with --unsafe-fixes), JSON output reports and
the language server offers as quick fixes (tests/unit/lsp/test_lsp.py)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from resdsl.cli.main import main
from resdsl.diagnostics.fixes import apply, suggestions_in
from resdsl.driver import analyze_file
from resdsl.language.values import closest

TYPOS = (
    "network n {\n  input 3x32x32\n  classes 10\n  stem cifar\n"
    "  block Bottleneck(expansoin: 4)\n  activaton relu\n  shortcut b\n  stage a: 2 x 16\n}\n"
)
FIXED = (
    "network n {\n  input 3x32x32\n  classes 10\n  stem cifar\n"
    "  block bottleneck(expansion: 4)\n  activation relu\n  shortcut B\n  stage a: 2 x 16\n}\n"
)


def _check(*args: str):
    return CliRunner().invoke(main, ["check", *args])


def test_a_case_or_a_one_letter_typo_is_safe_a_guess_is_not():
    assert closest("Bottleneck", ["basic", "bottleneck"]) == ("bottleneck", "safe")
    assert closest("atention", ["attention", "activation"]) == ("attention", "safe")
    assert closest("activaton", ["activation", "attention"]) == ("activation", "safe")
    # A digit dropped is another name, not a typo; a short word has too many neighbours.
    assert closest("relu6", ["relu", "silu", "gelu"]) == ("relu", "unsafe")
    assert closest("sel", ["se", "eca", "none"])[1] == "unsafe"
    # Two options within two edits: which was meant is a guess.
    assert closest("batc", ["batch", "match"])[1] == "unsafe"
    assert closest("zzzzzz", ["basic", "bottleneck"]) is None
    assert closest("x" * 100_000, ["basic"]) is None  # refused unread, not compared


def test_suggestions_are_spans_with_replacements_in_the_json(tmp_path):
    spec = tmp_path / "t.res"
    spec.write_text(TYPOS)
    result = analyze_file(str(spec))
    found = suggestions_in(result.diagnostics, str(spec))
    assert {s.replacement for s in found} == {"bottleneck", "activation", "B"}
    text, count = apply(TYPOS, found)
    assert count == 3 and text == FIXED.replace("expansion", "expansoin")
    done = _check(str(spec), "--format", "json")
    assert done.exit_code == 1
    (item,) = [i for i in json.loads(done.stdout) if i["code"] == "E101"]
    assert item["suggestions"] == [
        {"span": item["span"], "replacement": "activation", "applicability": "safe"}
    ]


def test_check_fix_applies_safe_suggestions_round_after_round(tmp_path):
    """The misspelt argument is only reported once its block type is fixed: a second round
    fixes it. A byte-order mark and CRLF line ends are kept."""
    spec = tmp_path / "t.res"
    spec.write_bytes(b"\xef\xbb\xbf" + TYPOS.replace("\n", "\r\n").encode())
    done = _check(str(spec), "--fix")
    assert done.exit_code == 0, done.output
    assert f"fixed 4 problems in {spec}" in done.stderr
    assert spec.read_bytes() == b"\xef\xbb\xbf" + FIXED.replace("\n", "\r\n").encode()
    again = _check(str(spec), "--fix")
    assert again.exit_code == 0 and "fixed" not in again.stderr


def test_unsafe_suggestions_need_unsafe_fixes(tmp_path):
    spec = tmp_path / "t.res"
    spec.write_text(FIXED.replace("activation relu", "activation relu6"))
    done = _check(str(spec), "--fix")
    assert done.exit_code == 1 and "fixed" not in done.stderr
    assert "did you mean `relu`?" in done.output
    done = _check(str(spec), "--fix", "--unsafe-fixes")
    assert done.exit_code == 0 and "fixed 1 problem in" in done.stderr
    assert "activation relu\n" in spec.read_text()
    assert _check(str(spec), "--unsafe-fixes").exit_code == 2  # only with --fix


def test_a_parent_is_never_edited_through_its_child(tmp_path):
    parent, child = tmp_path / "parent.res", tmp_path / "child.res"
    parent.write_text(FIXED.replace("activation relu", "activaton relu"))
    child.write_text('network child extends "parent.res" {\n  classes 5\n}\n')
    before = parent.read_text()
    done = _check(str(child), "--fix")
    assert done.exit_code == 1 and parent.read_text() == before
    assert _check(str(parent), "--fix").exit_code == 0
    assert "activation relu" in Path(parent).read_text()


def test_a_missing_parent_suggests_the_nearest_file_beside_it(tmp_path):
    """Issue 30: `extends` of a misspelt file names the `.res` file meant, and --fix rewrites
    the string (a letter typo; `resnet_50` for `resnet50` is a guess: --unsafe-fixes)."""
    (tmp_path / "resnet50.res").write_text(FIXED.replace("network n", "network resnet50"))
    child = tmp_path / "child.res"
    child.write_text('network child extends "resnt50.res" {\n  classes 5\n}\n')
    done = _check(str(child), "--format", "json")
    (item,) = json.loads(done.stdout)
    assert item["code"] == "E150" and item["help"] == 'did you mean `extends "resnet50.res"`?'
    assert item["suggestions"][0]["replacement"] == '"resnet50.res"'
    assert _check(str(child), "--fix").exit_code == 0
    assert child.read_text().startswith('network child extends "resnet50.res" {')
    child.write_text('network child extends "resnet_50.res" {\n  classes 5\n}\n')
    assert _check(str(child), "--fix").exit_code == 1
    assert _check(str(child), "--fix", "--unsafe-fixes").exit_code == 0
