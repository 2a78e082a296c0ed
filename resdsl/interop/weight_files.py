"""Weights files from elsewhere: read so that what they declare is checked before it is used.

A weights file is untrusted input. Its sizes, names and structure come from whoever wrote it,
and every command that reads one (`import`, `eval`, `predict`, `export`, `port-weights`)
meets it here, where what the file declares is checked before anything is built from it or
read into memory:

* PyTorch files: the storages the pickle declares are compared with the bytes the file holds
  (:func:`_check_storages`, which reads the pickle with inert placeholders for everything it
  names, so nothing runs and nothing is allocated), then `torch.load(weights_only=True)` reads
  it, a zip checkpoint memory-mapped (no tensor's data is read until it is used). The state
  dict must map names to dense floating-point tensors (:func:`_check_tensors`).
* Keras files: their structure is checked before Keras opens them, by
  :mod:`resdsl.interop.keras_files`.
* Against a spec (:func:`check_state`): the classifier's size within the language's limit,
  every tensor's shape the spec's, every value finite, before a model is built.

What cannot be used is an :class:`UnreadableWeights` saying what the file is (or a
:class:`resdsl.interop.weights.PortError` naming the first tensor that does not fit); the commands
print it as one line through :func:`refuse`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from typing import NoReturn

from resdsl.diagnostics.core import printable
from resdsl.interop.weights import (
    KERAS_CHECKPOINT_WEIGHTS,
    PortError,
    classifier,
    classifier_size,
    state_dict_shapes,
    state_problem,
)
from resdsl.ir import Network
from resdsl.language.schema import MAX_CLASSES

__all__ = [
    "TORCH_EXPECTED",
    "TRAINED_EXPECTED",
    "UnreadableWeights",
    "check_record",
    "check_state",
    "file_kind",
    "first_line",
    "is_zip",
    "kind_of",
    "load_torch_checkpoint",
    "pickled_module",
    "read_torch_checkpoint",
    "read_torch_weights",
    "read_trained",
    "refuse",
    "unwrapped_names",
]


class UnreadableWeights(ValueError):
    """A file that cannot be read as weights: empty, truncated, another kind of file, a pickle
    that would run code, sizes it does not hold. The message says what the file is and what
    was expected; the caller names the file."""


def refuse(message: str, status: int = 2) -> NoReturn:
    """Print `error: MESSAGE` on standard error and exit with `status` (2: a file the command
    cannot use). Messages quote what files hold (tensor and class names, paths): their control
    characters are made visible as diagnostics make them, so that an escape sequence in a
    tensor's name cannot retitle the terminal, nor a newline forge an `error:` line."""
    import sys

    import click

    click.echo(f"error: {printable(message)}", err=True)
    sys.exit(status)


# --------------------------------------------------------------------------- what a file is

# The first bytes of files that are not weights, for an error that says what was given.
_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "hdf5"),  # Keras' .weights.h5
    (b"\x80", "torch"),  # a pickle (protocol 2 on): torch.save's legacy format
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
)
# The members a Keras 3 archive (.keras) starts with; torch.save's archive starts with its
# pickle, `<name>/data.pkl`.
_KERAS_MEMBERS = ("metadata.json", "config.json", "model.weights.h5", "model.weights.npz")
KERAS_ARCHIVE = "a Keras model archive (.keras)"
TORCH_EXPECTED = "a PyTorch state dict or checkpoint (what torch.save writes)"
TRAINED_EXPECTED = (
    "a PyTorch checkpoint or state dict (.pt), a Keras .weights.h5 file, or a "
    "`resdsl train --backend keras` checkpoint folder"
)


def kind_of(head: bytes) -> str:
    """What the first bytes of a file say it is: "torch" (torch.save's zip or pickle), "hdf5"
    (Keras weights), or words for anything else ("an empty file", "a zip archive", "a PNG
    image", "a text file", "a file of another kind")."""
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        # The first member's name, from its local header: bounded, unlike the directory.
        size = struct.unpack("<H", head[26:28])[0] if len(head) >= 30 else 0
        first = head[30 : 30 + size].decode("utf-8", errors="replace")
        if first in _KERAS_MEMBERS:
            return KERAS_ARCHIVE
        return "torch" if first.endswith("data.pkl") or len(head) < 30 + size else "a zip archive"
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:  # perhaps cut inside a character; the rest says enough
        text = head[:-3].decode("utf-8", errors="replace")
    if "\0" not in text and "\ufffd" not in text:
        return "a text file"
    return "a file of another kind"


def file_kind(path: str | os.PathLike) -> str:
    """:func:`kind_of` a file's first 512 bytes. Raises OSError when it cannot be opened."""
    with open(path, "rb") as handle:
        return kind_of(handle.read(512))


def is_zip(path: str | os.PathLike) -> bool:
    """Whether a file starts as a zip archive does, as torch.load decides: zipfile's
    `is_zipfile` looks for a directory at the end, which a pickle's tensor data can mimic."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


# --------------------------------------------------------------------------- PyTorch files


class _Placeholder:
    """Whatever a pickle names (a class, a function), standing in for it: built, called and
    given state without doing anything, so that a pickle can be read for the storages it
    declares and nothing in it runs."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs) -> _Placeholder:
        return _Placeholder()

    def __setstate__(self, state) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        pass

    def append(self, value) -> None:
        pass

    def extend(self, values) -> None:
        pass


class _StoragePlaceholder(_Placeholder):
    itemsize = 1


_STORAGE_CLASSES: dict[str, type] = {}


def _storage_class(name: str) -> type:
    """A placeholder for storage type `name` (`FloatStorage`) that knows its element size; one
    class per name torch knows, so a pickle cannot make more."""
    import torch.serialization

    if name not in _STORAGE_CLASSES:
        size = torch.serialization.StorageType(name).dtype.itemsize  # KeyError: not a storage
        _STORAGE_CLASSES[name] = type(name, (_StoragePlaceholder,), {"itemsize": size})
    return _STORAGE_CLASSES[name]


class _Declared(pickle.Unpickler):
    """Reads a torch.save pickle for the storages it declares, {key: (bytes, location)}, and
    the views into them (the legacy format's), with placeholders for everything else."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.storages: dict[str, tuple[int, str]] = {}
        self.views: list[tuple[str, int, int]] = []  # (root key, offset, size) in elements

    def find_class(self, module: str, name: str):
        if module == "torch" and name.endswith("Storage"):
            with contextlib.suppress(KeyError):
                return _storage_class(name)
        return _Placeholder

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy: (..., numel, view_metadata)
        if isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage":
            kind, key, location, numel = pid[1:5]
            if not (isinstance(numel, int) and isinstance(location, str) and numel >= 0):
                raise UnreadableWeights("it declares a storage torch.save does not write")
            size = getattr(kind, "itemsize", 1) if isinstance(kind, type) else 1
            self.storages[str(key)] = (numel * size, location)
            view = pid[5] if len(pid) == 6 else None
            if isinstance(view, tuple) and len(view) == 3:
                self.views.append((str(key), int(view[1]) * size, int(view[2]) * size))
        return _Placeholder()


def _check_storages(path: str, size: int) -> bool:
    """Refuse a PyTorch file whose pickle declares storages the file does not hold, before
    torch.load allocates them: in a zip checkpoint each storage is its own record, of exactly
    its size, stored (torch.save never compresses); the legacy format's storages follow its
    pickles, so together they fit in the file. A meta tensor's storage holds nothing. True for
    a zip checkpoint, which is then safe to memory-map."""
    if is_zip(path):
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                raise UnreadableWeights("a zip archive that names a member twice")
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    raise UnreadableWeights(
                        f"`{info.filename}` is compressed or encrypted; torch.save writes its "
                        "archive stored, as it is read in place"
                    )
            prefix = names[0].split("/")[0] if names else ""
            sizes = {info.filename: info.file_size for info in infos}
            if f"{prefix}/data.pkl" not in sizes:
                return True  # not torch.save's layout: torch.load says what it is
            with archive.open(f"{prefix}/data.pkl") as stream:
                declared = _Declared(stream)
                declared.load()
        for key, (nbytes, location) in declared.storages.items():
            record = f"{prefix}/data/{key}"
            _located(location)
            if record not in sizes:
                raise UnreadableWeights(f"storage `{key}` is declared, but has no record")
            if sizes[record] != nbytes:
                raise UnreadableWeights(
                    f"storage `{key}` declares {nbytes:,} bytes; its record holds "
                    f"{sizes[record]:,}: damaged"
                )
        return True
    import torch.serialization

    with open(path, "rb") as handle:
        declared = _Declared(handle)
        if declared.load() != torch.serialization.MAGIC_NUMBER:
            return False  # not torch.save's legacy layout: torch.load says what it is
        declared.load(), declared.load()  # the protocol version, the system's sizes
        declared.load()
    total = 0
    for nbytes, location in declared.storages.values():
        _located(location)
        total += nbytes
    if total > size:
        raise UnreadableWeights(
            f"its tensors declare {total:,} bytes of data in a file of {size:,} bytes"
        )
    for key, offset, length in declared.views:
        if key in declared.storages and offset + length > declared.storages[key][0]:
            raise UnreadableWeights(f"a view of storage `{key}` reaches past its end")
    return False


def _located(location: str) -> None:
    if location.startswith("meta"):
        raise UnreadableWeights("it holds a meta tensor, which has a shape but no data")


def load_torch_checkpoint(path: str | os.PathLike) -> dict:
    """A state dict from a `.pt` file, read with `weights_only=True` (no code runs); a
    checkpoint that wraps it under `state_dict` or `model` is unwrapped, and a wrapped model's
    names are its own again (:func:`unwrapped_names`)."""
    return read_torch_checkpoint(path)[0]


def read_torch_checkpoint(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """The state dict of a `.pt` file (see :func:`load_torch_checkpoint`), and the data record
    a `resdsl train` checkpoint keeps beside it (`data`), or None: the one reader of PyTorch
    files for every command, so that a checkpoint wrapped under `state_dict` or `model`, or
    saved from a wrapped model (DDP's `module.` names, torch.compile's `_orig_mod.`), reads the
    same in `import`, `train --init`, `eval`, `predict`, `export` and `port-weights`. The
    storages it declares are checked against the bytes it holds first
    (:func:`_check_storages`); a zip checkpoint is memory-mapped, so that no tensor's data is
    read until it is used. Raises OSError when it cannot be opened, UnreadableWeights when it
    is not a state dict of dense floating-point tensors under names."""
    import torch

    path = os.fspath(path)
    kind = file_kind(path)
    if kind == "hdf5":
        raise UnreadableWeights(f"a Keras weights file (HDF5), not {TORCH_EXPECTED}")
    if kind != "torch":
        raise UnreadableWeights(f"{kind}, not {TORCH_EXPECTED}")
    try:
        mapped = _check_storages(path, os.path.getsize(path))
        with warnings.catch_warnings():  # torch's warnings ask to "file an issue"
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=mapped)
    except (OSError, UnreadableWeights):
        raise
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        module = pickled_module(path)
        if module is not None:
            raise UnreadableWeights(
                f"a pickled whole model (`{module}`, an nn.Module), not its weights; it is not "
                "read, as loading it would run code: save a state dict instead, "
                "torch.save(model.state_dict(), PATH)"
            ) from None
        raise UnreadableWeights(_refusal(error)) from None
    record = data.get("data") if isinstance(data, Mapping) else None
    for key in ("state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping):
        raise UnreadableWeights(f"it holds {_a(type(data).__name__)}, not a state dict of tensors")
    _check_tensors(data)
    return unwrapped_names(data), record


# What a wrapper puts before every name of the model it wraps: DistributedDataParallel and
# DataParallel `module.`, torch.compile `_orig_mod.` (a compiled DDP model has both).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrapped_names(state: Mapping) -> dict:
    """`state` with the names the model had before it was wrapped: a prefix of
    :data:`WRAPPER_PREFIXES` that every name shares is dropped, as often as it occurs."""
    state = dict(state)
    while state:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)
        if prefix is None:
            break
        state = {key.removeprefix(prefix): value for key, value in state.items()}
    return state


def _check_tensors(state: Mapping) -> None:
    """Every entry of a state dict is a dense tensor with data under a name, and floating
    point (batch norm's step counters are integers, or floats in some files)."""
    import torch

    for key, tensor in state.items():
        if not isinstance(key, str):
            raise UnreadableWeights(f"its state dict has a key {key!r}, not a tensor's name")
        if not isinstance(tensor, torch.Tensor):
            raise UnreadableWeights(f"`{key}` is {_a(type(tensor).__name__)}, not a tensor")
        if tensor.layout != torch.strided or tensor.device.type == "meta":
            what = "a meta tensor, a shape without data" if tensor.is_meta else "sparse"
            raise UnreadableWeights(f"`{key}` is {what}; weights are dense tensors")
        counter = key.endswith("num_batches_tracked")
        dtype = str(tensor.dtype).removeprefix("torch.")
        if not tensor.is_floating_point() and not (counter and dtype in _INTEGERS):
            raise UnreadableWeights(
                f"`{key}` holds {dtype} values; "
                + ("a step counter is an integer" if counter else "weights are floating point")
            )


_INTEGERS = ("uint8", "int8", "int16", "int32", "int64")  # a step counter's dtypes

_MODULE_STATE = frozenset({"_parameters", "_buffers", "_modules"})  # an nn.Module's __dict__


def pickled_module(path: str | os.PathLike) -> str | None:
    """The class of the object a torch.save file holds, where that is a whole model (an
    `nn.Module`: `torch.save(model, PATH)`); None for anything else. Read from the pickle's
    opcodes, never unpickled (nothing in the file runs): a module's pickle names a class from
    `torch.nn.modules`, or holds the `_parameters`, `_buffers` and `_modules` of a module's
    state. The class named is the pickle's first (the top-level object's)."""
    import pickletools

    try:
        if is_zip(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
                info = archive.getinfo(name) if name else None
                small = info is not None and info.file_size <= 64 << 20
                streams = [archive.read(name)] if small else []
        else:  # the legacy format: pickles one after another (magic, version, info, object)
            with open(path, "rb") as handle:
                streams = [handle.read(64 << 20)]
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError):
        return None
    for data in streams:
        stream = io.BytesIO(data)
        for _ in range(4):  # the legacy format's object is its fourth pickle
            classes, strings, recent = [], set(), []
            try:
                for opcode, arg, _ in pickletools.genops(stream):
                    if isinstance(arg, str) and "UNICODE" in opcode.name:
                        strings.add(arg)
                        recent = [*recent[-1:], arg]
                    if opcode.name == "GLOBAL":
                        classes.append(arg.replace(" ", "."))
                    elif opcode.name == "STACK_GLOBAL" and len(recent) == 2:
                        classes.append(".".join(recent))
            except Exception:  # the end of the pickles (storage bytes follow) or damage
                break
            torch_nn = any(c.startswith("torch.nn.modules.") for c in classes)
            if classes and (torch_nn or _MODULE_STATE.issubset(strings)):
                return classes[0]
    return None


def _refusal(error: BaseException) -> str:
    """Why a PyTorch file could not be read, in a line of our own: torch's messages run to
    paragraphs that suggest weights_only=False or filing an issue."""
    text = str(error)
    blocked = re.search(r"unsupported GLOBAL (\S+)", text)
    if blocked:
        return (
            f"it holds a pickled `{blocked.group(1)}`, which weights do not need; it is not "
            "loaded, as loading could run code"
        )
    truncated = isinstance(error, EOFError | zipfile.BadZipFile) or "central directory" in text
    if truncated:
        return "it is truncated or damaged: it ends before the end of its data"
    return f"not {TORCH_EXPECTED}: torch.load(weights_only=True) cannot read it"


# --------------------------------------------------------------------------- against a spec


def check_state(state: Mapping, network: Network, target: str = "the network") -> int | None:
    """Check a state dict (names and dense floating-point tensors, as the readers give it)
    against `network` before a model is built from it, and return the class count to build
    with (None: the spec's). The classifier, sized by the state, must be within the language's
    limit; every tensor must have the shape the spec gives it (a PortError names the first
    that does not); every value must be finite (an UnreadableWeights names the tensor)."""
    import torch

    classes = classifier_size(state, network)
    if classes is not None and not 1 <= classes <= MAX_CLASSES:
        raise PortError(
            f"`{classifier(network)[0]}.weight` declares {classes:,} classes; a spec has 1 to "
            f"{MAX_CLASSES:,}"
        )
    problem = state_problem(state, state_dict_shapes(network, classes), target)
    if problem:
        raise PortError(problem)
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UnreadableWeights(f"`{key}` holds NaN or infinite values")
    return classes


def check_record(record, network: Network, classes: int | None) -> dict | None:
    """The data record a `resdsl train` file keeps (see `train.common.data_record`), checked
    field by field against `network` (one mean and one deviation per input channel, a class
    name per output); None where there is none. Raises UnreadableWeights naming the field."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise UnreadableWeights(f"its data record is {_a(type(record).__name__)}, not a mapping")
    channels = network.input.channels
    for field in ("mean", "std"):
        values = record.get(field)
        numbers = isinstance(values, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        )
        if not numbers or len(values) != channels or (field == "std" and min(values) <= 0):
            raise UnreadableWeights(
                f"its data record's `{field}` is {_brief(values)}, not {channels} "
                + ("positive numbers" if field == "std" else "numbers")
            )
    names = record.get("classes")
    if names is not None:
        outputs = classes if classes is not None else network.classes
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise UnreadableWeights(f"its data record's `classes` is {_brief(names)}, not names")
        if names and len(names) != outputs:
            raise UnreadableWeights(
                f"its data record names {len(names)} classes; the weights have {outputs} outputs"
            )
    for field in ("augment", "name"):
        if record.get(field) is not None and not isinstance(record[field], str):
            raise UnreadableWeights(f"its data record's `{field}` is {_brief(record[field])}")
    return record


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries' run to paragraphs), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_torch_weights(
    path: str | os.PathLike, network: Network, target: str = "the network"
) -> tuple[dict, dict | None]:
    """:func:`read_torch_checkpoint`, checked against `network` (named `target` in errors) by
    :func:`check_state` and :func:`check_record` before anything is built from it."""
    state, record = read_torch_checkpoint(path)
    classes = check_state(state, network, target)
    return state, check_record(record, network, classes)


def read_trained(
    path: str | os.PathLike, network: Network, target: str = "the network"
) -> tuple[dict, dict | None]:
    """The PyTorch state dict of trained weights for `network`, and the data record saved with
    them (None for weights from elsewhere): a PyTorch checkpoint or state dict, or a Keras
    weights file or checkpoint folder (`resdsl train --backend keras`'s `best.weights.h5`,
    `checkpoint/`) ported with :func:`resdsl.interop.keras_files.read_keras_weights`; both checked
    against `network` before a model is built at the file's size. Raises OSError for a file
    that cannot be opened, UnreadableWeights for anything else, PortError for weights of
    another network (`target` names it)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inner = os.path.join(path, KERAS_CHECKPOINT_WEIGHTS)
        if os.path.isfile(inner):
            return read_trained(inner, network, target)
        best = [n for n in ("best.pt", "best.weights.h5") if os.path.isfile(os.path.join(path, n))]
        hint = f" (a run folder: give its `{best[0]}`)" if best else ""
        raise UnreadableWeights(f"a folder{hint}, not {TRAINED_EXPECTED}")
    kind = file_kind(path)
    if kind == "torch":
        return read_torch_weights(path, network, target)
    if kind != "hdf5":
        raise UnreadableWeights(f"{kind}, not {TRAINED_EXPECTED}")
    from resdsl.interop.keras_files import read_keras_weights

    state, record = read_keras_weights(path, network)
    classes = check_state(state, network, target)
    return state, check_record(record, network, classes)
