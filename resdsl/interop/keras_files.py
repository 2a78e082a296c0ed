"""Keras weights files from elsewhere: their structure checked before Keras or h5py reads data.

A Keras 3 `.weights.h5` file is HDF5, whose structure can hold far more than weights: links to
other objects and other files, objects reached along two paths (a cycle that a recursive
reader never leaves), datasets whose data lies in other files or is assembled from them
(virtual), strings and compound records, attributes of any size. :func:`h5_variables` visits
every object once, by its one hard link, reads only the structure, and refuses all of these
with the path named; links are never followed. A `.keras` archive's `model.weights.h5` is read
in place where it is stored, as Keras writes it, and otherwise decompressed to a temporary
file within Keras' own bound on the ratio (:func:`open_h5`); it is never extracted whole
first. :func:`read_keras_weights` then checks the layout against the spec, the classifier's
size within the language's limit, before a model of that size is built.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping

from resdsl.interop.weight_files import UnreadableWeights, file_kind, first_line, is_zip, kind_of
from resdsl.interop.weights import (
    KERAS_RECORD,
    PortError,
    build_generated,
    classifier,
    fit_problem,
    keras_to_state_dict,
    layer_pairs,
)
from resdsl.ir import Network
from resdsl.language.schema import MAX_CLASSES

__all__ = ["h5_variables", "keras_layout", "open_h5", "read_keras_weights"]

_MAX_OBJECTS = 200_000  # ResNet-1202's weights file has about 7,000
_MAX_ATTRIBUTE = 16 << 20  # a data record of 100,000 class names fits
# A compressed member of a .keras archive (Keras writes them stored) is decompressed to a
# temporary file only within Keras' own bound: more than 100 times its stored size, past 1 MiB,
# is a decompression bomb.
_MAX_EXPANSION = 100
_EXPANSION_FLOOR = 1 << 20
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


@contextlib.contextmanager
def open_h5(path: str) -> Iterator:
    """The h5py file of Keras weights: a `.weights.h5` file, or the `model.weights.h5` of a
    `.keras` archive, read in place where it is stored (as Keras writes it) and otherwise
    decompressed to a temporary file within a bound. Raises UnreadableWeights for a file
    that is neither, or damaged."""
    import h5py

    if not is_zip(path):
        kind = file_kind(path)
        if kind != "hdf5":
            raise UnreadableWeights(f"{kind}, not a Keras weights file (HDF5)")
        with _h5_file(h5py, path) as handle:
            yield handle
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UnreadableWeights(f"a damaged zip archive ({first_line(error)})") from None
    with archive, tempfile.TemporaryDirectory(prefix="resdsl-keras-") as folder:
        member = _weights_member(archive)
        kind = kind_of(_member_head(archive, member))
        if kind != "hdf5":
            raise UnreadableWeights(
                f"its `{member.filename}` is {'a PyTorch zip' if kind == 'torch' else kind}, "
                "not Keras weights (HDF5)"
            )
        if member.compress_type == zipfile.ZIP_STORED:
            source = _Window(archive.fp, _member_start(archive, member), member.file_size)
        else:
            source = os.path.join(folder, "model.weights.h5")
            _extract(archive, member, source)
        with _h5_file(h5py, source) as handle:
            yield handle


@contextlib.contextmanager
def _h5_file(h5py, source) -> Iterator:
    try:
        handle = h5py.File(source, "r")
    except Exception as error:  # h5py raises OSError, and others for damaged superblocks
        raise UnreadableWeights(f"a damaged HDF5 file ({first_line(error)})") from None
    with handle:
        yield handle


def _weights_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    try:
        member = archive.getinfo("model.weights.h5")
    except KeyError:
        raise UnreadableWeights("a zip archive without Keras' `model.weights.h5`") from None
    if member.flag_bits & 0x1:
        raise UnreadableWeights("its `model.weights.h5` is encrypted")
    if member.compress_type not in _ZIP_METHODS:
        raise UnreadableWeights(
            f"its `model.weights.h5` is compressed by method {member.compress_type}, which "
            "neither Keras nor Python's zipfile writes"
        )
    if (
        member.file_size > _EXPANSION_FLOOR
        and member.file_size > _MAX_EXPANSION * member.compress_size
    ):
        raise UnreadableWeights(
            f"its `model.weights.h5` declares {member.file_size:,} bytes stored in "
            f"{member.compress_size:,}: a decompression bomb"
        )
    return member


def _member_start(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> int:
    """Where a member's data starts: after its local header, whose name and extra field may
    differ in length from the central directory's."""
    archive.fp.seek(member.header_offset)
    header = archive.fp.read(30)
    if len(header) != 30 or not header.startswith(b"PK\x03\x04"):
        raise UnreadableWeights("a damaged zip archive (a member's header is missing)")
    name, extra = struct.unpack("<HH", header[26:30])
    start = member.header_offset + 30 + name + extra
    if start + member.file_size > os.fstat(archive.fp.fileno()).st_size:
        raise UnreadableWeights("a truncated zip archive (a member ends past its end)")
    return start


def _member_head(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(member) as stream:
            return stream.read(512)
    except Exception as error:  # zlib.error, lzma.LZMAError, EOFError, BadZipFile, ...
        raise UnreadableWeights(
            f"its `{member.filename}` is damaged ({first_line(error)})"
        ) from None


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: str) -> None:
    """Decompress a member to `target` in pieces: never more than its declared size (zipfile
    stops there, and checks the CRC), which :func:`_weights_member` has bounded."""
    try:
        with archive.open(member) as stream, open(target, "wb") as out:
            while piece := stream.read(1 << 20):
                out.write(piece)
    except OSError:
        raise
    except Exception as error:  # zlib.error, lzma.LZMAError, EOFError, BadZipFile, ...
        raise UnreadableWeights(
            f"its `{member.filename}` is damaged ({first_line(error)})"
        ) from None


class _Window(io.RawIOBase):
    """A stored member of a zip archive as a file of its own, read where it lies."""

    def __init__(self, handle, start: int, size: int) -> None:
        super().__init__()
        self._handle, self._start, self._size, self._at = handle, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._at, 2: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self._size - self._at))
        self._handle.seek(self._start + self._at)
        data = self._handle.read(count)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


def h5_variables(handle) -> dict[str, tuple[int, ...]]:
    """Every dataset of an HDF5 file, by path, and its shape; only the file's structure is
    read. Every object is reached through its one hard link: a soft or external link (not
    followed), an object linked from two places (a cycle), a named datatype, a virtual
    dataset or one whose data lies in another file, a dataset without a dataspace, of anything
    but floating-point numbers (Keras' bfloat16 and integer counters excepted), and attributes
    larger than a data record are refused with the path named."""
    import h5py

    variables: dict[str, tuple[int, ...]] = {}
    pending = [("", handle)]
    count = 0
    try:
        _check_attributes("/", handle)
        while pending:
            path, group = pending.pop()
            for name in group:  # the links' names: nothing is resolved yet
                count += 1
                if count > _MAX_OBJECTS:
                    raise UnreadableWeights(f"an HDF5 file of more than {_MAX_OBJECTS:,} objects")
                where = f"{path}/{name}" if path else name
                link = group.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    kind = "an external" if isinstance(link, h5py.ExternalLink) else "a soft"
                    raise UnreadableWeights(
                        f"`{where}` is {kind} link; links in a weights file are not followed"
                    )
                item = group.get(name)
                if h5py.h5o.get_info(item.id).rc != 1:
                    raise UnreadableWeights(f"`{where}` is linked from more than one place")
                _check_attributes(where, item)
                if isinstance(item, h5py.Group):
                    pending.append((where, item))
                elif isinstance(item, h5py.Dataset):
                    variables[where] = _dataset_shape(where, item)
                else:
                    raise UnreadableWeights(f"`{where}` is a {type(item).__name__}, not weights")
    except UnreadableWeights:
        raise
    except Exception as error:  # h5py's KeyError, OSError, TypeError for damaged structure
        raise UnreadableWeights(f"a damaged HDF5 file ({first_line(error)})") from None
    return variables


def _dataset_shape(where: str, dataset) -> tuple[int, ...]:
    if dataset.is_virtual or dataset.external:
        raise UnreadableWeights(f"`{where}` keeps its data in other files; it is not read")
    if dataset.shape is None:
        raise UnreadableWeights(f"`{where}` has no dataspace (an empty dataset)")
    dtype = dataset.dtype
    bfloat16 = dtype.itemsize == 2 and _attribute(dataset, "dtype") == "bfloat16"
    # Keras keeps counters as integers: the optimizer's iterations, a seed generator's state.
    counter = dtype.kind in "iu" and (
        not where.startswith("layers/") or "/seed_generator/" in where
    )
    if dtype.kind != "f" and not bfloat16 and not counter:
        raise UnreadableWeights(f"`{where}` holds {dtype}, not floating-point numbers")
    dataset.id.get_storage_size()  # walks a chunked dataset's index: a damaged one fails here
    return tuple(int(n) for n in dataset.shape)


def _check_attributes(where: str, item) -> None:
    for name in item.attrs:
        if item.attrs.get_id(name).get_storage_size() > _MAX_ATTRIBUTE:
            raise UnreadableWeights(f"attribute `{name}` of `{where}` is too large to be read")


def _attribute(item, name: str):
    """An attribute a reader relies on (a string), or None: other types are not it."""
    if name not in item.attrs:
        return None
    value = item.attrs[name]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None


# Reading a file's structure takes well under a second; a child still reading after this long
# is stuck in a damaged file, and its reader is stopped.
_READ_SECONDS = 120
_CHILD_MEMORY = 2 << 30  # the address space the reading child may add to its own


def keras_layout(path: str) -> tuple[dict[str, tuple[int, ...]], str | None]:
    """The variables of a Keras weights file (or `.keras` archive) under its `layers` group,
    `layers/<group>/vars/<i>` to its shape, checked by :func:`h5_variables` and for Keras'
    layout, and the text of its data record (`resdsl_data`) or None.

    Read in a child process, with its own bound on memory: HDF5's C library reads a damaged
    file's metadata unchecked (Keras' files carry no checksums), and fuzzing found files that
    crash it. A crash or a read that does not end is then this file's error, and the reads
    that follow in this process (Keras' loader) meet only metadata that has been read."""
    import subprocess
    import sys

    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (package, os.environ.get("PYTHONPATH")))),
    }
    child = (
        "import sys; from resdsl.interop.keras_files import _report_layout; "
        "_report_layout(sys.argv[1])"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", child, path],
            capture_output=True,
            text=True,
            env=env,
            timeout=_READ_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise UnreadableWeights(
            f"a damaged HDF5 file (reading its structure did not end in {_READ_SECONDS} s)"
        ) from None
    if done.returncode < 0:
        raise UnreadableWeights("a damaged HDF5 file (the HDF5 library crashed reading it)")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise UnreadableWeights(
            f"a damaged HDF5 file ({first_line(RuntimeError(done.stderr))})"
        ) from None
    if "error" in report:
        raise UnreadableWeights(report["error"])
    return {key: tuple(shape) for key, shape in report["variables"]}, report["record"]


def _report_layout(path: str) -> None:
    """The child's side of :func:`keras_layout`: its result, or its error, as JSON."""
    import resource
    import sys

    with contextlib.suppress(ValueError, OSError):
        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
        limit = size * 1024 + _CHILD_MEMORY
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        with open_h5(path) as handle:
            variables = h5_variables(handle)
            _check_keras_layout(handle)
            text = _attribute(handle, KERAS_RECORD)
            if KERAS_RECORD in handle.attrs and text is None:
                raise UnreadableWeights(f"its `{KERAS_RECORD}` attribute is not text")
        layers = [(key, shape) for key, shape in variables.items() if key.startswith("layers/")]
        report = {"variables": layers, "record": text}
    except UnreadableWeights as error:
        report = {"error": str(error)}
    except Exception as error:  # h5py's OSError, KeyError, MemoryError past the bound, ...
        report = {"error": f"a damaged HDF5 file ({first_line(error)})"}
    sys.stdout.write(json.dumps(report))


def _check_keras_layout(handle) -> None:
    """Keras' layout: a `layers` group of one group per layer, whose `vars` group (where it
    has weights) holds datasets `0`, `1`, ... Links are refused already: nothing here
    follows one."""
    import h5py

    if not isinstance(handle.get("layers"), h5py.Group):
        raise UnreadableWeights("an HDF5 file without Keras' `layers` group: not Keras weights")
    for name, layer in handle["layers"].items():
        where = _misplaced(h5py, f"layers/{name}", layer)
        if where is not None:
            raise UnreadableWeights(f"`{where}` is not where Keras keeps a layer's arrays")


def _misplaced(h5py, path: str, layer) -> str | None:
    """The first object of layer group `path` out of Keras' layout, or None."""
    if not isinstance(layer, h5py.Group):
        return path
    variables = layer.get("vars")
    if variables is None:
        return None
    if not isinstance(variables, h5py.Group):
        return f"{path}/vars"
    for key, value in variables.items():
        if not (key.isdigit() and isinstance(value, h5py.Dataset)):
            return f"{path}/vars/{key}"
    return None


def _keras_layers(path: str) -> tuple[dict[str, tuple[int, ...]], dict | None]:
    """:func:`keras_layout`, with the data record parsed (or, failing one in the file, that of
    the `trainer.json` of the checkpoint folder it lies in)."""
    layout, text = keras_layout(path)
    try:
        if text is not None:
            return layout, json.loads(text)
        with open(os.path.join(os.path.dirname(path), "trainer.json"), encoding="utf-8") as f:
            record = json.load(f)
        return layout, record.get("data") if isinstance(record, dict) else None
    except FileNotFoundError:
        return layout, None
    except (OSError, ValueError) as error:
        raise UnreadableWeights(f"its data record is not JSON ({first_line(error)})") from None


def _fresh_layout(model) -> dict[str, tuple[int, ...]]:
    """The layout of the weights file `model` saves (Keras' own, trusted)."""
    import h5py

    with tempfile.TemporaryDirectory(prefix="resdsl-keras-") as folder:
        fresh = os.path.join(folder, "fresh.weights.h5")
        model.save_weights(fresh)
        with h5py.File(fresh, "r") as handle:
            return {k: v for k, v in h5_variables(handle).items() if k.startswith("layers/")}


def _snake_case(name: str) -> str:
    """Keras' `naming.to_snake_case`: how a `.weights.h5` file names a layer's group."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_groups(keras_model) -> dict[str, object]:
    """`layers/<group>` of a `.weights.h5` file to the model's layer saved there: Keras names
    each by its class and a counter over the model's layers (`conv2d`, `conv2d_1`, ...)."""
    groups, used = {}, {}
    for layer in keras_model.layers:
        base = _snake_case(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        groups[f"layers/{base}" + (f"_{used[base]}" if used[base] else "")] = layer
    return groups


def _keras_names(layout: Mapping[str, tuple], groups: Mapping[str, object]) -> dict:
    """`layers/<group>/vars/<i>` to the variable's own path (`layer1_block1_1_conv/kernel`),
    where the layer has that variable; others keep their place in the file."""
    names = {}
    for key in layout:
        group, _, index = key.rpartition("/vars/")
        layer = groups.get(group)
        variables = getattr(layer, "weights", [])
        if index.isdigit() and int(index) < len(variables):
            names[key] = variables[int(index)].path
        else:
            names[key] = key
    return names


def read_keras_weights(path: str | os.PathLike, network: Network) -> tuple[dict, dict | None]:
    """A Keras `.weights.h5` file of `network`'s Keras model as the state dict of its PyTorch
    model (ported by :func:`resdsl.interop.weights.keras_to_state_dict`), and the data record saved
    with it or None.

    The file's structure is checked first (:func:`h5_variables`), and the classifier, sized by
    the file's kernel, against the language's limit before a model of that size is built. The
    file is then compared with the layout of a fresh model's saved weights, variable for
    variable, before Keras loads it: Keras itself, given a file of another network, warns of
    each layer it skips and then fails with an error that prints whole tensors. A variable
    that does not fit is named as the model names it, with the counts, in the PortError
    raised."""
    path = os.fspath(path)
    kind = file_kind(path)
    if kind != "hdf5":  # a .keras archive is read by `import` only
        raise UnreadableWeights(f"{kind}, not a Keras weights file (HDF5)")
    found, record = _keras_layers(path)
    module = build_generated(network, "keras")
    model = module.build_model()
    groups = _keras_groups(model)
    head = classifier(network)
    group = next((g for g, layer in groups.items() if head and layer.name == head[1]), None)
    kernel = found.get(f"{group}/vars/0", ())
    if len(kernel) == 2 and kernel[1] != network.classes:
        if not 1 <= kernel[1] <= MAX_CLASSES:
            raise PortError(
                f"`{head[1]}/kernel` declares {kernel[1]:,} classes; a spec has 1 to "
                f"{MAX_CLASSES:,}"
            )
        model = module.build_model(num_classes=kernel[1])
        groups = _keras_groups(model)
    expected = _fresh_layout(model)
    names = _keras_names({**found, **expected}, groups)
    order = {group: place for place, group in enumerate(groups)}

    def in_model_order(layout: Mapping[str, tuple]) -> dict:
        def place(key: str) -> tuple:
            group, _, index = key.rpartition("/vars/")
            return (order.get(group, len(order)), group, int(index) if index.isdigit() else 0)

        return {names[key]: layout[key] for key in sorted(layout, key=place)}

    problem = fit_problem(
        in_model_order(found), in_model_order(expected), target=f"{network.name}'s Keras model"
    )
    if problem:
        raise PortError(problem)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(path)
    except Exception as error:  # Keras' ValueError, h5py's OSError for a damaged chunk
        raise UnreadableWeights(f"Keras cannot load it ({first_line(error)})") from None
    torch_model = build_generated(network, "torch").build_model(model.output_shape[-1])
    state = keras_to_state_dict(model, torch_model.state_dict(), layer_pairs(network))
    return state, record
