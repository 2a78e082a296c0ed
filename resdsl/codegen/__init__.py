"""Code generation: the backends' registry (:mod:`.backends`) and the one way generated code is
imported (:mod:`.generated`).
"""
