"""The `resdsl` command line: the group in :mod:`.main`, every command in a module of its own
(loaded on demand, see :data:`resdsl.cli.main.LAZY_COMMANDS`), what they share in
:mod:`._common`, and the extras each needs in :mod:`.extras`.
"""
