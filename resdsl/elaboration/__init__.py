"""Elaboration: the typed spec to the network of layers (:mod:`.elaborate`)."""
