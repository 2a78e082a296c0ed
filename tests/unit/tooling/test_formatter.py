"""`resdsl fmt`: the canonical layout is idempotent, keeps every token and comment, and means
the same network."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategy import spec_texts  # tests/support is on the path (tests/conftest.py)

from resdsl.driver import analyze_text, spec_files
from resdsl.tooling.formatter import FormatError, format_text, lex

ROOT = Path(__file__).resolve().parents[3]
SPECS = spec_files([str(ROOT / "specs")])


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, _ = lex(text)
    return [(t.type, str(t)) for t in tokens]


def _comments(text: str) -> list[str]:
    _, comments = lex(text)
    return [str(c).rstrip() for c in comments]


def _without_spans(value):
    """IR as plain data with spans and source hashes removed: what a layout cannot change."""
    if isinstance(value, dict):
        return {
            k: _without_spans(v) for k, v in value.items() if k not in ("span", "spans", "source")
        }
    if isinstance(value, list | tuple):
        return [_without_spans(v) for v in value]
    return value


def _ir(text: str, file: str):
    result = analyze_text(text, file)
    assert result.ok, result.diagnostics
    return _without_spans(result.network.model_dump())


@pytest.mark.parametrize(
    "path", SPECS, ids=lambda p: Path(p).relative_to(ROOT / "specs").as_posix()
)
def test_library_spec_formats_idempotently_keeping_tokens_comments_and_meaning(path):
    text = Path(path).read_text("utf-8")
    once = format_text(text, path)
    assert format_text(once, path) == once
    assert _tokens(once) == _tokens(text)
    assert _comments(once) == _comments(text)
    assert _ir(once, path) == _ir(text, path)


MESSY = """\
# header


# second header
network   t {   # after brace
    # about input
  input 3x32x32 # trailing input
  block  basic(
     expansion: 1,   # inner
  )
  stage layer1 : 3x16{block basic # c1
  }
  stage layer2: 3 x 32/2 { waive halve_double   dilation 1 }   # t2

   # before stage 3

  stage layer3: 3 x 64 / 2 {
  # inside
  }
  classes 10
  stem cifar
  # before close
}   # after close
# eof
"""

MESSY_FORMATTED = """\
# header

# second header
network t {  # after brace
  # about input
  input   3x32x32  # trailing input
  # inner
  block   basic(expansion: 1)

  stage layer1: 3 x 16 {
    block basic  # c1
  }
  stage layer2: 3 x 32 / 2 {
    waive    halve_double
    dilation 1
  }  # t2

  # before stage 3

  stage layer3: 3 x 64 / 2 {
    # inside
  }

  classes 10
  stem    cifar
  # before close
}  # after close
# eof
"""


def test_messy_spec_gets_the_canonical_layout():
    assert format_text(MESSY) == MESSY_FORMATTED
    assert format_text(MESSY_FORMATTED) == MESSY_FORMATTED
    assert sorted(_comments(MESSY)) == sorted(_comments(MESSY_FORMATTED))
    assert _ir(MESSY, "t.res") == _ir(MESSY_FORMATTED, "t.res")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "network n{input 3x32x32 classes 10 block basic stage a:2x16}",
            "network n {\n  input   3x32x32\n  classes 10\n  block   basic\n\n"
            "  stage a: 2 x 16\n}\n",
        ),
        (
            "network n {\n\n\n  block basic( expansion : 2 , groups:1 )\n\n\n}\n",
            "network n {\n  block basic(expansion: 2, groups: 1)\n}\n",
        ),
        (
            'network n extends   "p.res"  {\n  stage a: 1 x 8 {}\n}\n',
            'network n extends "p.res" {\n  stage a: 1 x 8 {}\n}\n',
        ),
        (
            "network n {\n  stage a: 1 x 8 {\n    waive   halve_double\n  }\n}\n",
            "network n {\n  stage a: 1 x 8 { waive halve_double }\n}\n",
        ),
    ],
)
def test_canonical_spacing(source, expected):
    assert format_text(source) == expected
    assert format_text(expected) == expected


# Short lines and long ones, all with comments: aligned at the stem line, the first would
# pass 100 columns, so a new column starts at the stem (greedily, from the top).
WIDE = """\
network n {
  input    3x224x224  # a comment long enough that it would not fit beside the long line below
  classes  1000
  init     kaiming  # short
  stem     deep(first_width: 24, width: 32, channels: 64)  # the tiered deep stem
  shortcut D  # average-pool, then project
}
"""

WIDE_FORMATTED = """\
network n {
  input    3x224x224  # a comment long enough that it would not fit beside the long line below
  classes  1000
  init     kaiming    # short
  stem     deep(first_width: 24, width: 32, channels: 64)  # the tiered deep stem
  shortcut D                                               # average-pool, then project
}
"""


def test_trailing_comments_line_up_within_the_line_length():
    assert format_text(WIDE) == WIDE_FORMATTED
    assert format_text(WIDE_FORMATTED) == WIDE_FORMATTED
    # A line too long by itself keeps its comment two spaces after it, and aligns with none.
    long = "network n {\n  input   3x224x224  # " + "x" * 90 + "\n  classes 10  # c\n}\n"
    assert format_text(long) == long


def test_the_library_is_formatted():
    """The CI workflow of docs/diagnostics/index.md runs `resdsl fmt --check specs/`: the shipped
    specs pass it."""
    run = _fmt("--check", "specs/", cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.stdout == "" and "would reformat 0 of" in run.stderr


def test_syntax_error_gives_the_core_diagnostics():
    with pytest.raises(FormatError) as caught:
        format_text("network n {\n  input 3x32x32 x\n}\n", "bad.res")
    assert [d.code for d in caught.value.diagnostics] == ["E010"]


def _fmt(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "resdsl", "fmt", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_fmt_command_check_write_and_errors(tmp_path):
    messy = tmp_path / "messy.res"
    messy.write_text(MESSY)
    clean = tmp_path / "clean.res"
    clean.write_text(MESSY_FORMATTED)
    bad = tmp_path / "bad.res"
    bad_text = "network n {\n  input $\n}\n"
    bad.write_text(bad_text)

    run = _fmt("--check", "messy.res", "clean.res", cwd=tmp_path)
    assert run.returncode == 1
    assert "--- messy.res" in run.stdout and "+++ messy.res (formatted)" in run.stdout
    assert "clean.res" not in run.stdout
    assert messy.read_text() == MESSY

    run = _fmt("messy.res", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert messy.read_text() == MESSY_FORMATTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.res", "clean.res", "messy.res"]

    run = _fmt("--check", "messy.res", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout == ""

    run = _fmt("bad.res", "messy.res", cwd=tmp_path)
    assert run.returncode == 1
    assert "error[E011]" in run.stderr and "bad.res:2:9" in run.stderr
    assert "Traceback" not in run.stderr
    assert bad.read_text() == bad_text

    run = _fmt("missing.res", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr


# --------------------------------------------------------------------------- properties


@st.composite
def _mangled(draw) -> str:
    """A valid spec with comments sprinkled in and its spacing scrambled."""
    lines = []
    for number, line in enumerate(draw(spec_texts()).splitlines()):
        if draw(st.integers(0, 4)) == 0:
            lines.append(" " * draw(st.integers(0, 6)) + f"# note {number}")
        if draw(st.integers(0, 5)) == 0:
            lines.append("")
        indent = " " * draw(st.integers(0, 5))
        body = line.strip().replace(" ", " " * draw(st.integers(1, 3)))
        if draw(st.integers(0, 3)) == 0 and not body.endswith("{"):
            # Long ones too: aligning must not carry a line past 100 columns.
            body += " " * draw(st.integers(0, 4)) + f"# trailing {number}"
            body += " long" * draw(st.sampled_from([0, 0, 10, 18]))
        lines.append(indent + body)
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mangled())
def test_formatting_any_valid_spec_is_idempotent_and_keeps_comments_and_meaning(text):
    once = format_text(text, "t.res")
    assert format_text(once, "t.res") == once
    assert sorted(_comments(once)) == sorted(_comments(text))
    for line in once.splitlines():  # an aligned comment fits, or sits two spaces after its code
        assert len(line) <= 100 or re.search(r"\S  # trailing", line), line
    assert _ir(once, "t.res") == _ir(text, "t.res")
