"""The Keras trainer's input where Keras runs on another backend than TensorFlow (torch, jax):
`keras.utils.PyDataset` batches, each image read and augmented with PIL and NumPy
(:mod:`.transforms`) in Keras's worker threads, so that such a run needs no TensorFlow at all.
On TensorFlow the trainer uses a tf.data pipeline instead (:mod:`.tf_data`); both give the
same images for the same seed up to resampling noise, and the same interface: `train(epoch,
order, batch)` and `test(batch)`.

As everywhere in training, each image's random choices (crop, flip, padding offsets) come from a
generator seeded by (run seed, epoch, index): a resumed run sees what an unbroken one would.
"""

from __future__ import annotations

import keras
import numpy as np

from resdsl.train.transforms import UnreadableImage, split_image


class Pipelines:
    """The datasets of one run: a training epoch in a given order, and the validation and test
    splits."""

    # What a batch raises for an image that cannot be read (see keras_trainer._unreadable).
    errors = (UnreadableImage,)

    def __init__(self, data, shape, recipe, seed: int, workers: int = 2):
        self.data, self.shape, self.recipe, self.seed = data, shape, recipe, seed
        self.workers = max(1, workers)
        self.mean = np.asarray(data.mean, np.float32)
        self.std = np.asarray(data.std, np.float32)

    def train(self, epoch: int, order: np.ndarray, batch: int):
        return _Batches(self, self.data.train, np.asarray(order), epoch, batch, training=True)

    def test(self, batch: int = 256, name: str = "test"):
        """Batches of the `name` split ("test" or "val"), in order, as evaluation sees them."""
        split = self.data.val if name == "val" else self.data.test
        return _Batches(self, split, np.arange(len(split)), 0, batch, training=False)

    def view(self, split, index: int, epoch: int, *, training: bool) -> np.ndarray:
        """One image as the network sees it: normalised float32 (H, W, C)."""
        rng = np.random.default_rng([self.seed, epoch, int(index)])
        array = split_image(
            split, index, self.shape, self.recipe.augment, training=training, rng=rng
        )
        pixels = array.transpose(1, 2, 0).astype(np.float32) / 255.0
        if training:
            pixels = self._shift_and_flip(pixels, rng)
        return (pixels - self.mean) / self.std

    def _shift_and_flip(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The `cifar` augmentation: zero padding, a random crop back, a random flip."""
        recipe = self.recipe
        if recipe.augment != "cifar":
            return pixels
        if recipe.pad:
            pad = recipe.pad
            height, width = pixels.shape[:2]
            padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)))
            top, left = rng.integers(0, 2 * pad + 1, 2)
            pixels = padded[top : top + height, left : left + width]
        if recipe.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        return pixels


class _Batches(keras.utils.PyDataset):
    """Batches of (images, labels) of one split in a given order."""

    def __init__(self, pipelines: Pipelines, split, order, epoch: int, batch: int, *, training):
        super().__init__(workers=pipelines.workers, use_multiprocessing=False)
        self.pipelines, self.split, self.order = pipelines, split, order
        self.epoch, self.batch, self.training = epoch, batch, training

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch)

    def __getitem__(self, number: int):
        indices = self.order[number * self.batch : (number + 1) * self.batch]
        images = [
            self.pipelines.view(self.split, i, self.epoch, training=self.training) for i in indices
        ]
        return np.stack(images), self.split.labels[indices]
