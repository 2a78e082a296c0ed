"""The grammar and the syntax tree: what parses, what does not, and where every node points."""

from __future__ import annotations

from pathlib import Path

import pytest

from resdsl.diagnostics.core import Diagnostics
from resdsl.ir import Call, Dims, Name, Number, String
from resdsl.language.parser import lark_parser, parse

SPECS = sorted(Path(__file__).parents[3].joinpath("specs").rglob("*.res"))


def _parse(text: str):
    diags = Diagnostics()
    tree = parse(text, "t.res", diags)
    return tree, diags


def _slice(text: str, span) -> str:
    return text[span.start : span.end]


def test_parser_is_built_once():
    assert lark_parser() is lark_parser()
    assert lark_parser().options.parser == "lalr"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_library_spec_parses(path):
    tree, diags = _parse(path.read_text())
    assert tree is not None and not diags.items


TEXT = """# comment
network demo extends "base.res" {
  input 3x224x224   # trailing comment
  classes 1000
  block bottleneck(expansion: 4, stride_on: 3x3,)
  norm batch(eps: 1.001e-5)
  stage layer1: 3 x 64
  stage layer2: 4x128 / 2 { waive halve_double  dilation 2 }
}
"""


def test_tree_shape_and_spans():
    tree, diags = _parse(TEXT)
    assert not diags.items
    net = tree.network
    assert net.name.text == "demo" and _slice(TEXT, net.name.span) == "demo"
    assert isinstance(net.extends, String) and net.extends.text == "base.res"
    assert _slice(TEXT, net.extends.span) == '"base.res"'
    settings = {s.key.text: s for s in net.settings}
    assert list(settings) == ["input", "classes", "block", "norm"]
    for setting in net.settings:
        # The span of a setting starts at its key and is exactly the text of that line's value.
        line = TEXT.splitlines()[setting.span.line - 1]
        assert line[setting.span.column - 1 :].startswith(setting.key.text)
        assert _slice(TEXT, setting.key.span) == setting.key.text
    dims = settings["input"].value
    assert isinstance(dims, Dims) and dims.parts == (3, 224, 224)
    assert (dims.span.line, dims.span.column) == (3, 9)
    number = settings["classes"].value
    assert isinstance(number, Number) and number.value == 1000 and number.is_int
    call = settings["block"].value
    assert isinstance(call, Call) and call.name.text == "bottleneck"
    assert [a.name.text for a in call.args] == ["expansion", "stride_on"]
    assert _slice(TEXT, call.span) == "bottleneck(expansion: 4, stride_on: 3x3,)"
    assert _slice(TEXT, call.args[1].value.span) == "3x3"
    eps = settings["norm"].value.args[0].value
    assert eps.value == pytest.approx(1.001e-5) and not eps.is_int

    first, second = net.stages
    assert first.name.text == "layer1" and first.stride is None and first.settings == ()
    assert (first.blocks.value, first.width.value) == (3, 64)
    assert _slice(TEXT, first.blocks.span) == "3" and _slice(TEXT, first.width.span) == "64"
    # `4x128` is one DIMS token split into two numbers, each with its own span.
    assert (second.blocks.value, second.width.value, second.stride.value) == (4, 128, 2)
    assert _slice(TEXT, second.blocks.span) == "4"
    assert _slice(TEXT, second.width.span) == "128"
    assert second.width.span.column == second.blocks.span.column + 2
    assert [s.key.text for s in second.settings] == ["waive", "dilation"]
    assert isinstance(second.settings[0].value, Name)
    assert _slice(TEXT, second.span).startswith("stage layer2")


@pytest.mark.parametrize(
    "text",
    [
        "network n {}",
        "network n{stage a:1x16}",
        "network n {\n stage a : 1 x 16 / 2 {}\n}",
        "network n {\r\n  classes 10\r\n}\r\n",
        "\ufeffnetwork n { }",
        'network n { a b(c: 1, d: e, f: 1x2, g: "h") }',
        "network n { a -1.5e3 b +.5 }",
    ],
)
def test_parses(text):
    tree, diags = _parse(text.lstrip("\ufeff"))
    assert tree is not None and not diags.items


@pytest.mark.parametrize(
    ("text", "code", "line", "column", "token"),
    [
        ("netwrk n {}", "E010", 1, 1, "netwrk"),
        ("network {}", "E010", 1, 9, "{"),
        ("network n {\n  stage a 1 x 16\n}", "E010", 2, 11, "1"),
        ("network n {\n  block basic(groups 2)\n}", "E010", 2, 22, "2"),
        ("network n {\n  block basic(g: f(x: 1))\n}", "E010", 2, 19, "("),
        ("network n {\n  input @\n}", "E011", 2, 9, "@"),
        ('network n {\n  s "a\n"\n}', "E011", 2, 5, '"'),
        ("network n {\n  input 3\n", "E012", 2, 10, None),
        ("", "E013", 1, 1, None),
        ("  \n# only\n\n", "E013", 1, 1, None),
        ("network n {} network m {}", "E010", 1, 14, "network"),
    ],
)
def test_syntax_errors_are_located(text, code, line, column, token):
    _, diags = _parse(text)  # the tree, where the parser recovers, lacks the statement
    assert [d.code for d in diags] == [code]
    d = diags.items[0]
    assert (d.span.line, d.span.column) == (line, column), d
    if token is not None:
        assert text[d.span.start : d.span.end] == token
    assert d.help


def test_syntax_error_names_expected_tokens():
    _, diags = _parse("network n {\n  stage a 1 x 16\n}")
    assert diags.items[0].label == "expected `:`"
    _, diags = _parse("network n {\n  input 3x32x32\n")
    assert diags.items[0].label == "expected `stage`, `}` or a name"


def test_compact_size_with_three_parts_is_an_error():
    _, diags = _parse("network n {\n  stage a: 1x16x3\n}")
    assert [d.code for d in diags] == ["E010"]


def test_huge_integers_stay_finite():
    tree, diags = _parse("network n { input 3x" + "9" * 5000 + "x3 }")
    assert not diags.items
    assert tree.network.settings[0].value.parts[1] == 10**18


def test_prebuilt_tables_match_the_grammar():
    """grammars/resdsl.tables is current (`make grammar` regenerates it): the parser loads from
    it rather than rebuilding, and parses as a freshly built one does."""
    from lark import Lark

    from resdsl.language.parser import _LARK_OPTIONS, grammar_text, lark_parser

    parser = lark_parser()
    assert parser.source_path == "<deserialized>", "stale tables: run `make grammar`"
    fresh = Lark(grammar_text(), **_LARK_OPTIONS)
    for spec in sorted(Path("specs").rglob("*.res")):
        text = spec.read_text()
        assert parser.parse(text) == fresh.parse(text)
