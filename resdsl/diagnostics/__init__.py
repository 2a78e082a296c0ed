"""Diagnostics: the codes, the data and its renderings (:mod:`.core`), and `check --fix`
which applies their suggestions (:mod:`.fixes`).
"""
