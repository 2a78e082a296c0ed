"""Validation: the registered passes over the elaborated network (:mod:`.passes`)."""
