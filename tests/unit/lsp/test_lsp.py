"""The language server end to end: a real LSP client (pytest-lsp) drives `python -m resdsl lsp`
over stdio. One server serves the module's tests (each test opens its own documents).

No test waits on the wall clock: a request sent after a notification is answered after it, so
awaiting the request is enough to see what the notification caused (its diagnostics). The
VS Code grammar is checked against the compiler's tables here, and with vscode-tmgrammar-test
where node and the extension's npm packages (`make vscode`) are present.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp", reason="needs pytest-lsp (the dev extra)")
pytest.importorskip("pygls", reason="needs pygls (the lsp extra)")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

import resdsl  # noqa: E402
from resdsl.blocks import RECIPES  # noqa: E402
from resdsl.driver import analyze_text  # noqa: E402
from resdsl.language import schema  # noqa: E402
from resdsl.lsp.server import LineIndex, Specs, kinds_of, uri_of  # noqa: E402
from resdsl.tooling.docs import code_url  # noqa: E402
from resdsl.tooling.formatter import format_text  # noqa: E402
from resdsl.tooling.report import rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SPECS = ROOT / "specs"
VSCODE = ROOT / "editors" / "vscode"

# The async tests share the module's event loop, where the client fixture runs.
on_server = pytest.mark.asyncio(loop_scope="module")

CAPABILITIES = lsp.ClientCapabilities(
    general=lsp.GeneralClientCapabilities(position_encodings=[lsp.PositionEncodingKind.Utf16]),
    text_document=lsp.TextDocumentClientCapabilities(
        hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.Markdown]),
        completion=lsp.CompletionClientCapabilities(
            completion_item=lsp.ClientCompletionItemOptions(
                documentation_format=[lsp.MarkupKind.Markdown, lsp.MarkupKind.PlainText]
            )
        ),
        publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(related_information=True),
        inlay_hint=lsp.InlayHintClientCapabilities(),
        document_symbol=lsp.DocumentSymbolClientCapabilities(
            hierarchical_document_symbol_support=True
        ),
    ),
)


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "resdsl", "lsp", "--stdio"])


@pytest_lsp.fixture(scope="module", config=SERVER)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=CAPABILITIES, root_uri=uri_of(str(ROOT)))
    )
    yield
    await lsp_client.shutdown_session()


# --------------------------------------------------------------------------- helpers


async def settle(client: LanguageClient, uri: str) -> None:
    """Wait until the server has handled everything sent before (see the module's doc)."""
    await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )


async def open_doc(client: LanguageClient, uri: str, text: str) -> list[lsp.Diagnostic]:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="res", version=1, text=text)
        )
    )
    await settle(client, uri)
    return list(client.diagnostics[uri])


async def change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(
        lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )


def doc_id(uri: str) -> lsp.TextDocumentIdentifier:
    return lsp.TextDocumentIdentifier(uri=uri)


async def hover(client: LanguageClient, uri: str, line: int, character: int) -> str | None:
    found = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=lsp.Position(line, character))
    )
    return found.contents.value if found else None


async def inlay_hints(client: LanguageClient, uri: str, lines: int = 1000) -> list[lsp.InlayHint]:
    whole = lsp.Range(lsp.Position(0, 0), lsp.Position(lines, 0))
    found = await client.text_document_inlay_hint_async(
        lsp.InlayHintParams(text_document=doc_id(uri), range=whole)
    )
    return list(found or [])


async def complete(client: LanguageClient, uri: str, line: int, character: int) -> list[str]:
    found = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc_id(uri), position=lsp.Position(line, character))
    )
    items = found.items if isinstance(found, lsp.CompletionList) else found or []
    return [item.label for item in items]


def apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """`edits` applied to `text` (UTF-16 positions), last first."""
    index = LineIndex(text)
    spans = sorted(
        ((index.offset(e.range.start), index.offset(e.range.end), e.new_text) for e in edits),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


BROKEN = """\
network n {
  input 3x32x32
  classes 10
  stem cifar
  block basc
  activaton silu
  stage a: 1 x 16
  stage b: 1 x 32 / 2 { block basic(expansoin: 1) }
}
"""


# --------------------------------------------------------------------------- diagnostics


@on_server
async def test_diagnostics_match_resdsl_check(client: LanguageClient, tmp_path):
    path = tmp_path / "broken.res"
    uri = uri_of(str(path))
    got = await open_doc(client, uri, BROKEN)
    expected = analyze_text(BROKEN, str(path)).diagnostics
    assert [d.code for d in got] == ["E102", "E101", "E103"]
    assert len(got) == len(expected)
    for mine, theirs in zip(got, sorted(expected, key=lambda d: d.span.start), strict=True):
        assert mine.code == theirs.code and mine.source == "resdsl"
        assert mine.message == f"{theirs.message}\nhelp: {theirs.help}"
        assert mine.code_description.href == code_url(theirs.code)  # the code's page
        assert mine.severity == lsp.DiagnosticSeverity.Error
        span = theirs.span  # 1-based, end exclusive; LSP is 0-based
        assert (mine.range.start.line, mine.range.start.character) == (
            span.line - 1,
            span.column - 1,
        )
        assert (mine.range.end.line, mine.range.end.character) == (
            span.end_line - 1,
            span.end_column - 1,
        )

    # A syntax error still gets its diagnostic; fixing it clears them.
    await change(client, uri, BROKEN.replace("activaton silu", "activaton $"), 2)
    await settle(client, uri)
    assert [d.code for d in client.diagnostics[uri]] == ["E102", "E011", "E103"]  # all
    fixed = BROKEN.replace("basc", "basic").replace("  activaton silu\n", "")
    await change(client, uri, fixed.replace("expansoin", "expansion"), 3)
    await settle(client, uri)
    assert list(client.diagnostics[uri]) == []
    close(client, uri)
    await settle(client, uri)
    assert list(client.diagnostics[uri]) == []


@on_server
async def test_errors_in_a_parent_are_shown_at_extends(client: LanguageClient, tmp_path):
    parent = tmp_path / "parent.res"
    parent.write_text(BROKEN.replace("  activaton silu\n", "").replace("stem cifar", "stem cifra"))
    child = 'network child extends "parent.res" {\n  classes 100\n}\n'
    uri = uri_of(str(tmp_path / "child.res"))
    got = await open_doc(client, uri, child)
    assert [d.code for d in got] == ["E102", "E102", "E103"]
    d = got[0]
    assert d.range.start.line == 0 and d.range.start.character == child.index('"parent.res"')
    assert d.message.startswith("parent.res:4:8: unknown stem preset `cifra`")
    (related,) = d.related_information
    assert related.location.uri == uri_of(str(parent))
    assert related.location.range.start == lsp.Position(3, 7)
    # No quick fix here: the typo is in the parent, not under this range.
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(doc_id(uri), d.range, lsp.CodeActionContext(diagnostics=[d]))
    )
    assert not actions

    # The parent opened and fixed: its own diagnostics are its own; saving it refreshes the child.
    parent_uri = uri_of(str(parent))
    assert len(await open_doc(client, parent_uri, parent.read_text())) == 3
    fixed = parent.read_text().replace("cifra", "cifar").replace("basc", "basic")
    parent.write_text(fixed.replace("expansoin", "expansion"))
    await change(client, parent_uri, parent.read_text(), 2)
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(doc_id(parent_uri)))
    await settle(client, parent_uri)
    assert list(client.diagnostics[parent_uri]) == list(client.diagnostics[uri]) == []
    close(client, parent_uri)
    close(client, uri)


@on_server
async def test_completion_of_parent_files(client: LanguageClient, tmp_path):
    for name in ("base.res", "other.res", "notes.txt"):
        (tmp_path / name).write_text("")
    uri = uri_of(str(tmp_path / "child.res"))
    text = 'network child extends ""\n'
    await open_doc(client, uri, text)
    found = await client.text_document_completion_async(
        lsp.CompletionParams(doc_id(uri), lsp.Position(0, text.index('""') + 1))
    )
    assert [item.label for item in found.items] == ["base.res", "other.res"]
    assert apply(text, [found.items[0].text_edit]) == 'network child extends "base.res"\n'
    close(client, uri)


@on_server
async def test_positions_count_utf16_code_units(client: LanguageClient, tmp_path):
    text = 'network n extends "\U0001f600.res" { $ }\n'
    uri = uri_of(str(tmp_path / "emoji.res"))
    (d,) = await open_doc(client, uri, text)
    assert d.code == "E011"
    assert d.range.start.character == text.index("$") + 1  # the emoji is two UTF-16 units
    close(client, uri)


# --------------------------------------------------------------------------- hover, inlay hints


def _resnet50_rows():
    from resdsl import load

    network = load(str(SPECS / "resnet50.res"))
    return network, {r.name: r for r in rows(network, blocks=True)}


@on_server
async def test_hover_and_inlay_hints_on_resnet50(client: LanguageClient):
    path = SPECS / "resnet50.res"
    uri = uri_of(str(path))
    text = path.read_text()
    lines = text.splitlines()
    assert await open_doc(client, uri, text) == []
    network, table = _resnet50_rows()

    line = next(i for i, s in enumerate(lines) if "stage layer2" in s)
    shown = await hover(client, uri, line, lines[line].index("layer2"))
    stage = network.stages[1]
    assert f"| output | {stage.out_shape} |" in shown
    assert f"| blocks | {stage.blocks} |" in shown
    assert f"{stage.params:,}" in shown and f"{stage.macs:,}" in shown
    assert f"| receptive field | {table['layer2'].receptive_field} px |" in shown
    assert "`layer2.0`" in shown

    # On a setting and on a kind: the language reference's documentation.
    line = next(i for i, s in enumerate(lines) if s.strip().startswith("block"))
    shown = await hover(client, uri, line, lines[line].index("block") + 1)
    assert "**`block`**" in shown and "`preact_bottleneck`" in shown
    shown = await hover(client, uri, line, lines[line].index("bottleneck") + 2)
    assert "**`bottleneck`**" in shown and "`stride_on`" in shown
    assert RECIPES["bottleneck"].summary in shown  # the block registry's words
    shown = await hover(client, uri, line, lines[line].index("expansion"))
    assert "**`expansion`**" in shown and "positive number up to 64" in shown
    assert "The output width over the stage's width." in shown

    hints = await inlay_hints(client, uri)
    assert [h.label for h in hints] == [f"→ {s.out_shape}" for s in network.stages]
    for hint, s in zip(hints, network.stages, strict=True):
        line = next(i for i, t in enumerate(lines) if f"stage {s.name}:" in t)
        assert hint.position == lsp.Position(line, len(lines[line].rstrip()))

    # While the text does not parse: its diagnostics, and hover and hints from the last
    # network that elaborated.
    broken = text.replace("stage layer3: 6 x 256 / 2", "stage layer3: 6 x 256 / 2 {")
    await change(client, uri, broken, 2)
    line = next(i for i, s in enumerate(lines) if "stage layer4" in s)
    shown = await hover(client, uri, line, lines[line].index("layer4"))
    assert [d.code for d in client.diagnostics[uri]] == ["E010"]
    assert f"| output | {network.stages[3].out_shape} |" in shown and "last version" in shown
    assert len(await inlay_hints(client, uri)) == 4
    close(client, uri)


@on_server
async def test_inlay_hints_show_the_stages_a_generator_writes(client: LanguageClient):
    """`stages regnet(...)`: the stages it expands to, after its line, with each stage's group
    size and output in the tooltip."""
    path = SPECS / "regnet" / "regnetx_002.res"
    uri = uri_of(str(path))
    text = path.read_text()
    lines = text.splitlines()
    assert await open_doc(client, uri, text) == []
    network = resdsl.load(path)
    hints = await inlay_hints(client, uri)
    expected = ", ".join(f"{s.blocks} x {s.width}" for s in network.stages)
    assert [h.label for h in hints] == [f"→ {expected}"]
    line = next(i for i, t in enumerate(lines) if t.strip().startswith("stages"))
    assert hints[0].position == lsp.Position(line, len(lines[line].rstrip()))
    assert f"groups of {network.stages[0].block.group_size}" in hints[0].tooltip
    close(client, uri)


PLAIN_CAPABILITIES = lsp.ClientCapabilities(
    text_document=lsp.TextDocumentClientCapabilities(
        hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.PlainText]),
        completion=lsp.CompletionClientCapabilities(
            completion_item=lsp.ClientCompletionItemOptions(
                documentation_format=[lsp.MarkupKind.PlainText]
            )
        ),
    ),
)


@pytest_lsp.fixture(scope="module", config=SERVER)
async def plain_client(lsp_client: LanguageClient):
    """A client that takes no Markdown."""
    await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=PLAIN_CAPABILITIES, root_uri=uri_of(str(ROOT)))
    )
    yield
    await lsp_client.shutdown_session()


@on_server
async def test_a_client_without_markdown_gets_plain_text(plain_client: LanguageClient):
    """Hover and completion documentation without Markdown's emphasis, escapes and tables."""
    client = plain_client
    path = SPECS / "resnet50.res"
    uri = uri_of(str(path))
    text = path.read_text()
    lines = text.splitlines()
    await open_doc(client, uri, text)
    network, table = _resnet50_rows()
    line = next(i for i, s in enumerate(lines) if "stage layer2" in s)
    found = await client.text_document_hover_async(
        lsp.HoverParams(doc_id(uri), lsp.Position(line, lines[line].index("layer2")))
    )
    assert found.contents.kind == lsp.MarkupKind.PlainText
    shown = found.contents.value.splitlines()
    assert shown[0].startswith("stage `layer2`: ")
    assert f"output           {network.stages[1].out_shape}" in shown
    assert f"receptive field  {table['layer2'].receptive_field} px" in shown
    line = next(i for i, s in enumerate(lines) if s.strip().startswith("block"))
    shown = await hover(client, uri, line, lines[line].index("block") + 1)
    assert shown.startswith("`block` (setting, network and stage)\n")
    assert "`basic` | `bottleneck`" in shown
    everything = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc_id(uri), position=lsp.Position(line, 2))
    )
    docs = [i.documentation for i in everything.items if i.documentation]
    assert docs and all(d.kind == lsp.MarkupKind.PlainText for d in docs)
    for value in [*(d.value for d in docs), shown]:
        assert "**" not in value and "\\|" not in value and "| --- |" not in value, value
    close(client, uri)


# --------------------------------------------------------------------------- completion


@on_server
async def test_completion(client: LanguageClient, tmp_path):
    uri = uri_of(str(tmp_path / "typing.res"))
    text = "network n {\n  input 3x32x32\n  block \n}\n"
    await open_doc(client, uri, text)
    assert await complete(client, uri, 2, len("  block ")) == list(schema.BLOCKS)

    text = "network n {\n  input 3x32x32\n  block bottleneck(\n}\n"
    await change(client, uri, text, 2)
    got = await complete(client, uri, 2, len("  block bottleneck("))
    assert got == list(schema.BLOCKS["bottleneck"].readers)
    text = "network n {\n  block bottleneck(expansion: 2, stride_on: \n}\n"
    await change(client, uri, text, 3)
    assert await complete(client, uri, 1, len(text.splitlines()[1])) == ["1x1", "3x3"]
    text = "network n {\n  shortcut \n  stage a: 1 x 16 {\n    \n  }\n}\n"
    await change(client, uri, text, 4)
    assert await complete(client, uri, 1, len("  shortcut ")) == list(schema.SHORTCUTS)
    in_stage = await complete(client, uri, 3, 4)
    assert in_stage == [k for k, f in schema.FIELDS.items() if f.stage]
    at_top = await complete(client, uri, 1, 2)
    assert "classes" in at_top and "stage" in at_top and "dilation" not in at_top
    close(client, uri)


@on_server
async def test_completion_of_parent_stages(client: LanguageClient):
    path = SPECS / "resnet101.res"
    uri = uri_of(str(path))
    text = path.read_text().replace("}\n", "  stage \n}\n")
    await open_doc(client, uri, text)
    line = text.splitlines().index("  stage ")
    assert await complete(client, uri, line, len("  stage ")) == [
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    close(client, uri)


# --------------------------------------------------------------------------- definition


@on_server
async def test_definition_across_extends(client: LanguageClient):
    child, parent = SPECS / "resnet101.res", SPECS / "resnet50.res"
    uri = uri_of(str(child))
    text = child.read_text()
    lines, parent_lines = text.splitlines(), parent.read_text().splitlines()
    await open_doc(client, uri, text)

    async def definition(line: int, character: int):
        return await client.text_document_definition_async(
            lsp.DefinitionParams(doc_id(uri), lsp.Position(line, character))
        )

    line = next(i for i, s in enumerate(lines) if "extends" in s)
    (found,) = await definition(line, lines[line].index('"resnet50.res"') + 3)
    assert found.uri == uri_of(str(parent))
    target = next(i for i, s in enumerate(parent_lines) if s.startswith("network"))
    assert found.range.start == lsp.Position(target, parent_lines[target].index("resnet50"))

    line = next(i for i, s in enumerate(lines) if "stage layer3" in s)
    (found,) = await definition(line, lines[line].index("layer3") + 2)
    target = next(i for i, s in enumerate(parent_lines) if "stage layer3" in s)
    assert found.uri == uri_of(str(parent))
    assert found.range.start == lsp.Position(target, parent_lines[target].index("layer3"))
    assert found.range.end.character == found.range.start.character + len("layer3")
    close(client, uri)


# --------------------------------------------------------------------------- formatting, fixes


@on_server
async def test_formatting(client: LanguageClient, tmp_path):
    uri = uri_of(str(tmp_path / "messy.res"))
    messy = "network n{\ninput 3x32x32 # size\n   classes 10\nstem cifar\n block basic\n"
    messy += "stage a:2x16\n stage b : 2 x 32/2{block bottleneck( expansion:2 )}\n}\n"
    await open_doc(client, uri, messy)
    options = lsp.FormattingOptions(tab_size=2, insert_spaces=True)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(doc_id(uri), options)
    )
    assert apply(messy, edits) == format_text(messy)
    await change(client, uri, format_text(messy), 2)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(doc_id(uri), options)
    )
    assert list(edits) == []
    await change(client, uri, messy + "}", 3)  # does not parse: left alone, as by `resdsl fmt`
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(doc_id(uri), options)
    )
    assert not edits
    close(client, uri)


@on_server
async def test_code_actions_apply_did_you_mean(client: LanguageClient, tmp_path):
    uri = uri_of(str(tmp_path / "typos.res"))
    text = BROKEN
    diagnostics = await open_doc(client, uri, text)
    assert len(diagnostics) == 3
    for version in range(2, 5):
        target = next(d for d in diagnostics if "did you mean" in d.message)
        actions = await client.text_document_code_action_async(
            lsp.CodeActionParams(
                doc_id(uri), target.range, lsp.CodeActionContext(diagnostics=[target])
            )
        )
        (action,) = actions
        assert action.kind == lsp.CodeActionKind.QuickFix and action.is_preferred
        text = apply(text, action.edit.changes[uri])
        await change(client, uri, text, version)
        await settle(client, uri)
        diagnostics = list(client.diagnostics[uri])
    assert diagnostics == []
    assert "block basic\n" in text and "activation silu" in text and "expansion: 1" in text
    close(client, uri)


# --------------------------------------------------------------------------- the outline


@on_server
async def test_document_symbols(client: LanguageClient):
    path = SPECS / "resnet50.res"
    uri = uri_of(str(path))
    await open_doc(client, uri, path.read_text())
    (network,) = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(doc_id(uri))
    )
    assert network.name == "resnet50" and network.kind == lsp.SymbolKind.Class
    assert [s.name for s in network.children] == ["layer1", "layer2", "layer3", "layer4"]
    assert network.children[1].detail == "4 x 128 / 2 → 512x28x28"
    close(client, uri)


# --------------------------------------------------------------------------- robustness

PIECES = [
    *schema.FIELDS,
    *schema.BLOCKS,
    *schema.SHORTCUTS,
    "stage",
    "network",
    "extends",
    '"resnet50.res"',
    '"',
    "{",
    "}",
    "(",
    ")",
    ":",
    ",",
    "/",
    " x ",
    "3x224x224",
    "2",
    "0.5",
    "-1",
    "1e999",
    "#",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "é",
    "\U0001f600",
    "$",
]


@on_server
async def test_two_hundred_random_edits(client: LanguageClient):
    """A seeded stream of edits, each followed by hover, inlay hints and completion at random
    places: the server answers all of them, and ends with `resdsl check`'s diagnostics."""
    rng = random.Random(16)
    path = SPECS / "resnet50.res"
    uri = uri_of(str(path))
    text = path.read_text()
    await open_doc(client, uri, text)
    for version in range(2, 202):
        start = rng.randrange(len(text) + 1)
        end = min(len(text), start + rng.choice([0, 0, 1, 2, 5, 20]))
        insert = "".join(rng.choice(PIECES) for _ in range(rng.choice([0, 1, 1, 2, 3])))
        text = text[:start] + insert + text[end:]
        await change(client, uri, text, version)
        lines = text.splitlines() or [""]
        line = rng.randrange(len(lines) + 1)
        character = rng.randrange(len(lines[min(line, len(lines) - 1)]) + 3)
        await hover(client, uri, line, character)
        await inlay_hints(client, uri)
        await complete(client, uri, line, character)
        if version % 50 == 0:
            await client.text_document_formatting_async(
                lsp.DocumentFormattingParams(
                    doc_id(uri), lsp.FormattingOptions(tab_size=2, insert_spaces=True)
                )
            )
            await client.text_document_definition_async(
                lsp.DefinitionParams(doc_id(uri), lsp.Position(line, character))
            )
    await settle(client, uri)
    assert client.error is None
    assert not client.messages  # pygls shows a message for an exception in a notification
    assert not [m for m in client.log_messages if m.type == lsp.MessageType.Error]
    expected = analyze_text(text, str(path)).diagnostics
    assert sorted(d.code for d in client.diagnostics[uri]) == sorted(d.code for d in expected)
    close(client, uri)


# --------------------------------------------------------------------------- in process


def test_line_index_round_trips_in_every_encoding():
    text = "a\U0001f600b\r\né\rc\n"
    for encoding, width in (("utf-16", 2), ("utf-8", 4), ("utf-32", 1)):
        index = LineIndex(text, encoding)
        assert index.position(2) == lsp.Position(0, 1 + width)
        assert index.position(4) == lsp.Position(0, 2 + width)  # inside `\r\n`: the line's end
        assert index.position(6) == lsp.Position(1, 1 if encoding != "utf-8" else 2)
        assert index.position(8) == lsp.Position(2, 1)
        for offset in (0, 1, 2, 3, 5, 6, 7, 8, 9, len(text)):
            assert index.offset(index.position(offset)) == offset


def test_documentation_covers_every_setting_and_kind():
    specs = Specs()
    uri = "untitled:doc"
    for key in schema.FIELDS:
        specs.update(uri, f"network n {{\n  {key} x\n}}\n")
        shown = specs.hover(uri, lsp.Position(1, 3))
        assert shown is not None and f"**`{key}`**" in shown.contents.value
        found = kinds_of(key)
        for kind in found[1] if found else ():
            specs.update(uri, f"network n {{\n  {key} {kind}()\n}}\n")
            shown = specs.hover(uri, lsp.Position(1, len(key) + 3))
            assert shown is not None and f"**`{kind}`**" in shown.contents.value


def test_check_does_not_import_the_language_server():
    script = (
        "import sys\nfrom click.testing import CliRunner\nfrom resdsl.cli.main import main\n"
        f"code = CliRunner().invoke(main, ['check', {str(SPECS / 'resnet18.res')!r}]).exit_code\n"
        "print(code, sorted(m for m in ('pygls', 'lsprotocol', 'resdsl.lsp.server')"
        " if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["0", "[]"]


def test_the_editor_picture_is_current():
    """docs/editor.svg is what docs/editor_svg.py draws from the server's answers today."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("editor_svg", ROOT / "docs" / "editor_svg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    diagnostics, hints, actions = module.analysis()
    assert [d.code for d in diagnostics] == ["E101"] and len(hints) == 4 and len(actions) == 1
    current = (ROOT / "docs" / "editor.svg").read_text()
    assert module.render() == current, "run `.venv/bin/python docs/editor_svg.py`"


# --------------------------------------------------------------------------- the VS Code grammar


def _grammar() -> dict:
    return json.loads((VSCODE / "syntaxes" / "res.tmLanguage.json").read_text())


def _words(pattern: str) -> set[str]:
    inner = pattern.split("(?:", 1)[1].split(")", 1)[0]
    return set(inner.split("|"))


def test_grammar_knows_every_setting_and_kind():
    """The grammar's word lists are the Pygments lexer's, which test_tooling keeps equal to the
    compiler's tables."""
    from resdsl.tooling.lexer import CONSTANTS, KINDS, SETTINGS

    repository = _grammar()["repository"]
    assert _words(repository["setting"]["match"]) == set(SETTINGS) == set(schema.FIELDS)
    assert _words(repository["kind"]["match"]) == set(KINDS)
    assert _words(repository["constant"]["match"]) == set(CONSTANTS)
    assert repository["policy"]["match"] == "\\b[A-D]\\b"
    assert set(schema.SHORTCUTS) - {"identity", "none"} == set("ABCD")
    assert {"identity", "none"} <= set(KINDS)


def test_vscode_grammar_with_vscode_tmgrammar_test(tmp_path):
    """Every spec of the library against the grammar, with assertions made from the Pygments
    lexer's tokens (editors/vscode/test/library.py), and the hand-written syntax tests."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the VS Code grammar test needs it")
    tool = VSCODE / "node_modules" / ".bin" / "vscode-tmgrammar-test"
    if not tool.exists():
        pytest.skip("run `make vscode` once to install the grammar test's npm packages")
    subprocess.run(
        [sys.executable, str(VSCODE / "test" / "library.py"), str(SPECS), str(tmp_path)], check=True
    )
    run = subprocess.run(
        [
            str(tool),
            "-g",
            str(VSCODE / "syntaxes" / "res.tmLanguage.json"),
            f"{tmp_path}/**/*.res",
            str(VSCODE / "test" / "*.res"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


# --------------------------------------------------------------------------- issue 23


def test_a_document_that_is_not_a_file_has_no_folder_for_extends(monkeypatch):
    # Run where a parent of that name lies: the server's working folder must not be used.
    monkeypatch.chdir(SPECS)
    specs = Specs()
    uri = "untitled:Untitled-1"
    text = (SPECS / "resnet101.res").read_text()
    doc = specs.update(uri, text)
    start = text.index('"resnet50.res"')
    where = doc.index.range(start, start + len('"resnet50.res"'))
    assert [(d.code, d.range) for d in doc.diagnostics] == [("E153", where)]
    assert "`untitled:` document has no folder" in doc.diagnostics[0].message
    assert doc.result.sources.keys() == {uri}  # nothing else was read
    assert specs.hover(uri, where.start) is None  # no network, nor a parent's, to show
    assert specs.definition(uri, where.start) is None
    # A file beside its parent still extends it.
    saved = specs.update(uri_of(str(SPECS / "resnet101.res")), text)
    assert saved.diagnostics == [] and saved.network is not None


def _frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _answers(stdout: bytes) -> list[dict]:
    """The JSON-RPC messages in what the server wrote."""
    found, rest = [], stdout
    while rest:
        header, _, rest = rest.partition(b"\r\n\r\n")
        length = int(
            next(h for h in header.split(b"\r\n") if h.startswith(b"Content-Length")).split(b":")[1]
        )
        found.append(json.loads(rest[:length]))
        rest = rest[length:]
    return found


def _raw_session(data: bytes) -> tuple[list[dict], str, int]:
    """`data` written to `resdsl lsp --stdio` as it is, then its input closed: (the messages it
    wrote, its standard error, its exit status)."""
    done = subprocess.run(
        [sys.executable, "-m", "resdsl", "lsp", "--stdio"], input=data, capture_output=True
    )
    return _answers(done.stdout), done.stderr.decode(errors="replace"), done.returncode


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}


def test_a_frame_too_large_to_read_is_answered_with_an_error():
    small = _frame(INITIALIZE).partition(b"\r\n\r\n")[2]
    answers, stderr, status = _raw_session(b"Content-Length: 99999999999\r\n\r\n" + small)
    assert "MemoryError" not in stderr and status == 0, stderr
    assert [(a["id"], a["error"]["code"]) for a in answers] == [(None, -32600)]
    assert "99,999,999,999 bytes" in answers[0]["error"]["message"]


def test_the_server_keeps_step_after_a_frame_over_its_limit():
    from resdsl.lsp.frames import MAX_FRAME

    huge = {"jsonrpc": "2.0", "method": "x", "params": {"text": "x" * MAX_FRAME}}
    header = b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n"  # a number Python will not parse
    answers, stderr, status = _raw_session(_frame(huge) + header + _frame(INITIALIZE))
    assert status == 0, stderr
    assert [(a["id"], "error" in a) for a in answers] == [(None, True), (1, False)]
    assert answers[1]["result"]["serverInfo"]["name"] == "resdsl"
