"""Training generated networks: `resdsl train`.

The pieces, each a module: :mod:`.presets` (recipes and learning-rate schedules),
:mod:`.data` (digits, CIFAR pickles in memory; image folders as file lists; never downloads),
:mod:`.transforms` (reading any image, the augmentations, with PIL), :mod:`.tf_data` (the same
for Keras, as a tf.data pipeline), :mod:`.checkpoint` (atomic checkpoints, metrics log),
:mod:`.events` (TensorBoard event files; the curves are drawn by :mod:`resdsl.charts`),
:mod:`.progress` (progress bars or plain lines), :mod:`.common` (options, compiling and
importing the generated module, interrupts, the run folder), and one trainer per framework
(:mod:`.torch_trainer`, :mod:`.keras_trainer`). Frameworks are imported only by the trainer that
needs them.
"""

from __future__ import annotations

from resdsl.train.common import TrainError, TrainOptions

__all__ = ["TrainError", "TrainOptions"]
