"""Training generated networks: `resdsl train`.

The pieces, each a module: :mod:`.presets` (recipes and learning-rate schedules),
:mod:`.data` (digits, CIFAR pickles, image folders; never downloads), :mod:`.checkpoint`
(atomic checkpoints, metrics log), :mod:`.progress` (progress bars or plain lines),
:mod:`.common` (options, compiling and importing the generated module, interrupts), and one
trainer per framework (:mod:`.torch_trainer`, :mod:`.keras_trainer`). Frameworks are imported
only by the trainer that needs them.
"""

from __future__ import annotations

from .common import TrainError, TrainOptions

__all__ = ["TrainError", "TrainOptions"]
