"""Weights between the PyTorch and Keras models of one spec.

Elaboration names every layer with weights in both frameworks, once, in the IR; the pairing of
a PyTorch state-dict prefix with a Keras layer name is read from there (:func:`layer_pairs`).
Tensors change layout on the way:

* convolutions: PyTorch's (out, in / groups, kh, kw) is Keras' (kh, kw, in / groups, out);
  grouped kernels need nothing more, both frameworks keep each group's output channels together;
  squeeze-excitation's 1x1 convolutions are convolutions like any other;
* ECA's channel convolution (`channel_conv`): PyTorch's (1, 1, k) Conv1d weight is Keras' (k, 1, 1)
  Conv1D kernel;
* norms: weight, bias, running mean and variance are Keras' gamma, beta, moving mean and
  variance (PyTorch's `num_batches_tracked` has no Keras counterpart and is left alone); a group
  norm has the weight and bias only, Keras' gamma and beta;
* linear layers: PyTorch's (out, in) weight is Keras' (in, out) kernel.

Layers without weights (pools, the blur pool's fixed filter, activations) are not paired.

Images are NCHW in PyTorch and NHWC in Keras: :func:`to_keras_images` and
:func:`to_torch_images` convert inputs, nothing else needs to.

Files: :func:`read_trained` reads what `eval`, `predict` and `export` are given as trained
weights, a PyTorch checkpoint or state dict, or a Keras weights file (or `resdsl train`'s Keras
checkpoint folder) ported to the PyTorch model; what is not one of them is an
:class:`UnreadableWeights` error saying what the file is. :func:`fit_problem` compares tensors
by name and shape and names the first that does not fit, for every reader of weights.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Mapping

from .ir import ChannelConvLayer, ConvLayer, Network, NormLayer

__all__ = [
    "PortError",
    "UnreadableWeights",
    "build_generated",
    "classifier",
    "classifier_size",
    "file_kind",
    "fit_problem",
    "keras_to_state_dict",
    "keras_to_torch",
    "layer_pairs",
    "load_torch_checkpoint",
    "pickled_module",
    "read_keras_weights",
    "read_torch_checkpoint",
    "read_trained",
    "save_keras_weights",
    "save_torch_state",
    "state_dict_layout",
    "state_dict_shapes",
    "state_dict_to_keras",
    "state_problem",
    "to_keras_images",
    "to_torch_images",
    "torch_to_keras",
]

# (torch prefix, keras layer name, kind: "conv" | "norm" | "linear" | "channel_conv")
Pair = tuple[str, str, str]
NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")  # a group norm: the first two


class PortError(ValueError):
    """The two models do not correspond: a missing layer or a shape that differs."""


class UnreadableWeights(ValueError):
    """A file that cannot be read as weights: empty, truncated, another kind of file, a pickle
    that would run code. The message says what the file is and what was expected; the caller
    names the file."""


# --------------------------------------------------------------------------- fitting


def fit_problem(
    found: Mapping[str, tuple],
    expected: Mapping[str, tuple],
    source: str = "the weights",
    target: str = "the network",
) -> str | None:
    """None when `found` holds exactly the tensors of `expected`, name for name and shape for
    shape; else one line naming the first that does not fit (in `found`'s order, then the
    first missing in `expected`'s) and how many are missing, unexpected and of another shape."""
    unexpected = {key for key in found if key not in expected}
    reshaped = {key for key in found if key in expected and tuple(found[key]) != expected[key]}
    missing = [key for key in expected if key not in found]
    first = next((key for key in found if key in unexpected or key in reshaped), None)
    if first is None and not missing:
        return None
    if first is None:
        key = missing[0]
        message = f"`{key}` {tuple(expected[key])} is missing from {source}"
    elif first in expected:
        message = f"`{first}` is {tuple(found[first])}; {target} expects {tuple(expected[first])}"
    else:
        message = f"`{first}` {tuple(found[first])} has no place in {target}"
    counts = f"{len(missing)} missing, {len(unexpected)} unexpected"
    if reshaped:
        counts += f", {len(reshaped)} of another shape"
    return f"{message} ({counts})"


# --------------------------------------------------------------------------- pairing


def layer_pairs(network: Network) -> list[Pair]:
    """(PyTorch prefix, Keras layer name, kind) for every layer with weights, in PyTorch's
    registration order; kind is the layer's op: conv, norm, linear or channel_conv. Read from
    the IR, where elaboration named every layer in both frameworks."""
    return [(torch, keras, layer.op) for torch, keras, layer in network.weighted_layers()]


def state_dict_layout(network: Network) -> list[tuple[str, str, tuple[int, ...]]]:
    """Every layer with weights of the generated PyTorch model, in model order, as
    (state-dict prefix, kind, weight shape); kind is "conv", "norm", "linear" or
    "channel_conv" (ECA's)."""
    rows = []
    for torch, _, layer in network.weighted_layers():
        if isinstance(layer, ConvLayer):
            shape: tuple[int, ...] = layer.conv.weight_shape
        elif isinstance(layer, NormLayer):
            shape = (layer.channels,)
        elif isinstance(layer, ChannelConvLayer):
            shape = (1, 1, layer.kernel)
        else:
            shape = (layer.out_features, layer.in_features)
        rows.append((torch, layer.op, shape))
    return rows


def classifier(network: Network) -> tuple[str, str] | None:
    """(PyTorch prefix, Keras layer name) of `network`'s classifier, its last linear layer;
    None for a network without one."""
    found = [(torch, keras) for torch, keras, kind in layer_pairs(network) if kind == "linear"]
    return found[-1] if found else None


def classifier_size(state: Mapping, network: Network) -> int | None:
    """How many classes the classifier of PyTorch state dict `state` has, where it has
    `network`'s classifier; None otherwise (the spec's count then stands). Every reader of
    trained weights sizes the model it builds by this, as the Keras reader sizes it by the
    file's kernel: a checkpoint trained on 3 classes loads into a spec that says 10."""
    pair = classifier(network)
    weight = state.get(f"{pair[0]}.weight") if pair else None
    shape = tuple(getattr(weight, "shape", ()))
    return int(shape[0]) if len(shape) == 2 else None


def state_dict_shapes(
    network: Network, num_classes: int | None = None
) -> dict[str, tuple[int, ...]]:
    """Every tensor of the generated PyTorch model's state dict and its shape: what a
    reference's state dict must hold to load strictly (batch norm's `num_batches_tracked`
    included); with `num_classes`, that of the model built for so many classes."""
    shapes: dict[str, tuple[int, ...]] = {}
    head = classifier(network) if num_classes is not None else None
    for torch, _, layer in network.weighted_layers():
        if isinstance(layer, ConvLayer):
            shapes[f"{torch}.weight"] = layer.conv.weight_shape
            if layer.conv.bias:
                shapes[f"{torch}.bias"] = (layer.conv.out_channels,)
        elif isinstance(layer, NormLayer):
            names = ("weight", "bias")
            if layer.kind == "batch":
                names += ("running_mean", "running_var")
                shapes[f"{torch}.num_batches_tracked"] = ()
            shapes.update({f"{torch}.{name}": (layer.channels,) for name in names})
        elif isinstance(layer, ChannelConvLayer):
            shapes[f"{torch}.weight"] = (1, 1, layer.kernel)
        else:
            out = num_classes if head is not None and torch == head[0] else layer.out_features
            shapes[f"{torch}.weight"] = (out, layer.in_features)
            if layer.bias:
                shapes[f"{torch}.bias"] = (out,)
    return shapes


def state_problem(
    state: Mapping, expected: Mapping[str, tuple], target: str = "the network"
) -> str | None:
    """:func:`fit_problem` for a PyTorch state dict against the shapes a model's state dict
    has (`expected`); batch norms' step counters are left out on both sides, as PyTorch fills
    a missing one in when it loads."""

    def counted(shapes: Mapping) -> dict:
        return {k: tuple(v) for k, v in shapes.items() if not k.endswith("num_batches_tracked")}

    found = counted({k: getattr(v, "shape", ()) for k, v in state.items()})
    return fit_problem(found, counted(expected), target=target)


# --------------------------------------------------------------------------- conversion


def _numpy(tensor):
    import numpy as np

    if hasattr(tensor, "detach"):
        tensor = tensor.detach().cpu().numpy()
    return np.asarray(tensor)


def _torch_arrays(state: Mapping, prefix: str, kind: str, count: int) -> list:
    """The Keras weights of one layer, in Keras' order, from a PyTorch state dict; `count` is
    how many the Keras layer holds (a norm: 4 for batch norm, 2 for group norm)."""

    def get(suffix: str, required: bool = True):
        key = f"{prefix}.{suffix}"
        if key not in state:
            if required:
                raise PortError(f"the PyTorch state has no `{key}`")
            return None
        return _numpy(state[key])

    if kind == "norm":
        if count == 2 and f"{prefix}.running_mean" in state:
            raise PortError(f"`{prefix}` is a batch norm, its Keras counterpart a group norm")
        return [get(s) for s in NORM_TENSORS[: 2 if count == 2 else 4]]
    weight = get("weight")
    bias = get("bias", required=False)
    if kind == "conv":
        arrays = [weight.transpose(2, 3, 1, 0)]
    elif kind == "channel_conv":
        arrays = [weight.transpose(2, 1, 0)]
    else:
        arrays = [weight.T]
    return arrays + ([bias] if bias is not None else [])


def state_dict_to_keras(
    state: Mapping, keras_model, pairs: list[Pair], skip: set[str] = frozenset()
) -> None:
    """Load a PyTorch state dict into `keras_model`, in place; `pairs` from :func:`layer_pairs`.
    Keras layers named in `skip` keep their weights (a classifier replaced for fine-tuning)."""
    _check_coverage(pairs, keras_model, state.keys(), skip)
    for prefix, name, kind in pairs:
        layer = _layer(keras_model, name)
        arrays = _torch_arrays(state, prefix, kind, len(layer.weights))
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise PortError(
                f"`{prefix}` ({', '.join(map(str, got))}) does not fit Keras layer `{name}` "
                f"({', '.join(map(str, expected))})"
            )
        layer.set_weights(
            [a.astype(w.dtype) for a, w in zip(arrays, layer.get_weights(), strict=True)]
        )


def torch_to_keras(torch_model, keras_model, network: Network) -> None:
    """Copy a PyTorch model's weights and norm statistics into the Keras model of the same
    spec (`network`), in place."""
    state_dict_to_keras(torch_model.state_dict(), keras_model, layer_pairs(network))


def keras_to_state_dict(keras_model, state: Mapping, pairs: list[Pair]) -> dict:
    """A copy of PyTorch state dict `state` with every paired tensor taken from `keras_model`;
    `pairs` from :func:`layer_pairs`."""
    import torch

    _check_coverage(pairs, keras_model, state.keys())
    out = {k: v.clone() if hasattr(v, "clone") else v for k, v in state.items()}
    for prefix, name, kind in pairs:
        values = _layer(keras_model, name).get_weights()
        if kind == "norm":
            if len(values) not in (2, 4):
                raise PortError(f"Keras layer `{name}` holds {len(values)} arrays, not a norm's")
            if len(values) == 2 and f"{prefix}.running_mean" in out:
                raise PortError(f"`{prefix}` is a batch norm, Keras layer `{name}` a group norm")
            suffixes = list(NORM_TENSORS[: len(values)])
            arrays = values
        elif kind == "conv":
            suffixes = ["weight", "bias"][: len(values)]
            arrays = [values[0].transpose(3, 2, 0, 1), *values[1:]]
        elif kind == "channel_conv":
            suffixes = ["weight", "bias"][: len(values)]
            arrays = [values[0].transpose(2, 1, 0), *values[1:]]
        else:
            suffixes = ["weight", "bias"][: len(values)]
            arrays = [values[0].T, *values[1:]]
        for suffix, array in zip(suffixes, arrays, strict=True):
            key = f"{prefix}.{suffix}"
            if key not in out:
                raise PortError(f"the PyTorch model has no `{key}` for Keras layer `{name}`")
            if tuple(out[key].shape) != tuple(array.shape):
                raise PortError(
                    f"Keras layer `{name}` gives {tuple(array.shape)} for `{key}`, "
                    f"which is {tuple(out[key].shape)}"
                )
            out[key] = torch.from_numpy(array.copy()).to(out[key].dtype)
    return out


def keras_to_torch(keras_model, torch_model, network: Network) -> None:
    """Copy a Keras model's weights and norm statistics into the PyTorch model of the same
    spec (`network`), in place."""
    state = keras_to_state_dict(keras_model, torch_model.state_dict(), layer_pairs(network))
    torch_model.load_state_dict(state, strict=True)


def _layer(keras_model, name: str):
    try:
        return keras_model.get_layer(name)
    except ValueError:
        raise PortError(f"the Keras model has no layer `{name}`") from None


def _check_coverage(
    pairs: list[Pair], keras_model, state_keys, skip: set[str] = frozenset()
) -> None:
    """Every Keras layer with weights (but those in `skip`) and every PyTorch tensor is paired
    exactly once."""
    paired = {name for _, name, _ in pairs} | set(skip)
    missing = [
        layer.name for layer in keras_model.layers if layer.weights and layer.name not in paired
    ]
    if missing:
        raise PortError(f"Keras layers without a PyTorch counterpart: {', '.join(missing[:5])}")
    prefixes = {prefix for prefix, _, _ in pairs}
    extra = [
        k
        for k in state_keys
        if k.rpartition(".")[0] not in prefixes and not k.endswith("num_batches_tracked")
    ]
    if extra:
        raise PortError(f"PyTorch tensors without a Keras counterpart: {', '.join(extra[:5])}")


def to_keras_images(images):
    """NCHW to NHWC."""
    return _numpy(images).transpose(0, 2, 3, 1)


def to_torch_images(images):
    """NHWC to NCHW."""
    return _numpy(images).transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------- files and models


def build_generated(network: Network, backend: str):
    """The generated module of `network` for `backend`, imported from memory. Keras is
    imported first through :func:`resdsl.tf_startup.import_quietly`, so that every command
    that builds a Keras model keeps TensorFlow's start-up lines to TF_CPP_MIN_LOG_LEVEL."""
    from .backend import get_backend
    from .generated import import_source

    if backend == "keras":
        from .tf_startup import import_quietly

        import_quietly("keras")
    code = get_backend(backend).emit(network)
    return import_source(
        code,
        f"_resdsl_generated_{backend}_{network.name}",
        f"<resdsl {backend} {network.source.file}>",
    )


# The first bytes of files that are not weights, for an error that says what was given.
_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "hdf5"),  # Keras' .weights.h5
    (b"PK\x03\x04", "torch"),  # torch.save's zip archive
    (b"\x80", "torch"),  # a pickle (protocol 2 on): torch.save's legacy format
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
)
TORCH_EXPECTED = "a PyTorch state dict or checkpoint (what torch.save writes)"
TRAINED_EXPECTED = (
    "a PyTorch checkpoint or state dict (.pt), a Keras .weights.h5 file, or a "
    "`resdsl train --backend keras` checkpoint folder"
)


def file_kind(path: str | os.PathLike) -> str:
    """What a file holds, by its first bytes: "torch" (torch.save's zip or pickle), "hdf5"
    (Keras weights), or words for anything else ("an empty file", "a PNG image", "a text
    file", "a file of another kind"). Raises OSError when it cannot be opened."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return "an empty file"
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


def load_torch_checkpoint(path: str | os.PathLike) -> dict:
    """A state dict from a `.pt` file, read with `weights_only=True` (no code runs); a
    checkpoint that wraps it under `state_dict` or `model` is unwrapped."""
    return read_torch_checkpoint(path)[0]


def read_torch_checkpoint(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """The state dict of a `.pt` file (see :func:`load_torch_checkpoint`), and the data record
    a `resdsl train` checkpoint keeps beside it (`data`: name, normalisation, class names), or
    None. One read of the file. Raises OSError when it cannot be opened, UnreadableWeights
    when it is not a state dict of tensors."""
    import torch

    kind = file_kind(path)
    if kind == "hdf5":
        raise UnreadableWeights(f"a Keras weights file (HDF5), not {TORCH_EXPECTED}")
    if kind != "torch":
        raise UnreadableWeights(f"{kind}, not {TORCH_EXPECTED}")
    try:
        with warnings.catch_warnings():  # torch's warnings ask to "file an issue"
            warnings.simplefilter("ignore")
            data = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except OSError:
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
    if not isinstance(data, Mapping) or not all(hasattr(v, "shape") for v in data.values()):
        what = "a mapping" if isinstance(data, Mapping) else f"a {type(data).__name__}"
        raise UnreadableWeights(f"it holds {what}, not a state dict of tensors")
    return dict(data), (record if isinstance(record, dict) else None)


_MODULE_STATE = frozenset({"_parameters", "_buffers", "_modules"})  # an nn.Module's __dict__


def pickled_module(path: str | os.PathLike) -> str | None:
    """The class of the object a torch.save file holds, where that is a whole model (an
    `nn.Module`: `torch.save(model, PATH)`); None for anything else. Read from the pickle's
    opcodes, never unpickled (nothing in the file runs): a module's pickle names a class from
    `torch.nn.modules`, or holds the `_parameters`, `_buffers` and `_modules` of a module's
    state. The class named is the pickle's first (the top-level object's)."""
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
                streams = [archive.read(name)] if name else []
        else:  # the legacy format: pickles one after another (magic, version, info, object)
            with open(path, "rb") as handle:
                streams = [handle.read(64 << 20)]
    except (OSError, zipfile.BadZipFile, KeyError):
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
    """Why torch.load(weights_only=True) could not read a file, in a line of our own: torch's
    messages run to paragraphs that suggest weights_only=False or filing an issue."""
    text = str(error)
    blocked = re.search(r"unsupported GLOBAL (\S+)", text)
    if blocked:
        return (
            f"it holds a pickled `{blocked.group(1)}`, which weights do not need; it is not "
            "loaded, as loading could run code"
        )
    if isinstance(error, EOFError) or "central directory" in text:
        return "it is truncated or damaged: it ends before the end of its data"
    return f"not {TORCH_EXPECTED}: torch.load(weights_only=True) cannot read it"


def read_trained(path: str | os.PathLike, network: Network) -> tuple[dict, dict | None]:
    """The PyTorch state dict of trained weights for `network`, and the data record saved with
    them (None for weights from elsewhere): a PyTorch checkpoint or state dict, or a Keras
    weights file or checkpoint folder (`resdsl train --backend keras`'s `best.weights.h5`,
    `checkpoint/`) ported with :func:`read_keras_weights`. Raises OSError for a file that
    cannot be opened, UnreadableWeights for anything else, PortError for Keras weights of
    another network."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inner = os.path.join(path, KERAS_CHECKPOINT_WEIGHTS)
        if os.path.isfile(inner):
            return read_keras_weights(inner, network)
        best = [n for n in ("best.pt", "best.weights.h5") if os.path.isfile(os.path.join(path, n))]
        hint = f" (a run folder: give its `{best[0]}`)" if best else ""
        raise UnreadableWeights(f"a folder{hint}, not {TRAINED_EXPECTED}")
    kind = file_kind(path)
    if kind == "hdf5":
        return read_keras_weights(path, network)
    if kind != "torch":
        raise UnreadableWeights(f"{kind}, not {TRAINED_EXPECTED}")
    return read_torch_checkpoint(path)


# --------------------------------------------------------------------------- Keras files

KERAS_CHECKPOINT_WEIGHTS = "model.weights.h5"  # in a Keras checkpoint folder, beside trainer.json
KERAS_RECORD = "resdsl_data"  # the attribute of a .weights.h5 file holding the data record


def _keras_layout(path: str) -> dict[str, tuple[int, ...]]:
    """Every variable of a Keras `.weights.h5` file, `layers/<group>/vars/<i>` to its shape."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise UnreadableWeights(f"an HDF5 file h5py cannot read, not {TRAINED_EXPECTED}") from None
    layout: dict[str, tuple[int, ...]] = {}
    with handle:
        layers = handle.get("layers")
        if not isinstance(layers, h5py.Group):
            raise UnreadableWeights("an HDF5 file without Keras' `layers` group: not Keras weights")

        def visit(name: str, item) -> None:
            if isinstance(item, h5py.Dataset):
                layout[f"layers/{name}"] = tuple(item.shape)

        layers.visititems(visit)
    return layout


def _keras_record(path: str) -> dict | None:
    """The data record a `resdsl train` Keras weights file keeps (its `resdsl_data`
    attribute), or that of the checkpoint's `trainer.json` beside it; None for others."""
    import h5py

    text = None
    with contextlib.suppress(OSError), h5py.File(path, "r") as handle:
        text = handle.attrs.get(KERAS_RECORD)
    try:
        if text is not None:
            record = json.loads(text)
        else:
            with open(os.path.join(os.path.dirname(path), "trainer.json"), encoding="utf-8") as f:
                record = json.load(f).get("data")
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


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
    model (ported by :func:`keras_to_state_dict`), and the data record saved with it or None.

    The classifier is sized by the file. The file is checked against the layout of a fresh
    model's saved weights, variable for variable, before it is loaded: Keras itself, given a
    file of another network, warns of each layer it skips and then fails with an error that
    prints whole tensors. A variable that does not fit is named as the model names it, with the
    counts, in the PortError raised."""
    path = os.fspath(path)
    found = _keras_layout(path)
    record = _keras_record(path)
    module = build_generated(network, "keras")
    model = module.build_model()
    groups = _keras_groups(model)
    head = classifier(network)
    group = next((g for g, layer in groups.items() if head and layer.name == head[1]), None)
    kernel = found.get(f"{group}/vars/0", ())
    if len(kernel) == 2 and kernel[1] != network.classes:
        model = module.build_model(num_classes=kernel[1])
        groups = _keras_groups(model)
    with tempfile.TemporaryDirectory(prefix="resdsl-keras-") as folder:
        fresh = os.path.join(folder, "fresh.weights.h5")
        model.save_weights(fresh)
        expected = _keras_layout(fresh)
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_weights(path)
    torch_model = build_generated(network, "torch").build_model(model.output_shape[-1])
    state = keras_to_state_dict(model, torch_model.state_dict(), layer_pairs(network))
    return state, record


def save_torch_state(state: Mapping, path: str | os.PathLike) -> None:
    """`torch.save` to a temporary file beside `path`, then rename: never half a file."""
    import io

    import torch

    from .files import atomic_write

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    atomic_write(path, buffer.getvalue())


def save_keras_weights(keras_model, path: str | os.PathLike, record: dict | None = None) -> None:
    """`save_weights` to a temporary `.weights.h5` beside `path`, then rename over it; with
    `record` (a `resdsl train` data record) kept in the file's `resdsl_data` attribute, as
    `best.pt` keeps it under `data`."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".weights.h5", dir=folder
    )
    os.close(fd)
    try:
        os.unlink(temporary)  # keras refuses to overwrite without asking in some versions
        keras_model.save_weights(temporary)
        if record is not None:
            import h5py

            with h5py.File(temporary, "a") as handle:
                handle.attrs[KERAS_RECORD] = json.dumps(record)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
