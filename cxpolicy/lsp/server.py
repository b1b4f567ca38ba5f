"""The cxpolicy language server (pygls 2.x over stdio): LSP in, `lsp.analysis` answers out.

Input: LSP messages from an editor. Output: diagnostics published as the user types (on open
and on every change), hover, completion, go to definition, whole-document formatting, and
quick fixes that apply a diagnostic's did-you-mean. Each open document is analysed with the
other .cxp files of its directory, so a rule's vocabulary from a sibling file is known; the
last policy set that compiled is kept per document, so hover and completion keep working
while the text is half-written.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from cxpolicy.engine.policy_set import PolicySet
from cxpolicy.lang.source import Diagnostic, Severity
from cxpolicy.lsp import analysis

__all__ = ["SERVER", "build_server"]

_SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
}
_KIND = {
    "value": lsp.CompletionItemKind.EnumMember,
    "dimension": lsp.CompletionItemKind.Enum,
    "attribute": lsp.CompletionItemKind.Field,
    "cite": lsp.CompletionItemKind.Reference,
    "rule": lsp.CompletionItemKind.Function,
    "keyword": lsp.CompletionItemKind.Keyword,
}


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def _uri(path: str) -> str:
    from pathlib import Path

    return Path(path).absolute().as_uri() if not path.startswith("<") else path


def _range(d_line: int, d_col: int, end_line: int, end_col: int) -> lsp.Range:
    """A 1-based, end-exclusive cxpolicy span as an LSP range (0-based)."""
    return lsp.Range(
        start=lsp.Position(line=max(0, d_line - 1), character=max(0, d_col - 1)),
        end=lsp.Position(line=max(0, end_line - 1), character=max(0, end_col - 1)),
    )


def _diagnostic(d: Diagnostic) -> lsp.Diagnostic:
    s = d.span
    fix = analysis.replacement(d)
    return lsp.Diagnostic(
        range=_range(s.line, s.col, s.end_line, s.end_col),
        message=d.message + (f"\nhint: {d.hint}" if d.hint else ""),
        severity=_SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Information),
        code=d.code,
        source="cxpolicy",
        data={"replacement": fix} if fix else None,
    )


class CxpServer(LanguageServer):
    """The server, with the last policy set that compiled for each document."""

    def __init__(self) -> None:
        super().__init__("cxpolicy", _version())
        self.good: dict[str, PolicySet] = {}

    def refresh(self, uri: str) -> None:
        doc = self.workspace.get_text_document(uri)
        result = analysis.analyse(_path(uri), doc.source)
        if result.policy is not None:
            self.good[uri] = result.policy
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[_diagnostic(d) for d in result.diagnostics])
        )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxpolicy")
    except PackageNotFoundError:  # pragma: no cover - a checkout never installed
        return "0.0.0"


def build_server() -> CxpServer:
    """A fresh server with every feature registered (tests build their own)."""
    server = CxpServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CxpServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CxpServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CxpServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: CxpServer, params: lsp.HoverParams) -> lsp.Hover | None:
        uri = params.text_document.uri
        policy = ls.good.get(uri)
        if policy is None:
            return None
        text = ls.workspace.get_text_document(uri).source
        found = analysis.hover(policy, text, params.position.line, params.position.character)
        if found is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[" ", "[", ",", "."]))
    def on_completion(ls: CxpServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        uri = params.text_document.uri
        policy = ls.good.get(uri)
        if policy is None:
            return lsp.CompletionList(is_incomplete=False, items=[])
        text = ls.workspace.get_text_document(uri).source
        items = analysis.completions(policy, text, params.position.line, params.position.character)
        return lsp.CompletionList(
            is_incomplete=False,
            items=[lsp.CompletionItem(label=lb, kind=_KIND.get(kind), detail=detail) for lb, kind, detail in items],
        )

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: CxpServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        uri = params.text_document.uri
        policy = ls.good.get(uri)
        if policy is None:
            return None
        text = ls.workspace.get_text_document(uri).source
        target = analysis.definition(policy, text, params.position.line, params.position.character)
        if target is None:
            return None
        s = target.span
        where = uri if target.path == _path(uri) else _uri(target.path)
        return lsp.Location(uri=where, range=_range(s.line, s.col, s.end_line, s.end_col))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def on_format(ls: CxpServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        uri = params.text_document.uri
        text = ls.workspace.get_text_document(uri).source
        new = analysis.format_document(_path(uri), text)
        if new is None or new == text:
            return []
        lines = text.split("\n")
        end = lsp.Position(line=len(lines), character=0)
        return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end), new_text=new)]

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix])
    )
    def on_code_action(ls: CxpServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        out: list[lsp.CodeAction] = []
        for d in params.context.diagnostics:
            data = d.data if isinstance(d.data, dict) else None
            fix = data.get("replacement") if data else None
            if not isinstance(fix, str):
                continue
            edit = lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=d.range, new_text=fix)]})
            out.append(
                lsp.CodeAction(
                    title=f"Replace with `{fix}`", kind=lsp.CodeActionKind.QuickFix, diagnostics=[d], edit=edit,
                    is_preferred=True,
                )
            )
        return out

    return server


SERVER: CxpServer | None = None


def main() -> None:
    """Serve over stdio until the editor closes the connection."""
    global SERVER
    SERVER = build_server()
    SERVER.start_io()
