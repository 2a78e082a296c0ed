"""Settings every test process shares."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under xdist each worker is one process of `make test`'s two: with the frameworks' default
# thread pools every worker would spread over every core, and two of them then wait on each
# other (a ResNet-50 forward pass went from 0.04 s to 2 s). One thread each keeps a worker on a
# core. Set before torch or TensorFlow is imported, so both read it; subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(variable, "1")

# Helpers shared by test files (support/: spec_strategy, torch_helpers ...) import by plain name.
sys.path.insert(0, str(Path(__file__).parent / "support"))

# torchvision imported after TensorFlow crashes the process (inside triton's start-up), and a
# pytest worker may run a Keras test before a torchvision one: import it first, once.
with contextlib.suppress(ImportError):  # the core's tests run without the frameworks
    import torchvision  # noqa: F401

    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
