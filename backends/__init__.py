"""resdsl's built-in backends, installed as `resdsl.backends`."""
