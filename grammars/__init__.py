"""The .res grammar, installed as `resdsl.grammars`."""
