"""The language server, tested through LSP itself: `cxpolicy lsp` runs as a subprocess and a
pygls client speaks JSON-RPC to it over stdio — diagnostics as you type, hover, completion,
go to definition, formatting and did-you-mean quick fixes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pygls")

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

POLICY = """use core
package claims
cite INTERNAL = "internal policy CX-7: payouts above the limit need a person"
attribute context.claim_total: number = 0

rule big_payouts {
  match   action = refund.execute, actor = ai
  when    context.claim_total > 50000
  decide  escalate
  because "a person approves large payouts"
  cite    INTERNAL
}
"""

TYPO = POLICY.replace("context.claim_total > 50000", "context.claim_totl > 50000")

Scenario = Callable[[LanguageClient, str, dict[str, list[lsp.Diagnostic]], asyncio.Event], Awaitable[Any]]


def _run(tmp_path: Path, text: str, scenario: Scenario) -> Any:
    """Start the server, open `text` as a file in tmp_path, run the scenario, shut down."""
    path = tmp_path / "claims.cxp"
    path.write_text(text)
    uri = path.as_uri()

    async def main() -> Any:
        client = LanguageClient("cxpolicy-test", "0")
        published: dict[str, list[lsp.Diagnostic]] = {}
        arrived = asyncio.Event()

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            published[params.uri] = list(params.diagnostics)
            arrived.set()

        await client.start_io(sys.executable, "-m", "cxpolicy", "lsp")
        try:
            await client.initialize_async(
                lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), root_uri=tmp_path.as_uri())
            )
            client.initialized(lsp.InitializedParams())
            client.text_document_did_open(
                lsp.DidOpenTextDocumentParams(
                    text_document=lsp.TextDocumentItem(uri=uri, language_id="cxp", version=1, text=text)
                )
            )
            await asyncio.wait_for(arrived.wait(), 30)
            return await asyncio.wait_for(scenario(client, uri, published, arrived), 30)
        finally:
            await client.shutdown_async(None)
            client.exit(None)
            await client.stop()

    return asyncio.run(main())


def _pos(text: str, needle: str, offset: int = 0) -> lsp.Position:
    before = text[: text.index(needle) + offset]
    return lsp.Position(line=before.count("\n"), character=len(before) - (before.rfind("\n") + 1))


def test_diagnostics_as_you_type_and_a_quick_fix(tmp_path: Path) -> None:
    async def scenario(client: LanguageClient, uri: str, published: dict[str, list[lsp.Diagnostic]],
                       arrived: asyncio.Event) -> None:
        assert published[uri] == []  # the clean policy
        arrived.clear()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=TYPO)],
            )
        )
        await arrived.wait()
        assert sorted(str(x.code) for x in published[uri]) == ["CXP610", "CXP618"]  # now unread; misspelt
        (d,) = [x for x in published[uri] if x.code == "CXP618"]
        assert d.severity == lsp.DiagnosticSeverity.Warning
        start = _pos(TYPO, "context.claim_totl")
        assert d.range.start == start and d.range.end.character == start.character + len("context.claim_totl")
        actions = await client.text_document_code_action_async(
            lsp.CodeActionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri), range=d.range,
                context=lsp.CodeActionContext(diagnostics=[d]),
            )
        )
        assert actions is not None
        (fix,) = actions
        assert isinstance(fix, lsp.CodeAction) and fix.edit is not None and fix.edit.changes is not None
        (edit,) = fix.edit.changes[uri]
        assert edit.new_text == "context.claim_total" and edit.range == d.range
        arrived.clear()  # a syntax error is reported while typing, too
        broken = POLICY.replace("decide  escalate", "decide  escalat")
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=broken)],
            )
        )
        await arrived.wait()
        assert [x.severity for x in published[uri]] and all(
            x.severity == lsp.DiagnosticSeverity.Error for x in published[uri]
        )

    _run(tmp_path, POLICY, scenario)


def _hover_text(result: lsp.Hover | None) -> str:
    assert result is not None and isinstance(result.contents, lsp.MarkupContent)
    return result.contents.value


def test_hover_on_a_dimension_an_attribute_a_cite_and_a_rule(tmp_path: Path) -> None:
    async def scenario(client: LanguageClient, uri: str, *_: Any) -> list[str]:
        doc = lsp.TextDocumentIdentifier(uri=uri)
        out = []
        for needle, offset in (("action =", 1), ("context.claim_total >", 3), ("cite    INTERNAL", 10),
                               ("big_payouts", 2), ("= ai", 2)):
            at = _pos(POLICY, needle, offset)
            r = await client.text_document_hover_async(lsp.HoverParams(text_document=doc, position=at))
            out.append(_hover_text(r))
        return out

    dim, attr, cite, rule, value = _run(tmp_path, POLICY, scenario)
    assert "dimension `action`" in dim and "`refund.execute`" in dim
    assert "attribute `context.claim_total`" in attr and "`number`" in attr and "= `0`" in attr
    assert "internal policy CX-7: payouts above the limit need a person" in cite
    assert "rule `claims.big_payouts`" in rule and "escalate" in rule and "when context.claim_total > 50000" in rule
    assert "dimension `actor`" in value


def test_completion_of_values_attributes_and_cites(tmp_path: Path) -> None:
    text = POLICY + "\nrule more {\n  match   channel = \n  when    \n  cite    \n}\n"

    async def scenario(client: LanguageClient, uri: str, *_: Any) -> list[set[str]]:
        doc = lsp.TextDocumentIdentifier(uri=uri)
        out = []
        for needle in ("channel = ", "when    \n", "cite    \n"):
            pos = _pos(text, needle, len(needle.rstrip("\n")))
            r = await client.text_document_completion_async(lsp.CompletionParams(text_document=doc, position=pos))
            assert isinstance(r, lsp.CompletionList)
            out.append({i.label for i in r.items})
        return out

    # the document does not compile (a rule without decide): completion uses the last good set
    path = tmp_path / "claims.cxp"

    async def first_good(client: LanguageClient, uri: str, published: Any, arrived: asyncio.Event) -> list[set[str]]:
        arrived.clear()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        await arrived.wait()
        return await scenario(client, uri)

    values, fields, cites = _run(tmp_path, POLICY, first_good)
    assert path.exists()
    assert {"chat", "voice", "email"} <= values and "refund.execute" not in values
    assert {"context.claim_total", "context.amount", "customer.risk_tier"} <= fields
    assert cites == {"INTERNAL"}


def test_go_to_definition_and_formatting(tmp_path: Path) -> None:
    messy = POLICY.replace("  decide  escalate", "      decide escalate")

    async def scenario(client: LanguageClient, uri: str, *_: Any) -> tuple[Any, Any, Any]:
        doc = lsp.TextDocumentIdentifier(uri=uri)
        local = await client.text_document_definition_async(
            lsp.DefinitionParams(text_document=doc, position=_pos(messy, "INTERNAL\n}", 2))
        )
        core = await client.text_document_definition_async(
            lsp.DefinitionParams(text_document=doc, position=_pos(messy, "actor = ai", 2))
        )
        edits = await client.text_document_formatting_async(
            lsp.DocumentFormattingParams(
                text_document=doc, options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)
            )
        )
        return local, core, edits

    local, core, edits = _run(tmp_path, messy, scenario)
    assert isinstance(local, lsp.Location) and local.range.start.line == 2  # `cite INTERNAL = ...`
    assert isinstance(core, lsp.Location) and core.uri.endswith("core.cxp")
    (edit,) = edits
    assert edit.new_text == POLICY
