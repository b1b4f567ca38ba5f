// Starts `cxpolicy lsp` (stdio) for .cxp files: diagnostics, hover, completion,
// go to definition, formatting (on save, see package.json) and quick fixes.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("cxpolicy").get("command");
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "cxpolicy",
    "cxpolicy language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "cxp" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
