"""How images become network inputs: reading any image file, and the augmentations that the
training recipes name. PIL does the work here, for the PyTorch loader's workers, for `resdsl
eval` and for `predict`; the Keras trainer does the same with tf.image ops in its tf.data
pipeline (:mod:`.tf_data`).

The augmentations (`--augment`):

- `imagenet`: for training, a random crop of 8% to 100% of the image's area with an aspect
  ratio from 3/4 to 4/3, resized to the input size, and a random horizontal flip (the recipe
  of torchvision's and timm's ImageNet training); for evaluation, the shorter side resized to
  floor(input / 0.875) (256 for 224) and the centre crop of the input size.
- `cifar`: for training, the image at the input size, zero-padded by the recipe's `pad`
  pixels and randomly cropped back, then flipped at random when the recipe flips (done on the
  device, a whole batch at once); for evaluation, the image at the input size.
- `none`: the image resized to the input size, always.

Random choices are drawn from a numpy generator that the caller seeds per image (from the run's
seed, the epoch and the image's index), so a resumed run sees the same crops as an unbroken one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from resdsl.train.common import TrainError

if TYPE_CHECKING:
    from PIL import Image as PILImage

AUGMENTS = ("imagenet", "cifar", "none")
CROP_FRACTION = 0.875  # evaluation: the centre 87.5% of an image resized to input / 0.875
AREA_RANGE = (0.08, 1.0)
RATIO_RANGE = (3 / 4, 4 / 3)
CROP_TRIES = 10


class UnreadableImage(TrainError):
    """An image file that cannot be decoded.

    Raised in a PyTorch DataLoader worker, it reaches the main process rebuilt from the
    worker's whole traceback text, whose last line is ``module.UnreadableImage: message``;
    the message is taken back from there, so the user sees one line naming the file."""

    def __init__(self, message: str):
        last = message.strip().splitlines()[-1] if message.strip() else message
        prefix = f"{__name__}.{type(self).__name__}: "
        super().__init__(last[len(prefix) :] if last.startswith(prefix) else message)


def read_image(path: str, channels: int) -> PILImage.Image:
    """The image file at `path` in mode L (one channel) or RGB (any other count): grayscale,
    16-bit, RGBA, palette, CMYK and the rest converted the way a viewer shows them, except
    that transparency is dropped."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return to_mode(image, channels)
    except FileNotFoundError:
        raise UnreadableImage(f"no such file `{path}`") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        # PIL raises SyntaxError for some malformed headers (PNG chunks, for one).
        raise UnreadableImage(f"cannot read image `{path}`: {error}") from None
    except Image.DecompressionBombError as error:
        # A small file claiming more pixels than PIL's limit (about 179 million): refused
        # before any of them is allocated.
        raise UnreadableImage(f"cannot read image `{path}`: {error}") from None


def to_mode(image: PILImage.Image, channels: int) -> PILImage.Image:
    from PIL import Image

    target = "L" if channels == 1 else "RGB"
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit or 32-bit grey: PIL's own conversion to L clips at 255; scale to 8 bits.
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(pixels.max()), 1.0)
        if image.mode == "F" and pixels.max() <= 1.0:
            top = 1.0
        scaled = np.clip(np.round(pixels * (255.0 / top)), 0, 255).astype(np.uint8)
        image = Image.fromarray(scaled, mode="L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # the way PIL asks palette transparency to be read
    return image if image.mode == target else image.convert(target)


def random_crop_box(width: int, height: int, rng: np.random.Generator) -> tuple[int, ...]:
    """(left, top, right, bottom) of a random crop of `AREA_RANGE` of the area with an aspect
    ratio in `RATIO_RANGE` (log-uniform); after `CROP_TRIES` misses, the centre crop of the
    ratio nearest the image's own."""
    area = width * height
    log_ratio = (math.log(RATIO_RANGE[0]), math.log(RATIO_RANGE[1]))
    for _ in range(CROP_TRIES):
        target = area * rng.uniform(*AREA_RANGE)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    ratio = width / height
    if ratio < RATIO_RANGE[0]:
        w, h = width, round(width / RATIO_RANGE[0])
    elif ratio > RATIO_RANGE[1]:
        w, h = round(height * RATIO_RANGE[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def train_view(
    image: PILImage.Image, size: tuple[int, int], augment: str, rng: np.random.Generator
) -> PILImage.Image:
    """What a training step sees of `image` before the device's batched part: for `imagenet`
    a random resized crop, flipped at random; otherwise the image at the input size."""
    from PIL import Image

    height, width = size
    if augment != "imagenet":
        return eval_view(image, size, augment)
    box = random_crop_box(image.width, image.height, rng)
    view = image.resize((width, height), Image.BILINEAR, box=box)
    if rng.random() < 0.5:
        view = view.transpose(Image.FLIP_LEFT_RIGHT)
    return view


def eval_view(image: PILImage.Image, size: tuple[int, int], augment: str) -> PILImage.Image:
    """What evaluation and prediction see: for `imagenet` the centre crop of the image resized
    to input / 0.875, otherwise the image resized to the input size."""
    from PIL import Image

    height, width = size
    if augment != "imagenet":
        if image.size == (width, height):
            return image
        return image.resize((width, height), Image.BILINEAR)
    # As timm's and torchvision's evaluation transforms: the shorter side to
    # floor(size / 0.875) (256 for 224), the longer in proportion (truncated), then the centre.
    short = math.floor(max(height, width) / CROP_FRACTION)
    if image.width <= image.height:
        resized = (short, int(short * image.height / image.width))
    else:
        resized = (int(short * image.width / image.height), short)
    image = image.resize(resized, Image.BILINEAR)
    top = round((resized[1] - height) / 2.0)
    left = round((resized[0] - width) / 2.0)
    return image.crop((left, top, left + width, top + height))


def split_image(
    split, index: int, shape, augment: str, *, training: bool, rng: np.random.Generator
) -> np.ndarray:
    """Image `index` of a data split (data.Split) as uint8 (C, H, W) at the network's input
    `shape`, with the per-image part of the augmentation: arrays in memory are already at the
    input size; files are read; either is cropped at random (`imagenet`, training, from `rng`)
    or seen as evaluation sees it. Both trainers' loaders read images through this."""
    channels, height, width = shape
    random_view = training and augment == "imagenet"
    if split.files is None and not random_view:
        return split.images[index]
    if split.files is not None:
        image = read_image(split.files[index], channels)
    else:
        image = array_image(split.images[index])
    if random_view:
        view = train_view(image, (height, width), augment, rng)
    else:
        view = eval_view(image, (height, width), augment)
    return to_array(view, channels)


def array_image(array: np.ndarray) -> PILImage.Image:
    """A uint8 (C, H, W) array as a PIL image: RGB for three channels, L for one, the mean of
    the channels as L for any other count."""
    from PIL import Image

    if array.shape[0] == 3:
        return Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)), mode="RGB")
    grey = array[0] if array.shape[0] == 1 else np.round(array.mean(axis=0)).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(grey), mode="L")


def to_array(image: PILImage.Image, channels: int) -> np.ndarray:
    """A mode-L or RGB image as uint8 (channels, height, width)."""
    array = np.asarray(image, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    if array.shape[0] != channels:
        array = np.repeat(array[:1], channels, axis=0) if array.shape[0] == 1 else array
        if array.shape[0] != channels:  # RGB into a network of another channel count
            grey = np.round(array.astype(np.float32).mean(axis=0, keepdims=True))
            array = np.repeat(grey.astype(np.uint8), channels, axis=0)
    return np.ascontiguousarray(array)
