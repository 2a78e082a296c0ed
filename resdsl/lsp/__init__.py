"""The language server (:mod:`.server`), with its bounded input (:mod:`.frames`) and LSP
positions (:mod:`.positions`).
"""
