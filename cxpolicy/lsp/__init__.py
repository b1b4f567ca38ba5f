"""The .cxp language server: editor requests in, `cxpolicy lsp` answers out (stdio).

Needs the optional extra `lsp` (pygls, lsprotocol); nothing here is imported by
`import cxpolicy`.

`analysis` answers (diagnostics, hover, completion, definition, formatting) from text;
`server` speaks LSP. Editors: editors/vscode/ in the repository.
"""
