"""Settings every test process shares."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Helpers shared by test files (spec_strategy, torch_helpers) import by plain name.
sys.path.insert(0, str(Path(__file__).parent))

# torchvision imported after TensorFlow crashes the process (inside triton's start-up), and a
# pytest worker may run a Keras test before a torchvision one: import it first, once.
with contextlib.suppress(ImportError):  # the core's tests run without the frameworks
    import torchvision  # noqa: F401
