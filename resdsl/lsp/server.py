"""The language server, `resdsl lsp`: diagnostics, hover, inlay hints, completion, go to
definition, formatting, quick fixes and the outline of `.res` specs, over stdio.

What a spec means comes from the compiler alone: diagnostics are those of
:func:`resdsl.driver.analyze_text` (the codes, messages and help of `resdsl check`), shapes,
parameters, MACs and receptive fields those of the elaborated network and
:func:`resdsl.tooling.report.rows`, documentation that of :mod:`resdsl.tooling.catalogue` (the
docs' language reference), formatting that of `resdsl fmt`, and the parents of a spec are parsed
by the compiler's parser. What the cursor is on is found by a tolerant scan of the words of the
text (:func:`resdsl.lsp.scanner.scan`): completion runs on text being typed, which no parser
accepts, and hover, inlay hints and the outline keep working while the text does not parse, from
the last network that elaborated (matched to the text by stage name).

:class:`Specs` holds the open documents and answers every request without any I/O of the
protocol, so that the benchmark and the tests can drive it directly;
:func:`resdsl.lsp.protocol.create_server` wires it to pygls. The scan of the text is
:mod:`resdsl.lsp.scanner`, what the server says of the language :mod:`resdsl.lsp.reference`.
Positions are converted between the compiler's offsets (code points) and the client's encoding
(UTF-16 unless the client offers another) by :class:`LineIndex`, which breaks lines where LSP
does (`\\n`, `\\r\\n`, `\\r`). Documents are synchronised in full: a spec is a few hundred
bytes, and the text is then always the client's.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

from lsprotocol import types as lsp

from resdsl.diagnostics.core import E_PARENT_OUTSIDE, Diagnostic, Diagnostics, sorted_diagnostics
from resdsl.driver import Result, analyze_text
from resdsl.ir import Network, NetworkDecl, Span
from resdsl.language import schema
from resdsl.language.extends import MAX_EXTENDS_DEPTH, inside, parent_path
from resdsl.language.parser import parse, read_source
from resdsl.lsp.positions import LineIndex
from resdsl.lsp.reference import (
    argument_doc,
    arguments,
    call_at,
    item,
    keyword_item,
    kind_doc,
    kinds_of,
    options_of,
    plain_text,
    setting_doc,
    setting_item,
    string_node,
)
from resdsl.lsp.scanner import Scan, Statement, Tok, at, scan
from resdsl.tooling.docs import code_url
from resdsl.tooling.report import human, rows, totals_line

SOURCE = "resdsl"

# --------------------------------------------------------------------------- documents


@dataclass
class Fix:
    """A suggestion of a diagnostic (its `range` and `code`) that edits the document itself:
    `edit`'s text replaced by `replacement`."""

    range: lsp.Range
    code: str
    replacement: str
    edit: lsp.Range
    preferred: bool  # a safe suggestion (resdsl.diagnostics.core.Suggestion)


@dataclass
class Document:
    uri: str
    path: str  # the file name the compiler is given: parents resolve beside it
    version: int | None
    text: str
    index: LineIndex
    result: Result
    diagnostics: list[lsp.Diagnostic]
    fixes: list[Fix]
    network: Network | None  # this text's network, or the last one that elaborated
    stale: bool  # `network` is from an earlier text
    _scan: Scan | None = None

    @property
    def scan(self) -> Scan:
        if self._scan is None:
            self._scan = scan(self.text)
        return self._scan


_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}
_UNNECESSARY = {"W202"}  # waiver not needed: editors fade it


def path_of(uri: str) -> str:
    """The file a URI names; the URI itself for one that names no file, such as an unsaved
    editor's `untitled:Untitled-1` (which has no folder: see :func:`_without_folder`)."""
    from pygls.uris import to_fs_path

    path = to_fs_path(uri) if names_a_file(uri) else None
    return path or uri


def names_a_file(uri: str) -> bool:
    return uri.startswith("file:")


def _without_folder(text: str, uri: str) -> Result:
    """The analysis of a document that is no file (`untitled:`, `git:`): with no folder to
    look in, its `extends` is an error, and nothing else is read (the server's working folder
    is not the spec's, and a parent found there would be another's)."""
    diags = Diagnostics()
    tree = parse(text, uri, diags)
    extends = tree.network.extends if tree is not None else None
    if extends is None:
        return analyze_text(text, uri)
    diags.add(
        E_PARENT_OUTSIDE,
        f"an `{uri.split(':', 1)[0]}:` document has no folder to find `{extends.text}` in",
        extends.span,
        label="no folder",
        help="save the spec as a file beside its parent",
    )
    return Result(file=uri, diagnostics=diags.collected(), sources={uri: text})


def uri_of(path: str) -> str:
    from pygls.uris import from_fs_path

    return from_fs_path(os.path.abspath(path)) or path


class Specs:
    """The open specs and every answer about them; no protocol I/O (see the module's doc)."""

    def __init__(self, roots: tuple[str, ...] = (), encoding: str = "utf-16"):
        self.roots = roots
        self.encoding = encoding
        self.documents: dict[str, Document] = {}
        # Markdown where the client takes it (hover, completion items), plain text elsewhere.
        self.hover_kind = self.completion_kind = lsp.MarkupKind.Markdown
        self._indexes: dict[tuple[str, str], LineIndex] = {}
        self._trees: dict[tuple[str, str], NetworkDecl | None] = {}
        self._row_cache: tuple[Network, list] | None = None  # summary rows of the last hovered

    # ---------------------------------------------------------------- analysis

    def update(self, uri: str, text: str, version: int | None = None) -> Document:
        """Analyse `text` as the new content of `uri`: what every change costs."""
        path = path_of(uri)
        previous = self.documents.get(uri)
        if names_a_file(uri):
            result = analyze_text(text, path, self.roots)
        else:
            result = _without_folder(text, uri)
        index = LineIndex(text, self.encoding)
        diagnostics, fixes = self._diagnostics(result, uri, path, index)
        network, stale = result.network, False
        if network is None and previous is not None and previous.network is not None:
            network, stale = previous.network, True
        document = Document(
            uri, path, version, text, index, result, diagnostics, fixes, network, stale
        )
        self.documents[uri] = document
        return document

    def close(self, uri: str) -> None:
        self.documents.pop(uri, None)

    def dependents(self, uri: str) -> list[str]:
        """The other open documents whose analysis read the file at `uri` (as a parent)."""
        real = os.path.realpath(path_of(uri))
        return [
            other
            for other, doc in self.documents.items()
            if other != uri and any(os.path.realpath(p) == real for p in doc.result.sources)
        ]

    def _index(self, path: str, text: str) -> LineIndex:
        key = (path, text)
        if key not in self._indexes:
            if len(self._indexes) > 64:
                self._indexes.clear()
            self._indexes[key] = LineIndex(text, self.encoding)
        return self._indexes[key]

    def _diagnostics(
        self, result: Result, uri: str, path: str, index: LineIndex
    ) -> tuple[list[lsp.Diagnostic], list[Fix]]:
        fixes: list[Fix] = []

        def location(span: Span) -> lsp.Location | None:
            if span.file == path:  # the document itself, which may be an unsaved one
                return lsp.Location(uri=uri, range=index.range(span.start, span.end))
            text = result.sources.get(span.file)
            if text is None:
                return None
            where = self._index(span.file, text).range(span.start, span.end)
            return lsp.Location(uri=uri_of(span.file), range=where)

        out = [
            self._diagnostic(d, path, index, location, fixes)
            for d in sorted_diagnostics(result.diagnostics)
        ]
        return out, fixes

    def _diagnostic(
        self, d: Diagnostic, path: str, index: LineIndex, location, fixes: list[Fix]
    ) -> lsp.Diagnostic:
        """One diagnostic, as `resdsl check` reports it. One located in a parent (`extends`)
        is shown at this spec's `extends`, its message prefixed with where it is, and linked
        to that place: it is published for the open document only, so that it never replaces
        the parent's own diagnostics (a client keeps one set a file) and disappears with the
        document."""
        related = []
        message = d.message
        span = d.span
        if span is not None and span.file != path:
            via = next((n.span for n in d.notes if n.span.file == path), None)
            message = f"{os.path.basename(span.file)}:{span.line}:{span.column}: {message}"
            found = location(span)
            if found is not None:
                related.append(lsp.DiagnosticRelatedInformation(found, d.label or "here"))
            span = via
        for note in d.notes:
            if note.span.file == path and span is note.span:
                continue
            found = location(note.span)
            if found is not None:
                related.append(lsp.DiagnosticRelatedInformation(found, note.message))
        if d.help:
            message += f"\nhelp: {d.help}"
        where = index.range(span.start, span.end) if span is not None else index.range(0, 0)
        data = None
        for suggestion in d.suggestions:
            if suggestion.span.file != path:
                continue
            edit = index.range(suggestion.span.start, suggestion.span.end)
            safe = suggestion.applicability == "safe"
            fixes.append(Fix(where, d.code, suggestion.replacement, edit, safe))
            data = {"suggestion": suggestion.replacement}
        return lsp.Diagnostic(
            range=where,
            message=message,
            severity=_SEVERITY[d.severity],
            code=d.code,
            code_description=lsp.CodeDescription(href=code_url(d.code)),
            source=SOURCE,
            related_information=related or None,
            tags=[lsp.DiagnosticTag.Unnecessary] if d.code in _UNNECESSARY else None,
            data=data,
        )

    # ---------------------------------------------------------------- parents

    def _tree(self, path: str, text: str) -> NetworkDecl | None:
        key = (path, text)
        if key not in self._trees:
            if len(self._trees) > 64:
                self._trees.clear()
            tree = parse(text, path, Diagnostics())
            self._trees[key] = tree.network if tree is not None else None
        return self._trees[key]

    def _text(self, path: str) -> str | None:
        """A spec's text: the editor's, when it is open, else the file's."""
        real = os.path.realpath(path)
        for doc in self.documents.values():
            if os.path.realpath(doc.path) == real:
                return doc.text
        return read_source(path, Diagnostics(), {})

    def parents(self, doc: Document) -> Iterator[tuple[str, str, NetworkDecl]]:
        """(path, text, declaration) of each parent up the `extends` chain, nearest first:
        only files the compiler would read (`.res` inside the spec's folder or a root)."""
        if not names_a_file(doc.uri):  # no folder: see _without_folder
            return
        header = next((s for s in doc.scan.statements if s.head == "network"), None)
        string = next((t for t in header.tokens if t.kind == "string"), None) if header else None
        if string is None or len(string.text) < 2 or not string.text.endswith('"'):
            return
        folder = os.path.dirname(doc.path) or "."
        allowed = tuple(os.path.realpath(r) for r in (folder, *self.roots))
        child, name = doc.path, string.text[1:-1]
        seen = {os.path.realpath(doc.path)}
        for _ in range(MAX_EXTENDS_DEPTH):
            path = parent_path(child, string_node(name))
            if not inside(path, allowed) or os.path.realpath(path) in seen:
                return
            seen.add(os.path.realpath(path))
            text = self._text(path) if os.path.isfile(path) else None
            decl = self._tree(path, text) if text is not None else None
            if decl is None:
                return
            yield path, text, decl
            if decl.extends is None:
                return
            child, name = path, decl.extends.text

    # ---------------------------------------------------------------- requests

    def hover(self, uri: str, position: lsp.Position) -> lsp.Hover | None:
        doc = self.documents.get(uri)
        if doc is None:
            return None
        offset = doc.index.offset(position)
        found = at(doc.scan.statements, offset)
        if found is None:
            return None
        statement, i = found
        tok = statement.tokens[i]
        text = None
        if statement.head == "network":
            text = self._network_hover(doc)
        elif statement.head == "stage":
            text = self._stage_hover(doc, statement.word(1))
        elif tok.kind == "word":
            text = self._word_hover(statement, i)
        if text is None:
            return None
        if self.hover_kind != lsp.MarkupKind.Markdown:
            text = plain_text(text)
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=self.hover_kind, value=text),
            range=doc.index.range(tok.start, tok.end),
        )

    def _stale_note(self, doc: Document) -> str:
        if not doc.stale:
            return ""
        return "\n\n_From the last version of this spec that elaborated; the text now has errors._"

    def _network_hover(self, doc: Document) -> str | None:
        net = doc.network
        if net is None:
            return None
        return (
            f"**network `{net.name}`**: input {net.input}, {net.classes:,} classes, "
            f"{len(net.stages)} stages\n\n" + totals_line(net).replace("\n", "  \n")
        ) + self._stale_note(doc)

    def _rows(self, network: Network):
        if self._row_cache is None or self._row_cache[0] is not network:
            self._row_cache = (network, rows(network, blocks=True))
        return self._row_cache[1]

    def _stage_hover(self, doc: Document, name: str | None) -> str | None:
        net = doc.network
        stage = next((s for s in net.stages if s.name == name), None) if net else None
        if stage is None:
            return None
        table = self._rows(net)
        row = next(r for r in table if r.level == "stage" and r.name == name)
        blocks = [r for r in table if r.level == "block" and r.name.startswith(f"{name}.")]
        out = [
            f"**stage `{name}`**: {row.layers}",
            "",
            "| | |",
            "| --- | --- |",
            f"| input | {stage.in_shape} |",
            f"| output | {stage.out_shape} |",
            f"| blocks | {stage.blocks} |",
            f"| parameters | {stage.params:,} ({human(stage.params)}) |",
            f"| MACs | {stage.macs:,} ({human(stage.macs)}) |",
            f"| receptive field | {row.receptive_field} px |",
            "",
        ]
        # Consecutive blocks alike (same words) on one line: `layer3.1 to layer3.35`.
        groups: list[list] = []
        for r in blocks:
            if groups and groups[-1][0].layers == r.layers:
                groups[-1].append(r)
            else:
                groups.append([r])
        for group in groups[:8]:
            first, last = group[0], group[-1]
            names = f"`{first.name}`" if len(group) == 1 else f"`{first.name}` to `{last.name}`"
            out.append(f"- {names}: {first.layers}; RF {last.receptive_field}")
        if len(groups) > 8:
            out.append(f"- ... {sum(len(g) for g in groups[8:])} more blocks")
        return "\n".join(out) + self._stale_note(doc)

    def _word_hover(self, statement: Statement, i: int) -> str | None:
        word = statement.tokens[i].text
        key = statement.head
        if i == 0:
            return setting_doc(word) if word in schema.FIELDS else None
        if key not in schema.FIELDS:
            return None
        call = call_at(statement, i)
        if call is not None:
            kind, in_value = call
            if not in_value:
                return argument_doc(key, kind, word)
            return None
        if i == 1:
            found = kinds_of(key)
            if found is not None and word in found[1]:
                return kind_doc(key, word)
            if word in options_of(schema.FIELDS[key].reader):
                return setting_doc(key)
        return None

    def inlay_hints(self, uri: str, where: lsp.Range | None = None) -> list[lsp.InlayHint]:
        doc = self.documents.get(uri)
        if doc is None or doc.network is None:
            return []
        stages = {s.name: s for s in doc.network.stages}
        first = where.start.line if where else 0
        last = where.end.line if where else len(doc.index.starts)
        hints = []
        for statement in doc.scan.statements:
            if statement.head == "stages":  # a generator: the stages it writes
                line = doc.index.line_of(statement.tokens[0].start)
                generated = [s for s in doc.network.stages if s.generated]
                if generated and first <= line <= last:
                    hints.append(_generated_hint(doc, line, generated))
                continue
            if statement.head != "stage":
                continue
            stage = stages.get(statement.word(1) or "")
            line = doc.index.line_of(statement.tokens[0].start)
            if stage is None or not first <= line <= last:
                continue
            hints.append(
                lsp.InlayHint(
                    position=doc.index.position(doc.index.line_end(line)),
                    label=f"→ {stage.out_shape}",
                    kind=lsp.InlayHintKind.Type,
                    padding_left=True,
                    tooltip=f"{stage.blocks} blocks, {human(stage.params)} parameters, "
                    f"{human(stage.macs)} MACs",
                )
            )
        return hints

    def completion(self, uri: str, position: lsp.Position) -> lsp.CompletionList:
        doc = self.documents.get(uri)
        items: list[lsp.CompletionItem] = []
        if doc is not None:
            items = self._complete(doc, doc.index.offset(position))
        if self.completion_kind != lsp.MarkupKind.Markdown:
            for item in items:
                if isinstance(item.documentation, lsp.MarkupContent):
                    item.documentation = lsp.MarkupContent(
                        kind=self.completion_kind, value=plain_text(item.documentation.value)
                    )
        return lsp.CompletionList(is_incomplete=False, items=items)

    def _complete(self, doc: Document, offset: int) -> list[lsp.CompletionItem]:
        before = scan(doc.text[:offset])
        if before.in_comment:
            return []
        statement = before.current
        tokens = list(statement.tokens)
        prefix = tokens[-1] if tokens and tokens[-1].end == offset else None
        if prefix is not None and prefix.kind == "string":
            header = [t.text for t in tokens[:-1]]
            if header[:1] == ["network"] and header[-1:] == ["extends"]:
                return self._complete_parent(doc, prefix, offset)
            return []
        if prefix is not None and prefix.kind in ("word", "number"):
            tokens.pop()
        words = [t.text for t in tokens]
        depth = statement.depth
        if not words:
            if depth == 0:
                return [keyword_item("network", "a spec's one network: `network NAME { ... }`")]
            in_stage = depth >= 2
            items = [
                setting_item(k)
                for k, f in schema.FIELDS.items()
                if (f.stage if in_stage else f.network)
            ]
            if not in_stage:
                items.append(
                    keyword_item("stage", "a stage: `stage NAME: BLOCKS x WIDTH / STRIDE`")
                )
            return items
        if words[0] == "network":
            return (
                [keyword_item("extends", 'a parent spec: `extends "FILE.res"`')]
                if len(words) == 2
                else []
            )
        if words[0] == "stage":
            return self._complete_stage(doc) if len(words) == 1 else []
        key = words[0]
        if key not in schema.FIELDS:
            return []
        call = call_at(statement, len(tokens))
        if call is not None:
            kind, in_value = call
            args = arguments(key, kind)
            if not in_value:
                given = {t.text for t, n in itertools.pairwise(tokens) if n.text == ":"}
                return [
                    item(a, lsp.CompletionItemKind.Field, argument_doc(key, kind, a), f"{a}: ")
                    for a in args
                    if a not in given
                ]
            reader = args.get(words[-2]) if len(words) >= 2 and words[-1] == ":" else None
            return [item(o, lsp.CompletionItemKind.EnumMember) for o in options_of(reader)]
        if len(words) != 1:
            return []
        found = kinds_of(key)
        if found is not None:
            return [
                item(k, lsp.CompletionItemKind.EnumMember, kind_doc(key, k), detail=found[0])
                for k in found[1]
            ]
        options = options_of(schema.FIELDS[key].reader)
        if key == "input":
            options = ("3x224x224", "3x32x32")
        return [item(o, lsp.CompletionItemKind.Value, setting_doc(key)) for o in options]

    def _complete_stage(self, doc: Document) -> list[lsp.CompletionItem]:
        """Stage names of the parents, to override one."""
        items, seen = [], set()
        for path, _text, decl in self.parents(doc):
            for stage in decl.stages:
                if stage.name.text in seen:
                    continue
                seen.add(stage.name.text)
                size = f"{stage.blocks.text} x {stage.width.text}"
                if stage.stride is not None:
                    size += f" / {stage.stride.text}"
                items.append(
                    item(
                        stage.name.text,
                        lsp.CompletionItemKind.Module,
                        f"overrides `stage {stage.name.text}: {size}` of {os.path.basename(path)}",
                        detail=f"{size} in {os.path.basename(path)}",
                    )
                )
        return items

    def _complete_parent(self, doc: Document, string: Tok, offset: int) -> list[lsp.CompletionItem]:
        folder = os.path.dirname(doc.path)
        if not folder or not os.path.isdir(folder):
            return []
        # Up to the cursor, and over the closing quote an editor may have added after it.
        end = offset + 1 if doc.text[offset : offset + 1] == '"' else offset
        edit_range = doc.index.range(string.start, end)
        own = os.path.basename(doc.path)
        names = sorted(n for n in os.listdir(folder) if n.endswith(".res") and n != own)
        return [
            lsp.CompletionItem(
                label=name,
                kind=lsp.CompletionItemKind.File,
                text_edit=lsp.TextEdit(range=edit_range, new_text=f'"{name}"'),
                filter_text=f'"{name}"',
            )
            for name in names
        ]

    def definition(self, uri: str, position: lsp.Position) -> list[lsp.Location] | None:
        doc = self.documents.get(uri)
        if doc is None:
            return None
        found = at(doc.scan.statements, doc.index.offset(position))
        if found is None:
            return None
        statement, i = found
        tok = statement.tokens[i]
        for path, text, decl in self.parents(doc):
            target = None
            if statement.head == "network" and tok.kind == "string":
                target = decl.name.span
            elif statement.head == "stage" and i == 1:
                target = next((s.name.span for s in decl.stages if s.name.text == tok.text), None)
            elif statement.depth == 1 and i == 0 and tok.text in schema.FIELDS:
                target = next((s.key.span for s in decl.settings if s.key.text == tok.text), None)
            else:
                return None
            if target is not None:
                index = self._index(path, text)
                return [lsp.Location(uri=uri_of(path), range=index.range(target.start, target.end))]
        return None

    def formatting(self, uri: str) -> list[lsp.TextEdit] | None:
        from resdsl.tooling.formatter import FormatError, format_text

        doc = self.documents.get(uri)
        if doc is None:
            return None
        try:
            formatted = format_text(doc.text, doc.path)
        except FormatError:
            return None  # a spec that does not parse is left as it is, as `resdsl fmt` does
        if formatted == doc.text:
            return []
        return [lsp.TextEdit(range=doc.index.range(0, len(doc.text)), new_text=formatted)]

    def code_actions(
        self, uri: str, where: lsp.Range, context: lsp.CodeActionContext
    ) -> list[lsp.CodeAction]:
        """A quick fix for each suggestion of the diagnostics of the request (preferred where it
        is safe, as `resdsl check --fix` applies it)."""
        doc = self.documents.get(uri)
        if doc is None:
            return []
        actions = []
        for diagnostic in context.diagnostics:
            if diagnostic.source != SOURCE:
                continue
            for fix in doc.fixes:
                if fix.range != diagnostic.range or fix.code != diagnostic.code:
                    continue
                edit = lsp.TextEdit(range=fix.edit, new_text=fix.replacement)
                actions.append(
                    lsp.CodeAction(
                        title=f"Replace with `{fix.replacement}`",
                        kind=lsp.CodeActionKind.QuickFix,
                        diagnostics=[diagnostic],
                        is_preferred=fix.preferred,
                        edit=lsp.WorkspaceEdit(changes={uri: [edit]}),
                    )
                )
        return actions

    def symbols(self, uri: str) -> list[lsp.DocumentSymbol]:
        doc = self.documents.get(uri)
        if doc is None:
            return []
        stages = {s.name: s for s in doc.network.stages} if doc.network else {}
        index = doc.index
        children, network = [], None
        for statement in doc.scan.statements:
            name = statement.tokens[1] if len(statement.tokens) > 1 else None
            if name is None or name.kind != "word":
                continue
            whole = index.range(statement.tokens[0].start, statement.end)
            if statement.head == "network" and network is None:
                detail = None
                if doc.network is not None:
                    detail = (
                        f"{human(doc.network.params)} parameters, {human(doc.network.macs)} MACs"
                    )
                network = lsp.DocumentSymbol(
                    name=name.text,
                    kind=lsp.SymbolKind.Class,
                    range=whole,
                    selection_range=index.range(name.start, name.end),
                    detail=detail,
                )
            elif statement.head == "stage":
                size = " ".join(t.text for t in statement.tokens[3:] if t.text != "{")
                stage = stages.get(name.text)
                detail = f"{size} → {stage.out_shape}" if stage is not None else size
                children.append(
                    lsp.DocumentSymbol(
                        name=name.text,
                        kind=lsp.SymbolKind.Field,
                        range=whole,
                        selection_range=index.range(name.start, name.end),
                        detail=detail,
                    )
                )
        if network is None:
            return children
        network.children = children
        # The network's range holds its stages' (its `}` may be missing while typing).
        last = max(
            (c.range.end for c in children), key=lambda p: (p.line, p.character), default=None
        )
        if last is not None and (last.line, last.character) > (
            network.range.end.line,
            network.range.end.character,
        ):
            network.range = lsp.Range(start=network.range.start, end=last)
        return [network]


def _generated_hint(doc, line: int, stages) -> lsp.InlayHint:
    """The stages a generator writes, after its line: `→ 1 x 24, 1 x 56, 4 x 152, 7 x 368`."""
    words = ", ".join(f"{s.blocks} x {s.width}" for s in stages)
    detail = "; ".join(
        f"{s.name}: {s.blocks} x {s.width} / {s.stride}, groups of {s.block.group_size} "
        f"-> {s.out_shape}"
        for s in stages
    )
    return lsp.InlayHint(
        position=doc.index.position(doc.index.line_end(line)),
        label=f"→ {words}",
        kind=lsp.InlayHintKind.Type,
        padding_left=True,
        tooltip=detail,
    )
