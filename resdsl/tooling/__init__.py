"""Tooling around the compiler: the formatter, the report tables of `summary` and `diff`, the
docs site's generated pages and tables, the Pygments lexer and its word lists, and signal
propagation.
"""
