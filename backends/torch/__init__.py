"""The PyTorch backend (in progress)."""
