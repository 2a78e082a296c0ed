"""Datasets for `resdsl train`, `eval` and `predict`. Nothing is ever downloaded.

- `digits`: scikit-learn's bundled 8x8 digits, split 80/20 with a fixed seed.
- CIFAR-10 / CIFAR-100: a local folder in the python-pickle layout of the official archives
  (`data_batch_1..5`, `test_batch`, `batches.meta`; CIFAR-100: `train`, `test`, `meta`).
  Those files are pickles, so they are read with an unpickler that only accepts the few
  numpy and builtin names an array needs: a crafted file cannot run code.
- An image folder: `DIR/<class>/*.png|jpg` or `DIR/train/<class>` alone (10% held out for
  testing with a fixed seed), or `DIR/train/<class>` beside `DIR/val/<class>`, `DIR/test/<class>`
  or both.

Every dataset has a validation split, on which the trainers choose the best epoch (`best.pt`):
`DIR/val` where it exists, else 10% of each training class held out with a fixed seed (digits
and CIFAR too). The test split is evaluated once, at the end, for the chosen weights; it never
chooses anything. A folder of `train/` and `val/` alone has no test split: its validation
accuracy is what the run reports (ImageNet's layout, whose `val/` is the usual benchmark).

Digits and CIFAR are small and fixed: they are held in memory as uint8 arrays at the network's
input size. An image folder may be ImageNet: only its file list is held, and the trainers'
loaders read, decode and augment each image when a batch needs it (DataLoader workers for
PyTorch, a parallel tf.data pipeline for Keras), so memory stays flat however large the folder.

Normalisation statistics (per channel) travel with the data: from the whole training split of
an in-memory dataset, from a fixed sample of a folder's; the trainers normalise on the device,
after augmentation.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass

import numpy as np

from resdsl.train.common import TrainError

SPLIT_SEED = 0
VAL_FRACTION = 0.1  # of each training class, held out where there is no val/ folder
STATISTICS_SAMPLE = 1_000
CIFAR10_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
CIFAR100_FILES = ["train", "test", "meta"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".gif", ".webp")


@dataclass
class Split:
    """One split's labels and images: in memory (`images`, uint8 (N, C, H, W) at the network's
    input size) or as image files that the loaders read when needed (`files`)."""

    labels: np.ndarray  # int64, (N,)
    images: np.ndarray | None = None
    files: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Data:
    name: str
    train: Split
    test: Split | None  # None: a folder of train/ and val/ alone
    class_names: list[str]
    mean: tuple[float, ...]  # per channel, in [0, 1] units
    std: tuple[float, ...]
    test_name: str = "test"  # what the test split is: "test" (DIR/test) or "held-out"
    note: str | None = None  # where an image folder's splits come from, when worth saying
    # The split the trainers choose the best epoch on: DIR/val, or held out from train.
    val: Split | None = None
    val_name: str = "held-out"  # "val" (DIR/val) or "held-out"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def final(self) -> tuple[Split, str]:
        """The split a run's result and `resdsl eval` report, and its name: the test split, or
        the validation split where there is none."""
        if self.test is not None:
            return self.test, self.test_name
        return self.val, "val"

    @property
    def streamed(self) -> bool:
        """True when the images are files read as needed (an image folder)."""
        return self.train.files is not None


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


def class_labels(names, n: int) -> list[str]:
    """The names of `n` classes: the data's, then the indices of those it does not name (a
    model with more outputs than the data has classes)."""
    return [str(names[i]) if i < len(names) else str(i) for i in range(n)]


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


def _list_images(
    folder: str, classes: list[str], *, training: bool
) -> tuple[list[str], np.ndarray]:
    """The image files under `folder/<class>/`, sorted, and their labels. Nothing is read: the
    loaders read each image when a batch needs it. A training class without images is an
    error (the network could never learn it); a test split may lack a class."""
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        directory = os.path.join(folder, name)
        if not os.path.isdir(directory):
            continue
        found = sorted(
            entry.name
            for entry in os.scandir(directory)
            if entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file()
        )
        if training and not found:
            raise TrainError(
                f"the class folder `{directory}` has no images ({', '.join(IMAGE_SUFFIXES)}): "
                "add some, or remove the folder"
            )
        files.extend(os.path.join(directory, f) for f in found)
        labels.extend([label] * len(found))
    return files, np.asarray(labels, dtype=np.int64)


@dataclass
class Folder:
    """An image folder's splits: `test_name` says what the test split is ("test" or
    "held-out"; `test` is None for train/ and val/ alone), `val` the validation split where
    the folder has one (else the trainers hold one out), `note` where they come from when that
    is worth saying."""

    train: Split
    test: Split | None
    classes: list[str]
    test_name: str = "test"
    note: str | None = None
    val: Split | None = None


def load_folder(folder: str) -> Folder:
    """An image folder as splits of files: `DIR/train/<class>` beside `DIR/val/<class>`,
    `DIR/test/<class>` or both, or `DIR/<class>` (or `DIR/train/<class>` alone) with 10% of
    each class held out for testing with a fixed seed. The other splits' classes must be the
    training split's."""
    train_dir = os.path.join(folder, "train")
    present = [n for n in ("val", "test") if os.path.isdir(os.path.join(folder, n))]
    note, val, test = None, None, None
    if os.path.isdir(train_dir) and present:
        classes = _class_dirs(train_dir)
        if not classes:
            raise TrainError(f"`{train_dir}` has no class subfolders")
        files, labels = _list_images(train_dir, classes, training=True)
        train = Split(labels, files=files)
        for split in present:
            other = os.path.join(folder, split)
            extra = [c for c in _class_dirs(other) if c not in classes]
            if extra:
                raise TrainError(
                    f"the class folder `{os.path.join(other, extra[0])}` has no counterpart in "
                    f"`{train_dir}`"
                    + (f" (nor {', '.join(extra[1:])})" if extra[1:] else "")
                    + f": a {split} split's classes must be the training split's"
                )
            files, labels = _list_images(other, classes, training=False)
            if split == "val":
                val = Split(labels, files=files)
            else:
                test = Split(labels, files=files)
        if test is None:
            note = (
                f"`{os.path.join(folder, 'val')}` chooses the best epoch and is what the run "
                f"reports: there is no `{os.path.join(folder, 'test')}`"
            )
        name = "test"
    else:
        source = folder
        if os.path.isdir(train_dir) and _class_dirs(train_dir):
            others = [c for c in _class_dirs(folder) if c != "train"]
            if others:
                raise TrainError(
                    f"`{folder}` has `train/` but neither `test/` nor `val/` beside it (and "
                    f"{', '.join(f'`{c}/`' for c in others)}): put the test images in "
                    f"`{os.path.join(folder, 'test', '<class>')}`, or leave `train/` alone "
                    "there to hold out 10% of it"
                )
            source = train_dir
            note = f"`{train_dir}` has no test/ or val/ beside it: 10% of each class is held out"
        classes = _class_dirs(source)
        if not classes:
            raise TrainError(
                f"`{folder}` is not a dataset folder: expected CIFAR pickles or class "
                "subfolders of images (DIR/<class>/*.png, or DIR/train/<class> and "
                "DIR/test/<class>)"
            )
        files, labels = _list_images(source, classes, training=True)
        train, test = _divide(Split(labels, files=files), 0.1)
        name = "held-out"
    if len(train) == 0:
        raise TrainError(f"no images (png, jpg, ...) found under `{folder}`")
    if test is not None and len(test) == 0:
        raise TrainError(f"no test images found under `{folder}`")
    if val is not None and len(val) == 0:
        raise TrainError(f"no validation images found under `{os.path.join(folder, 'val')}`")
    return Folder(train, test, classes, name, note, val)


def _divide(split: Split, fraction: float) -> tuple[Split, Split]:
    """`split` in two, stratified with a fixed seed: the rest, and `fraction` of each class."""
    kept, held = _split(split.labels, fraction)

    def part(index: np.ndarray) -> Split:
        images = None if split.images is None else split.images[index]
        files = None if split.files is None else [split.files[i] for i in index]
        return Split(split.labels[index], images, files)

    return part(kept), part(held)


def hold_out_validation(train: Split) -> tuple[Split, Split | None]:
    """(training, validation): `VAL_FRACTION` of each class of `train` held out with a fixed
    seed, the same images in every run; (train, None) where it is too small to spare any (a
    class needs two images): `resdsl eval` needs no validation split, the trainers refuse
    (:func:`.common.data_and_recipe`)."""
    kept, val = _divide(train, VAL_FRACTION)
    if len(val) == 0 or len(kept) == 0:
        return train, None
    return kept, val


def _sampled_statistics(files: list[str], shape, augment: str):
    """Per-channel mean and standard deviation (in [0, 1] units) of up to `STATISTICS_SAMPLE`
    training images chosen with a fixed seed, each seen as evaluation sees it: the same
    figures in every run, from a few seconds of reading whatever the folder's size."""
    from resdsl.train.transforms import eval_view, read_image, to_array

    channels, height, width = shape
    rng = np.random.default_rng(SPLIT_SEED)
    chosen = sorted(rng.permutation(len(files))[:STATISTICS_SAMPLE])
    sums = np.zeros(channels)
    squares = np.zeros(channels)
    for index in chosen:
        image = eval_view(read_image(files[index], channels), (height, width), augment)
        pixels = to_array(image, channels).reshape(channels, -1).astype(np.float64) / 255.0
        sums += pixels.mean(axis=1)
        squares += (pixels**2).mean(axis=1)
    mean = sums / len(chosen)
    std = np.sqrt(np.maximum(squares / len(chosen) - mean**2, 0.0))
    return tuple(float(m) for m in mean), tuple(max(float(s), 1e-3) for s in std)


# --- digits -----------------------------------------------------------------------------------


def load_digits():
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    # 0..16 grey levels to 0..255, one channel.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train, test = _split(labels, 0.2)
    return images[train], labels[train], images[test], labels[test], [str(i) for i in range(10)]


def _split(y: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The indices of a stratified split with a fixed seed: the same images are test images
    in every run."""
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
    return np.sort(np.asarray(train, int)), np.sort(np.asarray(test, int))


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


def load(source: str, shape, augment: str = "cifar") -> Data:
    """The dataset `source` names, for a network whose input is `shape` = (channels, height,
    width): arrays adapted to it, or a folder's file list (whose statistics are taken from
    images seen as the `augment` recipe evaluates them)."""
    kind, folder = detect(source)
    if source in NAMES and folder is not None and not os.path.isdir(folder):
        archive = "cifar-10-python.tar.gz" if kind == "cifar10" else "cifar-100-python.tar.gz"
        raise TrainError(
            f"--data {source}: no `{folder}`. resdsl never downloads; get {archive} from "
            "https://www.cs.toronto.edu/~kriz/cifar.html and unpack it in the folder named by "
            f"RESDSL_DATA (now `{os.environ.get('RESDSL_DATA', 'data')}`), or pass the "
            "unpacked folder: --data PATH"
        )
    if kind == "folder":
        found = load_folder(folder)
        train, val, val_name = found.train, found.val, "val"
        if val is None:
            train, val = hold_out_validation(train)
            val_name = "held-out"
        mean, std = _sampled_statistics(train.files, shape, augment)
        return Data(
            kind,
            train,
            found.test,
            found.classes,
            mean,
            std,
            test_name=found.test_name,
            note=found.note,
            val=val,
            val_name=val_name,
        )
    if kind == "digits":
        x_train, y_train, x_test, y_test, names = load_digits()
    elif kind == "cifar10":
        x_train, y_train, x_test, y_test, names = load_cifar10(folder)
    else:
        x_train, y_train, x_test, y_test, names = load_cifar100(folder)
    x_train, x_test = adapt(x_train, shape), adapt(x_test, shape)
    top = int(max(y_train.max(initial=0), y_test.max(initial=0)))
    if top >= len(names):
        names = [*names, *(str(i) for i in range(len(names), top + 1))]
    train, val = hold_out_validation(Split(y_train, x_train))
    scaled = train.images.astype(np.float64) / 255.0
    mean = tuple(float(m) for m in scaled.mean(axis=(0, 2, 3)))
    std = tuple(max(float(s), 1e-3) for s in scaled.std(axis=(0, 2, 3)))
    test = Split(y_test, x_test)
    return Data(kind, train, test, names, mean, std, val=val)
