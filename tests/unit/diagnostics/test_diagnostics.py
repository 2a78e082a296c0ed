"""One test per diagnostic code, each comparing the rendered text with a golden file.

Driven from :data:`resdsl.diagnostics.core.CODES`: a code's `example` is written to a file in a
temporary folder (entered, so the golden text holds a stable relative path) and analysed; the
code must appear and the rendering must match
`tests/unit/diagnostics/golden/diagnostics/<code>.txt`. Codes whose example is empty (I/O,
encoding, size, extends depth, a backend's limit) build their input here.
`RESDSL_UPDATE_GOLDEN=1` rewrites the golden files; a mismatch prints a unified diff.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from resdsl.diagnostics.core import (
    CODES,
    Diagnostic,
    render_github,
    render_json,
    render_text,
    use_color,
)
from resdsl.driver import analyze_file, backend_diagnostics
from resdsl.language.extends import MAX_EXTENDS_DEPTH
from resdsl.language.parser import MAX_FILE_BYTES, MAX_TOKENS

GOLDEN = Path(__file__).parent / "golden" / "diagnostics"
UPDATE = os.environ.get("RESDSL_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, actual: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"{path} is missing; run with RESDSL_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(path),
                tofile="rendered",
            )
        )
        pytest.fail(f"rendered diagnostics differ from {path.name}:\n{diff}", pytrace=False)


# --------------------------------------------------------------------------- inputs per code


def _write_example(code: str) -> str:
    name = "self.res" if code == "E151" else "example.res"
    Path(name).write_text(CODES[code].example, encoding="utf-8", newline="\n")
    return name


def _build_input(code: str) -> str:
    """Inputs for the codes without an example, in the current (temporary) folder."""
    if code == "E001":
        return "missing.res"
    if code == "E002":
        Path("latin1.res").write_bytes("# caf\xe9\nnetwork n {\n}\n".encode("latin-1"))
        return "latin1.res"
    if code == "E003":
        Path("huge.res").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
        return "huge.res"
    if code == "E004":
        # Past the token limit: the parser is never reached, and the rest is not read.
        settings = "  foo 1\n" * (MAX_TOKENS // 2 + 1)
        Path("dense.res").write_text(f"network n {{\n{settings}}}\n")
        return "dense.res"
    if code == "E152":
        depth = MAX_EXTENDS_DEPTH + 2
        for i in range(depth):
            Path(f"s{i}.res").write_text(f'network s{i} extends "s{i + 1}.res" {{\n}}\n')
        Path(f"s{depth}.res").write_text(
            "network root {\n  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n"
            "  stage a: 1 x 16\n}\n"
        )
        return "s0.res"
    raise AssertionError(f"{code} has no example and no input built here")


class LimitedBackend:
    """A backend, as a plugin might be, that cannot express every network (E701; the built-in
    backends express every network that validates)."""

    name = "limited"
    suffix = ".txt"

    def emit(self, network) -> str:
        raise AssertionError("never emitted: it reports what it cannot express")

    def unsupported(self, network) -> list[str]:
        return [f"`{network.stages[0].name}`: stages of {network.stages[0].blocks} blocks"]


def _analyze_code(code: str):
    if code == "E701":
        Path("example.res").write_text(
            "network n {\n  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n"
            "  stage a: 2 x 16\n}\n"
        )
        result = analyze_file("example.res")
        result.diagnostics += backend_diagnostics(result.network, LimitedBackend())
        return result
    name = _write_example(code) if CODES[code].example else _build_input(code)
    return analyze_file(name)


# Codes no input can reach with the current core; strict, so fixing one turns this red.
UNREACHABLE: dict[str, str] = {}


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(c, marks=pytest.mark.xfail(reason=UNREACHABLE[c], strict=True))
        if c in UNREACHABLE
        else c
        for c in sorted(CODES)
    ],
)
def test_code(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _analyze_code(code)
    codes = [d.code for d in result.diagnostics]
    assert code in codes, f"the input for {code} produced {codes}"
    for d in result.diagnostics:
        assert d.help, f"{d.code} has no help line: {d.message}"
        if d.code not in ("E001",):
            assert d.span is not None, f"{d.code} is not located"
    check_golden(GOLDEN / f"{code}.txt", render_text(result.diagnostics, result.sources))


def test_every_code_has_a_golden_file():
    have = {p.stem for p in GOLDEN.glob("*.txt")}
    assert set(CODES) <= have, f"no golden file for {sorted(set(CODES) - have)}"
    assert have <= set(CODES), f"golden files for unknown codes: {sorted(have - set(CODES))}"


def test_codes_are_well_formed():
    for code, entry in CODES.items():
        assert entry.code == code
        assert code[0] == ("E" if entry.severity == "error" else "W")
        assert len(code) == 4 and code[1:].isdigit()
        assert entry.title


# --------------------------------------------------------------------------- all at once

_MANY_ERRORS = """network n {
  input 3x32x32
  classes 10
  stem cifar
  block basic
  clases 10
  stage a: 2 x 16 { block bottlenek }
  stage b: 2 x 16 / 2
  stage c: 0 x 64 / 2
  stage fc: 2 x 64
}
"""


def test_all_errors_of_a_file_are_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("many.res").write_text(_MANY_ERRORS)
    result = analyze_file("many.res")
    codes = {d.code for d in result.diagnostics}
    assert {"E101", "E102", "E601", "E107"} <= codes, codes
    lines = sorted(d.span.line for d in result.diagnostics)
    assert lines == sorted(set(lines)) or len(lines) >= 4


def test_design_rule_errors_are_all_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = CODES["E201"].example.replace(
        "stage b: 2 x 16 / 2", "stage b: 2 x 16 / 2\n  stage c: 2 x 16 / 2"
    )
    Path("rule.res").write_text(text)
    result = analyze_file("rule.res")
    assert [d.code for d in result.diagnostics].count("E201") == 2


# --------------------------------------------------------------------------- the design rule


def _net(stages: str, extra: str = "") -> str:
    return (
        "network n {\n  input 3x224x224\n  classes 10\n  stem imagenet\n"
        f"  block bottleneck\n{extra}{stages}\n}}\n"
    )


def test_keras_v2_halves_at_the_end_of_a_stage(tmp_path, monkeypatch):
    # keras' V2 nets stride the last block of a stage: the rule is checked at the boundary.
    result = analyze_file(str(Path(__file__).parents[3] / "specs/keras/resnet50v2.res"))
    assert result.ok and not result.diagnostics
    # The same stages striding their first blocks would break the rule.
    monkeypatch.chdir(tmp_path)
    text = Path(result.file).read_text().replace("strided_block last", "strided_block first")
    Path("first.res").write_text(text)
    assert "E201" in {d.code for d in analyze_file("first.res").diagnostics}


def test_waiver_shows_in_the_ir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("w.res").write_text(
        _net("  stage a: 2 x 64\n  stage b: 2 x 64 / 2 { waive halve_double }")
    )
    result = analyze_file("w.res")
    assert result.ok, render_text(result.diagnostics, result.sources)
    stage = result.network.stages[1]
    assert [w.rule for w in stage.waivers] == ["halve_double"]
    assert result.network.stages[0].waivers == ()


@pytest.mark.parametrize(
    ("stages", "code"),
    [
        ("  stage a: 2 x 64 { block basic(groups: 2) }", "E401"),
        ("  stage a: 2 x 64 { block bottleneck(expansion: 0.25) }", "E404"),
        ("  stage a: 2 x 64\n  stage b: 2 x 128 / 2 { shortcut identity }", "E301"),
        ("  stage a: 2 x 64\n  stage b: 2 x 128 / 2", None),
    ],
)
def test_rules(stages, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("r.res").write_text(_net(stages))
    result = analyze_file("r.res")
    codes = {d.code for d in result.diagnostics}
    if code is None:
        assert result.ok and not codes
    else:
        assert code in codes, codes


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("  stage a: 1000000000 x 16", "E602"),
        ("  stage a: 1 x 1000000", "E602"),
        ("  stage a: 1 x 99999999999999999999999999999999999999999", "E602"),
        ("  stage a: 1 x 16 / 0", "E601"),
        ("  stage a: 1 x 16 / 1000", "E602"),
        ("  stage a: 5000 x 16\n  stage b: 5001 x 16", "E602"),
        ("  stage a: 1 x 16 { block bottleneck(expansion: 1e308) }", "E602"),
        ("  stage a: 1 x 16 { block bottleneck(expansion: -1) }", "E601"),
        ("  stage a: 1 x 16 { block bottleneck(groups: 0) }", "E601"),
    ],
)
def test_absurd_numbers_are_refused(text, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.res").write_text(
        f"network n {{\n  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n{text}\n}}\n"
    )
    result = analyze_file("a.res")
    assert code in {d.code for d in result.diagnostics}
    assert not result.ok


_REGNET = "  block bottleneck(expansion: 1)\n  stages regnet({})"


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        # a generator whose stages grow beyond the width limit: located, not elaborated
        (
            _REGNET.format("w0: 16384, wa: 16384, wm: 2, depth: 11, group_size: 8"),
            "E602",
            "stage 2's width 32768",
        ),
        (_REGNET.format("w0: 12, wa: 36.44, wm: 2.49, depth: 13, group_size: 8"), "E161", "w0"),
        (_REGNET.format("w0: 24, wa: 36.44, wm: 1, depth: 13, group_size: 8"), "E161", "wm"),
        (_REGNET.format("w0: 24, wa: 36.44, depth: 13"), "E106", "`wm`, `group_size`"),
        (
            "  block bottleneck(expansion: 1, group_size: 8)\n"
            "  stages regnet(w0: 24, wa: 36.44, wm: 2.49, depth: 13, group_size: 8)",
            "E402",
            "the block sets `group_size`",
        ),
        # what rewrites the residual blocks' own layers refuses blocks with layers of their own
        ("  block res2net\n  conv standardized\n  stage a: 1 x 64", "E402", "`res2net`"),
        ("  block sk_basic\n  norm frn\n  stage a: 1 x 64", "E402", "`sk_basic`"),
        (
            "  block bottleneck\n  norm evonorm_s0(groups: 8)\n  attention bat(block_size: 2)\n"
            "  stage a: 1 x 64",
            "E402",
            "bilinear attention",
        ),
    ],
)
def test_generators_and_layer_rewrites_are_refused_where_they_cannot_apply(
    text, code, words, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    Path("a.res").write_text(
        f"network n {{\n  input 3x64x64\n  classes 10\n  stem cifar\n{text}\n}}\n"
    )
    result = analyze_file("a.res")
    found = [d for d in result.diagnostics if d.code == code]
    assert found and words in found[0].message, [d.message for d in result.diagnostics]
    assert found[0].span is not None and not result.ok


@pytest.mark.parametrize(
    "text", ["input 0x32x32", "input 3x99999x32", "input 3x32", "classes 0", "classes 10000000"]
)
def test_bad_input_and_classes(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = "network n {\n  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n"
    key = text.split()[0]
    body = "\n".join(line for line in body.splitlines() if not line.strip().startswith(key))
    Path("a.res").write_text(f"{body}\n  {text}\n  stage a: 1 x 16\n}}\n")
    result = analyze_file("a.res")
    assert not result.ok
    assert {d.code for d in result.diagnostics} & {"E104", "E601", "E602", "E604"}


def test_extends_cycle_of_two(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.res").write_text('network a extends "b.res" {\n}\n')
    Path("b.res").write_text('network b extends "a.res" {\n}\n')
    assert "E151" in {d.code for d in analyze_file("a.res").diagnostics}


def test_did_you_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("d.res").write_text(
        "network n {\n  input 3x32x32\n  classes 10\n  stem cifra\n  block basic\n"
        "  shortcut identiti\n  activaton relu\n  stage a: 1 x 16\n}\n"
    )
    helps = {d.help for d in analyze_file("d.res").diagnostics}
    assert {
        "did you mean `cifar`?",
        "did you mean `identity`?",
        "did you mean `activation`?",
    } <= helps


# --------------------------------------------------------------------------- renderers


def _sample():
    import tempfile

    folder = tempfile.mkdtemp()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        Path("e.res").write_text(CODES["E201"].example)
        result = analyze_file("e.res")
    finally:
        os.chdir(cwd)
    return result


def test_json_renderer():
    result = _sample()
    items = json.loads(render_json(result.diagnostics))
    assert [i["code"] for i in items] == ["E201"]
    item = items[0]
    assert item["severity"] == "error"
    assert item["span"]["file"] == "e.res"
    assert item["span"]["line"] == 7 and item["span"]["column"] >= 1
    assert item["help"] and item["notes"][0]["span"]["line"] == 6


def test_github_renderer():
    result = _sample()
    out = render_github(result.diagnostics)
    assert out.startswith("::error file=e.res,line=7,col=")
    assert "title=E201 " in out and out.endswith("\n") and out.count("\n") == 1
    # Property values escape `:` and `,`; messages escape newlines.
    d = Diagnostic("E201", "two\nlines", None, help="h")
    assert "two%0Alines" in render_github([d])


def test_text_colour_only_when_asked(monkeypatch):
    result = _sample()
    plain = render_text(result.diagnostics, result.sources)
    coloured = render_text(result.diagnostics, result.sources, color=True)
    assert "\x1b[" not in plain and "\x1b[" in coloured

    class Tty:
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert use_color(Tty()) is True
    assert use_color(object()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(Tty()) is False


def test_text_shows_location_source_caret_help():
    result = _sample()
    text = render_text(result.diagnostics, result.sources)
    lines = text.splitlines()
    assert lines[0].startswith("e.res:7:16: error[E201]: ")
    assert "7 |   stage b: 2 x 16 / 2" in text
    caret = next(line for line in lines if "^" in line)
    source = next(line for line in lines if line.startswith("7 |"))
    assert caret.index("^") == source.index("16")
    assert any(line.lstrip().startswith("= help: ") for line in lines)


def test_output_is_capped_where_it_is_collected():
    from resdsl.diagnostics.core import MAX_PER_FILE, Diagnostics

    diags = Diagnostics()
    for _ in range(MAX_PER_FILE + 10):
        diags.add("E101", "m", None, help="h")
    kept = diags.collected()
    assert len(kept) == MAX_PER_FILE + 1
    assert kept[-1].code == "E005" and kept[-1].message.startswith("10 more diagnostics")
    assert render_text(kept, {}).rstrip().splitlines()[0].startswith("error[E101]")
    assert "[E005]" in render_text(kept, {}).rstrip().split("\n\n")[-1]


# --------------------------------------------------------------------------- first-hour messages


def _check(tmp_path, files: dict[str, str], name: str):
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    return analyze_file(str(tmp_path / name))


_SMALL = "  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n"


@pytest.mark.parametrize(
    ("line", "mark", "fixed"),
    [("classes = 7", "=", "classes 7"), ("input: 1x64x64", ":", "input 1x64x64")],
)
def test_a_setting_written_as_an_assignment_says_so(tmp_path, line, mark, fixed):
    result = _check(tmp_path, {"a.res": f"network n {{\n  {line}\n}}\n"}, "a.res")
    (d,) = result.diagnostics
    assert f"settings take no `{mark}`" in d.message
    assert d.help.endswith(f"`{fixed}`")


def test_a_stage_colon_is_still_a_stage(tmp_path):
    text = "network n {\n" + _SMALL + "  stage a 2 x 16\n}\n"
    (d,) = _check(tmp_path, {"a.res": text}, "a.res").diagnostics
    assert "settings take no" not in d.message


def test_a_name_starting_with_a_digit_says_how_names_start(tmp_path):
    (d,) = _check(tmp_path, {"a.res": "network 7net {\n}\n"}, "a.res").diagnostics
    assert d.code == "E010"
    assert d.help.startswith("names start with a letter") and "`net7`" in d.help
    assert "a setting reads" not in d.help


def test_extends_without_suffix_suggests_the_file_that_exists(tmp_path):
    parent = "network p {\n" + _SMALL + "  stage a: 1 x 16\n}\n"
    child = 'network c extends "p" {\n}\n'
    (d,) = _check(tmp_path, {"p.res": parent, "c.res": child}, "c.res").diagnostics
    assert d.code == "E153" and d.help == 'write `extends "p.res"`'
    (d,) = _check(tmp_path, {"d.res": 'network d extends "q" {\n}\n'}, "d.res").diagnostics
    assert "p.res" not in d.help and "--root" in d.help


def test_an_error_in_a_parent_notes_the_child_that_extends_it(tmp_path):
    parent = "network p {\n" + _SMALL + "  stage a: 1 x 16\n  stage b: 1 x 48 / 2\n}\n"
    files = {"p1.res": parent, "c1.res": 'network c1 extends "p1.res" {\n  input 3x1x1\n}\n'}
    result = _check(tmp_path, files, "c1.res")
    by_code = {d.code: d for d in result.diagnostics}
    for d in by_code.values():
        assert d.span.file.endswith("p1.res")
        (via,) = [n for n in d.notes if n.message == "via `extends` from c1.res"]
        assert via.span.file.endswith("c1.res") and via.span.line == 1
    vanish = by_code["E501"]
    assert any(n.span.line == 2 and n.message == "input 3x1x1" for n in vanish.notes)
    assert "PyTorch and Keras would" in vanish.help
    text = render_text(result.diagnostics, result.sources)
    assert "::: " in text and "via `extends` from c1.res" in text
    # The parent checked on its own has no such note.
    alone = analyze_file(str(tmp_path / "p1.res"))
    assert all(not d.notes or "via" not in d.notes[-1].message for d in alone.diagnostics)


def test_the_design_rule_speaks_of_channels(tmp_path):
    text = "network n {\n  input 3x64x64\n  classes 10\n  block bottleneck\n"
    text += "  stage a: 1 x 64\n  stage b: 1 x 256 / 2\n}\n"
    (d,) = _check(tmp_path, {"a.res": text}, "a.res").diagnostics
    assert d.message.endswith("goes from 256 to 1024 channels")
    assert d.label.startswith("expected `x 128`, 512 channels")
    basic = "network n {\n" + _SMALL + "  stage a: 1 x 16\n  stage b: 1 x 48 / 2\n}\n"
    (d,) = _check(tmp_path, {"b.res": basic}, "b.res").diagnostics
    assert d.label.startswith("expected 32 channels")


@pytest.mark.parametrize(
    ("value", "help_text"),
    [
        ("block bottleneck(stride_on: 2x2)", "write one of `1x1` or `3x3`"),
        ("block bottleneck(stride_on: 3x1)", "did you mean `3x3`?"),
        ("shortcut B(stride_only: nothing)", "write one of `project` or `subsample`"),
    ],
)
def test_a_value_outside_a_choice_says_what_to_write(tmp_path, value, help_text):
    """Every diagnostic has a help line: a value far from every option lists them."""
    settings = _SMALL.replace("  block basic\n", "") if value.startswith("block") else _SMALL
    text = "network n {\n" + settings + f"  {value}\n"
    (d,) = _check(tmp_path, {"a.res": text + "  stage a: 1 x 16\n}\n"}, "a.res").diagnostics
    assert d.code == "E104" and d.help == help_text


# --------------------------------------------------------------------------- recovery (issue 30)

RECOVERY = """network net {
  input: 3x224x224
  classes 10
  block bottleneck(groups: 0, expansion: four)
  stage layer1 2 x 64
  stage layer2: 2 x 128 / 2 { atention se }
  stage layer2: 2 x 256 / 2
  norm = batch
  stage layer3: 2 x 256 / 2 { block basic(widht: 2) stride_on
  }
  stage layer4: 2 x 512 / 2
}
"""


def test_every_error_of_a_file_is_reported_past_syntax_errors(tmp_path, monkeypatch):
    """Each syntax error is reported and the parser goes on at the next setting or stage line;
    every argument error of a call; a duplicate stage (E105) leaves the others resolved (the
    `atention` typo); nothing is reported missing that was on a line that did not parse
    (`input`)."""
    monkeypatch.chdir(tmp_path)
    Path("recovery.res").write_text(RECOVERY)
    result = analyze_file("recovery.res")
    found = sorted((d.span.line, d.code) for d in result.diagnostics)
    assert found == [
        (2, "E010"),  # input: ...
        (4, "E104"),  # expansion: four
        (4, "E601"),  # groups: 0
        (5, "E010"),  # stage layer1 2 x 64 (no colon)
        (6, "E101"),  # atention
        (7, "E105"),  # layer2 again
        (8, "E011"),  # norm = batch
        (10, "E010"),  # `stride_on` takes a value: its stage's braces are skipped
    ], found
    assert not any(d.code == "E102" for d in result.diagnostics)  # `input` was on line 2
    assert result.network is None  # nothing is elaborated from a damaged file
    check_golden(GOLDEN.parent / "recovery.txt", render_text(result.diagnostics, result.sources))


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        # The file ends inside the network: its braces are closed to read what came before
        # (what is missing is not reported after a syntax error).
        ("network n {\n  input 3x32x32\n  clases 10\n", ["E012", "E101"]),
        # The network's own line: nothing to go on with.
        ("network 7n {\n  input 3x32x32\n}\n", ["E010"]),
        # A call spread over lines is skipped whole.
        ("network n {\n  input 3x32x32\n  classes 10\n  block bottleneck(groups: 4,\n"
         "    expansion 4)\n  stem cifarr\n  stage a: 1 x 16\n}\n", ["E010", "E102"]),
    ],
)  # fmt: skip
def test_recovery_where_little_follows(text, codes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("n.res").write_text(text)
    assert [d.code for d in analyze_file("n.res").diagnostics] == codes
