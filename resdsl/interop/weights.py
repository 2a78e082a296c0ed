"""Weights between the PyTorch and Keras models of one spec.

Elaboration names every layer with weights in both frameworks, once, in the IR; the pairing of
a PyTorch state-dict prefix with a Keras layer name is read from there (:func:`layer_pairs`).
Tensors change layout on the way, as each layer type says
(:meth:`resdsl.ir.Layer.keras_weights`: which of its PyTorch tensors Keras holds, in which
order, and the axes that take each to Keras' layout): a convolution's (out, in / groups, kh, kw)
is Keras' (kh, kw, in / groups, out), a linear layer's (out, in) weight Keras' (in, out) kernel,
a norm's weight, bias and running statistics Keras' gamma, beta and moving statistics.

Layers without weights (pools, the blur pool's fixed filter, activations) are not paired.

Images are NCHW in PyTorch and NHWC in Keras: :func:`to_keras_images` and
:func:`to_torch_images` convert inputs, nothing else needs to.

:func:`fit_problem` compares tensors by name and shape and names the first that does not fit,
for every reader of weights. Files from elsewhere are read, and checked against a spec before
anything is built from them, by :mod:`resdsl.interop.weight_files`; this module writes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping

from resdsl.ir import Layer, Network

__all__ = [
    "PortError",
    "build_generated",
    "classifier",
    "classifier_size",
    "fit_problem",
    "keras_to_state_dict",
    "keras_to_torch",
    "layer_pairs",
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

# (torch prefix, keras layer name, the layer)
Pair = tuple[str, str, Layer]


class PortError(ValueError):
    """The two models do not correspond: a missing layer or a shape that differs."""


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
    """(PyTorch prefix, Keras layer name, layer) for every layer with weights, in PyTorch's
    registration order. Read from the IR, where elaboration named every layer in both
    frameworks."""
    return list(network.weighted_layers())


def state_dict_layout(network: Network) -> list[tuple[str, str, tuple[int, ...]]]:
    """Every layer with weights of the generated PyTorch model, in model order, as
    (state-dict prefix, kind, weight shape); kind is "conv", "norm", "linear" or
    "channel_conv" (ECA's)."""
    return [
        (torch, layer.op, next(iter(layer.tensors().values())))
        for torch, _, layer in network.weighted_layers()
    ]


def classifier(network: Network) -> tuple[str, str] | None:
    """(PyTorch prefix, Keras layer name) of `network`'s classifier, its last linear layer;
    None for a network without one."""
    found = [(torch, keras) for torch, keras, layer in layer_pairs(network) if layer.op == "linear"]
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
        rows = num_classes if head is not None and torch == head[0] else None
        shapes.update({f"{torch}.{name}": shape for name, shape in layer.tensors(rows).items()})
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


def _under(state_keys) -> dict[str, set[str]]:
    """The tensor names of a state dict under each prefix (`layer1.0.bn1`: weight, bias, ...)."""
    out: dict[str, set[str]] = {}
    for key in state_keys:
        prefix, _, name = key.rpartition(".")
        out.setdefault(prefix, set()).add(name)
    return out


def _misfit(prefix: str, layer, names: dict[str, set[str]]) -> None:
    problem = layer.misfit(names.get(prefix, set()))
    if problem is not None:
        raise PortError(f"`{prefix}` is {problem}")


def _inverse(axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(range(len(axes)), key=axes.__getitem__))


def state_dict_to_keras(
    state: Mapping, keras_model, pairs: list[Pair], skip: set[str] = frozenset()
) -> None:
    """Load a PyTorch state dict into `keras_model`, in place; `pairs` from :func:`layer_pairs`.
    Keras layers named in `skip` keep their weights (a classifier replaced for fine-tuning).
    Each layer says which of its tensors Keras holds, in which order and layout
    (:meth:`resdsl.ir.Layer.keras_weights`)."""
    _check_coverage(pairs, keras_model, state.keys(), skip)
    names = _under(state.keys())
    for prefix, name, layer in pairs:
        _misfit(prefix, layer, names)
        keras_layer = _layer(keras_model, name)
        arrays = []
        for tensor, axes in layer.keras_weights():
            key = f"{prefix}.{tensor}"
            if key not in state:
                raise PortError(f"the PyTorch state has no `{key}`")
            array = _numpy(state[key])
            arrays.append(array if axes is None else array.transpose(axes))
        expected = [tuple(w.shape) for w in keras_layer.weights]
        # a 1x1 convolution's weight for a Dense: its trailing unit axes dropped
        arrays = [_squeezed(a, shape) for a, shape in zip(arrays, expected, strict=False)]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise PortError(
                f"`{prefix}` ({', '.join(map(str, got))}) does not fit Keras layer `{name}` "
                f"({', '.join(map(str, expected))})"
            )
        keras_layer.set_weights(
            [a.astype(w.dtype) for a, w in zip(arrays, keras_layer.get_weights(), strict=True)]
        )


def _squeezed(array, shape: tuple[int, ...]):
    """`array` as `shape` where they differ only by trailing unit axes, else as it is."""
    extra = array.shape[len(shape) :]
    if array.ndim > len(shape) and array.shape[: len(shape)] == shape and set(extra) == {1}:
        return array.reshape(shape)
    return array


def torch_to_keras(torch_model, keras_model, network: Network) -> None:
    """Copy a PyTorch model's weights and norm statistics into the Keras model of the same
    spec (`network`), in place."""
    state_dict_to_keras(torch_model.state_dict(), keras_model, layer_pairs(network))


def keras_to_state_dict(keras_model, state: Mapping, pairs: list[Pair]) -> dict:
    """A copy of PyTorch state dict `state` with every paired tensor taken from `keras_model`;
    `pairs` from :func:`layer_pairs`."""
    import torch

    _check_coverage(pairs, keras_model, state.keys())
    names = _under(state.keys())
    out = {k: v.clone() if hasattr(v, "clone") else v for k, v in state.items()}
    for prefix, name, layer in pairs:
        _misfit(prefix, layer, names)
        values = _layer(keras_model, name).get_weights()
        layout = layer.keras_weights()
        if len(values) != len(layout):
            raise PortError(
                f"Keras layer `{name}` holds {len(values)} arrays; `{prefix}` has {len(layout)}"
            )
        for (tensor, axes), array in zip(layout, values, strict=True):
            key = f"{prefix}.{tensor}"
            if axes is not None and array.ndim < len(axes):  # a Dense for a 1x1 convolution
                array = array.reshape(array.shape + (1,) * (len(axes) - array.ndim))
            array = array if axes is None else array.transpose(_inverse(axes))
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
    from resdsl.codegen.backends import get_backend
    from resdsl.codegen.generated import import_source

    if backend == "keras":
        from resdsl.tf_startup import import_quietly

        import_quietly("keras")
    code = get_backend(backend).emit(network)
    return import_source(
        code,
        f"_resdsl_generated_{backend}_{network.name}",
        f"<resdsl {backend} {network.source.file}>",
    )


# --------------------------------------------------------------------------- files

KERAS_CHECKPOINT_WEIGHTS = "model.weights.h5"  # in a Keras checkpoint folder, beside trainer.json
KERAS_RECORD = "resdsl_data"  # the attribute of a .weights.h5 file holding the data record
# Readers of weights files, untrusted input, live in resdsl.interop.weight_files and keras_files;
# these names stay importable from here (`from resdsl.interop.weights import
# load_torch_checkpoint`), loaded when asked for, as those modules import this one.
_READERS = {
    "TORCH_EXPECTED": "weight_files",
    "TRAINED_EXPECTED": "weight_files",
    "UnreadableWeights": "weight_files",
    "file_kind": "weight_files",
    "load_torch_checkpoint": "weight_files",
    "pickled_module": "weight_files",
    "read_torch_checkpoint": "weight_files",
    "read_trained": "weight_files",
    "read_keras_weights": "keras_files",
}


def __getattr__(name: str):
    if name in _READERS:
        import importlib

        return getattr(importlib.import_module(f"resdsl.interop.{_READERS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def save_torch_state(state: Mapping, path: str | os.PathLike) -> None:
    """`torch.save` to a temporary file beside `path`, then rename: never half a file."""
    import io

    import torch

    from resdsl.files import atomic_write

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
