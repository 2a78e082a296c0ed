"""How fast the language server answers a change to a resnet152-sized spec (target < 20 ms).

In process, interleaved round by round, medians over the rounds, on the same edits:

* reference: `analyze_text` alone, the compiler's whole analysis (resnet152 extends
  resnet50, so it reads and parses the parent too);
* `Specs.update`: the server's per-change work, that analysis plus converting the diagnostics
  to LSP (positions in UTF-16);
* the same plus what goes out on the wire: the publishDiagnostics notification serialised to
  JSON, and the inlay hints an editor asks for after each change, computed and serialised.

Then over stdio, the whole way: a `python -m resdsl lsp` process driven by pygls' client, from
sending didChange to receiving its publishDiagnostics (median over the rounds; it includes the
client's own JSON handling and the pipe, and the time of the machine's other jobs).

    .venv/bin/python benchmarks/bench_lsp.py [--rounds 200] [--no-stdio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.protocol import default_converter

from resdsl.driver import analyze_text
from resdsl.lsp.server import Specs, uri_of

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "resnet152.res"


def edits(text: str, count: int) -> list[str]:
    """`count` versions of `text`, each a keystroke away from the one before: the third stage's
    block count edited digit by digit, so that every version elaborates a different network."""
    out = []
    for i in range(count):
        out.append(text.replace("36 x 256", f"{30 + i % 10} x 256"))
    return out


def in_process(rounds: int) -> dict[str, float]:
    text = SPEC.read_text()
    path, uri = str(SPEC), uri_of(str(SPEC))
    specs = Specs()
    converter = default_converter()
    versions = edits(text, rounds)

    def reference(version: str, _n: int) -> None:
        analyze_text(version, path)

    def update(version: str, n: int) -> None:
        specs.update(uri, version, n)

    def wire(version: str, n: int) -> None:
        document = specs.update(uri, version, n)
        params = lsp.PublishDiagnosticsParams(uri=uri, diagnostics=document.diagnostics, version=n)
        json.dumps(converter.unstructure(params))
        json.dumps(converter.unstructure(specs.inlay_hints(uri)))

    steps = {"analyze_text (reference)": reference, "Specs.update": update, "update + wire": wire}
    for step in steps.values():  # warm up: the parser's tables, the IR's classes
        step(text, 0)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for n, version in enumerate(versions, 1):
        for name, step in steps.items():
            start = time.perf_counter()
            step(version, n)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(found) for name, found in times.items()}


async def over_stdio(rounds: int) -> float:
    from pygls.lsp.client import BaseLanguageClient

    client = BaseLanguageClient("bench", "1")
    published: dict[int, asyncio.Future] = {}

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        future = published.pop(params.version, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    await client.start_io(sys.executable, "-m", "resdsl", "lsp")
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    text, uri = SPEC.read_text(), uri_of(str(SPEC))
    loop = asyncio.get_running_loop()
    opened = published[0] = loop.create_future()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="res", version=0, text=text)
        )
    )
    await opened
    times = []
    for n, version in enumerate(edits(text, rounds), 1):
        future = published[n] = loop.create_future()
        start = time.perf_counter()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=n),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=version)],
            )
        )
        times.append(await future - start)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--no-stdio", action="store_true", help="only the in-process figures")
    args = parser.parse_args()
    medians = in_process(args.rounds)
    reference = medians["analyze_text (reference)"]
    print(f"resnet152.res, {args.rounds} edits, medians (in process, interleaved):")
    for name, median in medians.items():
        print(f"  {name:<26} {median * 1e3:7.3f} ms   ratio {median / reference:5.2f}")
    if not args.no_stdio:
        median = asyncio.run(over_stdio(args.rounds))
        print(
            f"  {'didChange -> diagnostics':<26} {median * 1e3:7.3f} ms   ratio "
            f"{median / reference:5.2f}   (over stdio, a `resdsl lsp` process)"
        )
    print("target: a change answered in under 20 ms")


if __name__ == "__main__":
    main()
