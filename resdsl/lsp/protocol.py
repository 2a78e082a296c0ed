"""The language server on the protocol: pygls wired to :class:`resdsl.lsp.server.Specs`, which
answers every request without the protocol's I/O."""

from __future__ import annotations

from lsprotocol import types as lsp

from resdsl import __version__
from resdsl.lsp.server import Document, Specs

# --------------------------------------------------------------------------- the server


def markup(capabilities: lsp.ClientCapabilities, path: str) -> lsp.MarkupKind:
    """Markdown when the client lists it at `path` of its capabilities, else plain text."""
    found = capabilities
    for name in path.split("."):
        found = getattr(found, name, None)
    return (
        lsp.MarkupKind.Markdown
        if lsp.MarkupKind.Markdown in (found or ())
        else lsp.MarkupKind.PlainText
    )


def create_server(roots: tuple[str, ...] = ()):
    """The pygls server around a :class:`Specs`; `server.start_io()` serves stdio."""
    from pygls.lsp.server import LanguageServer

    server = LanguageServer(
        "resdsl", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Full
    )
    specs = Specs(roots)
    server.specs = specs

    def publish(document: Document) -> None:
        server.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(
                uri=document.uri, diagnostics=document.diagnostics, version=document.version
            )
        )

    def refresh(uri: str, version: int | None) -> None:
        text = server.workspace.get_text_document(uri).source
        try:
            document = specs.update(uri, text, version)
        except Exception as error:  # a bug of the compiler: say so, keep serving
            server.window_log_message(
                lsp.LogMessageParams(type=lsp.MessageType.Error, message=f"resdsl: {error!r}")
            )
            return
        publish(document)

    @server.feature(lsp.INITIALIZE)
    def initialize(params: lsp.InitializeParams) -> None:
        options = params.initialization_options
        extra = options.get("roots") if isinstance(options, dict) else None
        if isinstance(extra, list):
            specs.roots = roots + tuple(str(r) for r in extra if isinstance(r, str))
        capabilities = params.capabilities
        specs.hover_kind = markup(capabilities, "text_document.hover.content_format")
        specs.completion_kind = markup(
            capabilities, "text_document.completion.completion_item.documentation_format"
        )
        encoding = server.workspace.position_encoding
        specs.encoding = str(getattr(encoding, "value", encoding) or "utf-16")

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        refresh(params.text_document.uri, params.text_document.version)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        refresh(params.text_document.uri, params.text_document.version)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        # A parent changed on disk: its open children read it again.
        for uri in specs.dependents(params.text_document.uri):
            refresh(uri, specs.documents[uri].version)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        specs.close(params.text_document.uri)
        server.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(params: lsp.HoverParams) -> lsp.Hover | None:
        return specs.hover(params.text_document.uri, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hint(params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        return specs.inlay_hints(params.text_document.uri, params.range)

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION,
        lsp.CompletionOptions(trigger_characters=[" ", "(", ",", ":", '"']),
    )
    def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        return specs.completion(params.text_document.uri, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(params: lsp.DefinitionParams) -> list[lsp.Location] | None:
        return specs.definition(params.text_document.uri, params.position)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        return specs.formatting(params.text_document.uri)

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
    )
    def code_action(params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return specs.code_actions(params.text_document.uri, params.range, params.context)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        return specs.symbols(params.text_document.uri)

    return server


def serve(roots: tuple[str, ...] = ()) -> None:
    """Speak LSP on standard input and output until the client says exit, reading no frame
    over a bound (:mod:`resdsl.lsp.frames`)."""
    import sys

    from resdsl.lsp.frames import BoundedInput, install

    server = create_server(roots)
    install(server)
    server.start_io(stdin=BoundedInput(sys.stdin.buffer))
