"""Interop: weights between frameworks (:mod:`.weights`), weights files from elsewhere read
safely (:mod:`.weight_files`, :mod:`.keras_files`), and checkpoints back to specs
(:mod:`.importer`, :mod:`.keras_import`).
"""
