"""The Keras trainer's input pipeline, in tf.data (which Keras 3 takes on every backend).

An epoch is a tf.data.Dataset of (image, label) batches: the split's indices in the epoch's
order, mapped in parallel (`AUTOTUNE`, order kept) to images that are read and decoded from
their files, or gathered from the in-memory array, then augmented and normalised, batched and
prefetched while the model trains. Only the file list and the batches in flight are in memory.

The augmentations are those of :mod:`.transforms`, written with tf.image's stateless ops: each
image's random crop and flip come from a seed made of (run seed, epoch, index), so a resumed
run sees the images exactly as an unbroken one did.
"""

from __future__ import annotations

import math

import numpy as np

from resdsl.train.transforms import AREA_RANGE, CROP_FRACTION, RATIO_RANGE


class Pipelines:
    """The datasets of one run: a training epoch in a given order, and the validation and test
    splits."""

    def __init__(self, data, shape, recipe, seed: int):
        import tensorflow as tf

        self.tf = tf
        # What a batch raises for an image the pipeline cannot read (see keras_trainer).
        self.errors = (
            tf.errors.InvalidArgumentError,
            tf.errors.NotFoundError,
            tf.errors.DataLossError,
        )
        self.data, self.recipe, self.seed = data, recipe, seed
        self.channels, self.height, self.width = shape
        self.mean = tf.constant(data.mean, tf.float32)
        self.std = tf.constant(data.std, tf.float32)
        # In-memory arrays become one constant each, made once per run (NHWC).
        self.arrays = {
            name: tf.constant(split.images.transpose(0, 2, 3, 1))
            for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
            if split is not None and split.images is not None
        }

    def train(self, epoch: int, order: np.ndarray, batch: int):
        """Batches of the training split in `order` (the epoch's permutation, possibly without
        the batches a resumed run already trained)."""
        split = self.data.train
        seeds = np.stack(
            [np.full(len(order), self.seed, np.int64), epoch * len(split) + order.astype(np.int64)],
            axis=1,
        )
        return self._batches("train", split, order, seeds, batch, training=True)

    def test(self, batch: int = 256, name: str = "test"):
        """Batches of the `name` split ("test" or "val"), in order, as evaluation sees them."""
        split = self.data.val if name == "val" else self.data.test
        order = np.arange(len(split))
        return self._batches(name, split, order, np.zeros((len(split), 2), np.int64), batch)

    def _batches(self, name, split, order, seeds, batch: int, *, training: bool = False):
        tf = self.tf
        labels = split.labels[order]
        if split.files is not None:
            paths = np.asarray(split.files, dtype=object)[order].astype(str)
            items = tf.data.Dataset.from_tensor_slices((paths, labels, seeds))

            def view(path, label, seed):
                image = self._decode(path)
                if training:
                    return self._train_view(image, seed, decoded=True), label
                return self._normalise(self._eval_view(image)), label

        else:
            images = self.arrays[name]
            items = tf.data.Dataset.from_tensor_slices((order, labels, seeds))

            def view(index, label, seed):
                image = tf.cast(tf.gather(images, index), tf.float32)
                if training:
                    return self._train_view(image, seed, decoded=False), label
                return self._normalise(image), label

        options = tf.data.Options()
        # Under a multi-worker strategy, each worker takes every n-th batch of the same list
        # (there are no files for tf.data to shard by).
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        # One thread inside each map call: the parallelism is across images. Measured with Keras
        # on the torch backend (2 cores, digits): 2x the images/s of the default, where the ops
        # of one image were also split over threads that then fought PyTorch's.
        options.threading.max_intra_op_parallelism = 1
        return (
            items.with_options(options)
            .map(view, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch)
            .prefetch(tf.data.AUTOTUNE)
        )

    # --- one image -------------------------------------------------------------------------

    def _decode(self, path):
        """uint8 -> float32 (H, W, channels) of any image file TensorFlow decodes (PNG of any
        mode and depth, JPEG, GIF, BMP, WebP): grey or RGB, alpha dropped."""
        tf = self.tf
        image = tf.io.decode_image(
            tf.io.read_file(path),
            channels=1 if self.channels == 1 else 3,
            expand_animations=False,
            dtype=tf.uint8,
        )
        image = tf.cast(image, tf.float32)
        if self.channels not in (1, 3):
            grey = tf.reduce_mean(image, axis=-1, keepdims=True)
            image = tf.tile(grey, [1, 1, self.channels])
        return image

    def _resize(self, image, size):
        return self.tf.image.resize(image, size, method="bilinear", antialias=True)

    def _eval_view(self, image):
        """The `imagenet` centre crop of the image resized to input / 0.875, else the image
        resized to the input size."""
        tf = self.tf
        if self.recipe.augment != "imagenet":
            return self._resize(image, [self.height, self.width])
        # The shorter side to floor(size / 0.875), the longer in proportion (truncated).
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        short = float(math.floor(max(self.height, self.width) / CROP_FRACTION))
        size = tf.cast(tf.floor(shape * short / tf.reduce_min(shape)), tf.int32)
        image = self._resize(image, size)
        top = tf.cast(tf.round((size[0] - self.height) / 2), tf.int32)
        left = tf.cast(tf.round((size[1] - self.width) / 2), tf.int32)
        return tf.image.crop_to_bounding_box(image, top, left, self.height, self.width)

    def _train_view(self, image, seed, *, decoded: bool):
        tf = self.tf
        recipe = self.recipe
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        if recipe.augment == "imagenet":
            begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
                tf.shape(image),
                bounding_boxes=tf.zeros([1, 0, 4]),
                seed=crop_seed,
                min_object_covered=0.0,
                aspect_ratio_range=RATIO_RANGE,
                area_range=AREA_RANGE,
                max_attempts=10,
                use_image_if_no_bounding_boxes=True,
            )
            image = self._resize(tf.slice(image, begin, size), [self.height, self.width])
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
            return self._normalise(image)
        if decoded:
            image = self._resize(image, [self.height, self.width])
        if recipe.augment == "cifar" and recipe.pad:
            pad = recipe.pad
            image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.stateless_random_crop(
                image, [self.height, self.width, self.channels], crop_seed
            )
        if recipe.augment == "cifar" and recipe.flip:
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return self._normalise(image)

    def _normalise(self, image):
        return (image / 255.0 - self.mean) / self.std
