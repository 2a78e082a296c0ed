"""The language: `.res` text to the typed spec.

:mod:`.parser` (text to syntax tree), :mod:`.extends` (a spec and its parents merged),
:mod:`.resolve` (declarations to the typed spec), :mod:`.schema` (what a spec may say) and
:mod:`.values` (the readers of setting and argument values).
"""
