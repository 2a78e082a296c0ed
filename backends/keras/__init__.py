"""The Keras 3 backend (in progress)."""
