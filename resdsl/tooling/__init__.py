"""Tooling around the compiler: the formatter, the report tables of `summary` and `diff`, the
README's generated catalogue, the Pygments lexer and signal propagation.
"""
