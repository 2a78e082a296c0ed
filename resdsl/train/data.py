"""Datasets for `resdsl train`, loaded into memory as uint8 NCHW arrays at the spec's input
shape. Nothing is ever downloaded.

- `digits`: scikit-learn's bundled 8x8 digits, split 80/20 with a fixed seed.
- CIFAR-10 / CIFAR-100: a local folder in the python-pickle layout of the official archives
  (`data_batch_1..5`, `test_batch`, `batches.meta`; CIFAR-100: `train`, `test`, `meta`).
  Those files are pickles, so they are read with an unpickler that only accepts the few
  numpy and builtin names an array needs: a crafted file cannot run code.
- An image folder: `DIR/<class>/*.png|jpg` (split 90/10 with a fixed seed), or `DIR/train/<class>`
  plus `DIR/test/<class>` (or `val`).

Normalisation statistics (per channel, from the training split) travel with the data; the
trainers normalise on the device, after augmentation.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass

import numpy as np

from .common import TrainError

SPLIT_SEED = 0
CIFAR10_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
CIFAR100_FILES = ["train", "test", "meta"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".gif", ".webp")


@dataclass
class Data:
    name: str
    x_train: np.ndarray  # uint8, (N, C, H, W)
    y_train: np.ndarray  # int64, (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    mean: tuple[float, ...]  # per channel, in [0, 1] units
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --- safe unpickling --------------------------------------------------------------------------

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
}


# The largest official file, CIFAR-100's `train`, is 155 MB; nothing in a CIFAR pickle may
# allocate more than that, whatever its few bytes ask for.
MAX_CIFAR_BYTES = 200 * 2**20


def _bounded(callable_, name: str):
    """`callable_` with the size it would allocate checked first: numpy's `_reconstruct`
    (subtype, shape, dtype) makes an array of `shape`, and `bytes(n)` or `bytearray(n)` n zero
    bytes, before any of the file's data arrives."""

    def call(*args):
        if name == "_reconstruct" and len(args) >= 3:
            shape = args[1] if isinstance(args[1], tuple) else (args[1],)
            if not all(isinstance(n, int) and n >= 0 for n in shape):
                raise pickle.UnpicklingError("an array of an invalid shape")
            itemsize = np.dtype(args[2]).itemsize
            if int(np.prod(shape, dtype=object)) * max(1, itemsize) > MAX_CIFAR_BYTES:
                raise pickle.UnpicklingError(f"an array of shape {shape}, beyond CIFAR's sizes")
        counted = name in ("bytes", "bytearray") and args and isinstance(args[0], int)
        if counted and args[0] > MAX_CIFAR_BYTES:
            raise pickle.UnpicklingError(f"{args[0]:,} bytes, beyond CIFAR's sizes")
        return callable_(*args)

    return call


class _SafeUnpickler(pickle.Unpickler):
    """Accepts numpy arrays, dicts, lists, strings and numbers, each within CIFAR's sizes;
    refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            found = super().find_class(module, name)
            if name in ("_reconstruct", "bytes", "bytearray"):
                return _bounded(found, name)
            return found
        raise pickle.UnpicklingError(f"refusing to load `{module}.{name}`")


def _unpickle(path: str) -> dict:
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise TrainError(f"cannot read `{path}`: {error.strerror or error}") from None
    if size > MAX_CIFAR_BYTES:
        raise TrainError(f"`{path}` is {size:,} bytes; no CIFAR batch is over {MAX_CIFAR_BYTES:,}")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        value = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except OSError as error:
        raise TrainError(f"cannot read `{path}`: {error.strerror or error}") from None
    except Exception as error:  # any malformed pickle
        raise TrainError(f"`{path}` is not a readable CIFAR batch: {error}") from None
    if not isinstance(value, dict):
        raise TrainError(f"`{path}` is not a CIFAR batch (expected a dict)")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in value.items()}


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _batch(path: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise TrainError(f"`{path}` has no `{key}` entry")
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise TrainError(f"`{path}`: expected data of shape (N, 3072), found {data.shape}")
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise TrainError(f"`{path}`: {data.shape[0]} images but {labels.shape[0]} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _require(folder: str, files: list[str], what: str) -> None:
    missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise TrainError(
            f"`{folder}` is not a complete {what} folder (python version of the official "
            f"archive): missing {', '.join(missing)}"
        )


def load_cifar10(folder: str):
    _require(folder, CIFAR10_FILES, "CIFAR-10")
    parts = [_batch(os.path.join(folder, f"data_batch_{i}"), "labels") for i in range(1, 6)]
    x_test, y_test = _batch(os.path.join(folder, "test_batch"), "labels")
    meta = _unpickle(os.path.join(folder, "batches.meta"))
    names = _names(meta.get("label_names", []))
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return x_train, y_train, x_test, y_test, names or [str(i) for i in range(10)]


def load_cifar100(folder: str):
    _require(folder, CIFAR100_FILES, "CIFAR-100")
    x_train, y_train = _batch(os.path.join(folder, "train"), "fine_labels")
    x_test, y_test = _batch(os.path.join(folder, "test"), "fine_labels")
    meta = _unpickle(os.path.join(folder, "meta"))
    names = _names(meta.get("fine_label_names", []))
    return x_train, y_train, x_test, y_test, names or [str(i) for i in range(100)]


# --- image folders ------------------------------------------------------------------------------


def _class_dirs(folder: str) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _read_images(folder: str, classes: list[str], shape) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    for label, name in enumerate(classes):
        directory = os.path.join(folder, name)
        if not os.path.isdir(directory):
            continue
        for file in sorted(os.listdir(directory)):
            if not file.lower().endswith(IMAGE_SUFFIXES):
                continue
            path = os.path.join(directory, file)
            try:
                with Image.open(path) as image:
                    image = image.convert(mode).resize((width, height), Image.BILINEAR)
                    array = np.asarray(image, dtype=np.uint8)
            except (OSError, UnidentifiedImageError) as error:
                raise TrainError(f"cannot read image `{path}`: {error}") from None
            array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
            if channels not in (1, 3):
                array = _channels(array[None], channels)[0]
            images.append(array)
            labels.append(label)
    if not images:
        return np.zeros((0, channels, height, width), np.uint8), np.zeros((0,), np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def load_folder(folder: str, shape):
    train_dir = os.path.join(folder, "train")
    test_dir = next(
        (
            os.path.join(folder, n)
            for n in ("test", "val")
            if os.path.isdir(os.path.join(folder, n))
        ),
        None,
    )
    if os.path.isdir(train_dir) and test_dir is not None:
        classes = _class_dirs(train_dir)
        if not classes:
            raise TrainError(f"`{train_dir}` has no class subfolders")
        x_train, y_train = _read_images(train_dir, classes, shape)
        x_test, y_test = _read_images(test_dir, classes, shape)
    else:
        classes = _class_dirs(folder)
        if not classes:
            raise TrainError(
                f"`{folder}` is not a dataset folder: expected CIFAR pickles or class "
                "subfolders of images (DIR/<class>/*.png, or DIR/train/<class> and "
                "DIR/test/<class>)"
            )
        x, y = _read_images(folder, classes, shape)
        x_train, y_train, x_test, y_test = _split(x, y, 0.1)
    if len(x_train) == 0:
        raise TrainError(f"no images (png, jpg, ...) found under `{folder}`")
    if len(x_test) == 0:
        raise TrainError(f"no test images found under `{folder}`")
    return x_train, y_train, x_test, y_test, classes


# --- digits -----------------------------------------------------------------------------------


def load_digits():
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    # 0..16 grey levels to 0..255, one channel.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    x_train, y_train, x_test, y_test = _split(images, labels, 0.2)
    return x_train, y_train, x_test, y_test, [str(i) for i in range(10)]


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float):
    """A stratified split with a fixed seed: the same images are test images in every run."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        cut = round(len(members) * test_fraction)
        if len(members) > 1:
            cut = min(max(cut, 1), len(members) - 1)
        test.extend(members[:cut])
        train.extend(members[cut:])
    train, test = np.sort(np.asarray(train, int)), np.sort(np.asarray(test, int))
    return x[train], y[train], x[test], y[test]


# --- adapting to the network's input ----------------------------------------------------------


def _channels(x: np.ndarray, channels: int) -> np.ndarray:
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1:
        return np.repeat(x, channels, axis=1)
    grey = np.round(x.astype(np.float32).mean(axis=1, keepdims=True)).astype(np.uint8)
    return grey if channels == 1 else np.repeat(grey, channels, axis=1)


def _resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
    if x.shape[2:] == (height, width) or len(x) == 0:
        return x
    from PIL import Image

    out = np.empty((*x.shape[:2], height, width), np.uint8)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            image = Image.fromarray(x[i, c]).resize((width, height), Image.BILINEAR)
            out[i, c] = np.asarray(image)
    return out


def adapt(x: np.ndarray, shape) -> np.ndarray:
    """Images resized to the network's HxW and given its number of channels."""
    channels, height, width = shape
    return np.ascontiguousarray(_channels(_resize(x, height, width), channels))


# --- entry point --------------------------------------------------------------------------------

NAMES = ("digits", "cifar10", "cifar100")


def detect(source: str) -> tuple[str, str | None]:
    """(dataset kind, folder) for `--data`: a name, or a folder whose layout says what it is."""
    if source in NAMES:
        if source == "digits":
            return "digits", None
        default = os.path.join(
            os.environ.get("RESDSL_DATA", "data"),
            "cifar-10-batches-py" if source == "cifar10" else "cifar-100-python",
        )
        return source, default
    if not os.path.isdir(source):
        raise TrainError(f"--data `{source}`: not a dataset name ({', '.join(NAMES)}) nor a folder")
    for sub, kind in (("cifar-10-batches-py", "cifar10"), ("cifar-100-python", "cifar100")):
        if os.path.isdir(os.path.join(source, sub)):
            return kind, os.path.join(source, sub)
    present = set(os.listdir(source))
    if present & {"data_batch_1", "batches.meta", "test_batch"}:
        return "cifar10", source
    if {"meta", "train"} <= present or {"meta", "test"} <= present:
        return "cifar100", source
    return "folder", source


def load(source: str, shape) -> Data:
    """The dataset `source` names, adapted to `shape` = (channels, height, width)."""
    kind, folder = detect(source)
    if source in NAMES and folder is not None and not os.path.isdir(folder):
        archive = "cifar-10-python.tar.gz" if kind == "cifar10" else "cifar-100-python.tar.gz"
        raise TrainError(
            f"--data {source}: no `{folder}`. resdsl never downloads; get {archive} from "
            "https://www.cs.toronto.edu/~kriz/cifar.html and unpack it in the folder named by "
            f"RESDSL_DATA (now `{os.environ.get('RESDSL_DATA', 'data')}`), or pass the "
            "unpacked folder: --data PATH"
        )
    if kind == "digits":
        x_train, y_train, x_test, y_test, names = load_digits()
    elif kind == "cifar10":
        x_train, y_train, x_test, y_test, names = load_cifar10(folder)
    elif kind == "cifar100":
        x_train, y_train, x_test, y_test, names = load_cifar100(folder)
    else:
        x_train, y_train, x_test, y_test, names = load_folder(folder, shape)
    x_train, x_test = adapt(x_train, shape), adapt(x_test, shape)
    top = int(max(y_train.max(initial=0), y_test.max(initial=0)))
    if top >= len(names):
        names = [*names, *(str(i) for i in range(len(names), top + 1))]
    scaled = x_train.astype(np.float64) / 255.0
    mean = tuple(float(m) for m in scaled.mean(axis=(0, 2, 3)))
    std = tuple(max(float(s), 1e-3) for s in scaled.std(axis=(0, 2, 3)))
    return Data(kind, x_train, y_train, x_test, y_test, names, mean, std)
