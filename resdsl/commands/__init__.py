"""CLI commands that load on demand (see resdsl.cli.LAZY_COMMANDS)."""
