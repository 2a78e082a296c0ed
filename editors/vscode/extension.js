// The VS Code client of `resdsl lsp`: starts the language server for `.res` files and
// restarts it when its settings change. Plain JavaScript, so there is no build step.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function serverOptions() {
  const config = vscode.workspace.getConfiguration("resdsl");
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
  // `${workspaceFolder}/.venv/bin/resdsl` works as a setting, as it does in tasks.
  const command = config.get("server.path", "resdsl").replace("${workspaceFolder}", folder);
  const args = config.get("server.args", ["lsp"]);
  // `transport: stdio` makes the client add `--stdio`, which `resdsl lsp` accepts.
  return { command, args, transport: TransportKind.stdio, options: { cwd: folder || undefined } };
}

function clientOptions() {
  const config = vscode.workspace.getConfiguration("resdsl");
  return {
    documentSelector: [
      { scheme: "file", language: "res" },
      { scheme: "untitled", language: "res" },
    ],
    initializationOptions: { roots: config.get("roots", []) },
    outputChannelName: "resdsl",
  };
}

async function start(context) {
  client = new LanguageClient("resdsl", "resdsl", serverOptions(), clientOptions());
  try {
    await client.start();
  } catch (error) {
    const path = vscode.workspace.getConfiguration("resdsl").get("server.path", "resdsl");
    vscode.window.showErrorMessage(
      `resdsl: cannot start the language server with \`${path} lsp\` (${error.message ?? error}). ` +
        "Install it with `pip install 'resdsl[lsp]'`, or set `resdsl.server.path`.",
    );
    client = undefined;
  }
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("resdsl.restartServer", async () => {
      await stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("resdsl.server") || event.affectsConfiguration("resdsl.roots")) {
        await stop();
        await start(context);
      }
    }),
  );
  await start(context);
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
