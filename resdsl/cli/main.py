"""The `resdsl` command line.

Exit status: 0 when all is well, 1 when a spec has errors, 2 for usage and I/O errors.
Heavy frameworks are imported only by the commands that run models, never by `check`,
`ir` or `compile`.
"""

from __future__ import annotations

import os
import sys

import click

from resdsl import __version__
from resdsl.blocks.registry import PluginError
from resdsl.cli._common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, report

__all__ = ["EXIT_OK", "EXIT_SPEC", "EXIT_USAGE", "main", "report"]

# Every command lives in a module of its own under resdsl.cli, loaded only when invoked,
# so that `resdsl check` imports no framework: name -> "module:attribute".
LAZY_COMMANDS = {
    "check": "check:check",
    "ir": "ir:ir",
    "compile": "compile_:compile",
    "port-weights": "port_weights:port_weights",
    "train": "train:train",
    "compare": "compare:compare",
    "summary": "summary:summary",
    "diff": "diff:diff",
    "graph": "graph:graph",
    "fmt": "fmt:fmt",
    "export": "export:export",
    "import": "import_:import_",
    "lsp": "lsp:lsp",
    "eval": "evaluate:evaluate",
    "predict": "evaluate:predict",
    "plot": "plot:plot",
    "explain": "explain:explain",
}


class _Group(click.Group):
    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self._lazy()])

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in self._lazy():
            import importlib

            module, _, attribute = LAZY_COMMANDS[name].partition(":")
            command = getattr(importlib.import_module(f"resdsl.cli.{module}"), attribute)
        return command

    @staticmethod
    def _lazy() -> list[str]:
        import importlib.util

        return [
            name
            for name, target in LAZY_COMMANDS.items()
            if importlib.util.find_spec(f"resdsl.cli.{target.partition(':')[0]}")
        ]

    def main(self, *args, **kwargs):
        # TensorFlow's INFO and WARNING lines are noise to a command's user unless asked for;
        # a value the user set wins. Set before any command can import TensorFlow (see
        # resdsl.tf_startup for the lines it prints before reading the variable).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # click exits 2 on usage errors already; keep tracebacks away from users on I/O errors.
        try:
            return super().main(*args, **kwargs)
        except BrokenPipeError:  # `resdsl ir x | head`
            sys.stderr.close()
            sys.exit(EXIT_OK)
        except PluginError as error:  # an installed block plugin that does not load
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_USAGE)


_EPILOG = """\b
Shell completion (commands, options, file names):
  bash  eval "$(_RESDSL_COMPLETE=bash_source resdsl)"   # in ~/.bashrc
  zsh   eval "$(_RESDSL_COMPLETE=zsh_source resdsl)"    # in ~/.zshrc
  fish  _RESDSL_COMPLETE=fish_source resdsl | source    # in ~/.config/fish/completions/resdsl.fish
"""


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(__version__, prog_name="resdsl")
def main() -> None:
    """Compile .res specs of residual networks to PyTorch and Keras 3 code."""


def _entry() -> None:  # pragma: no cover - console-script shim
    main()


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
