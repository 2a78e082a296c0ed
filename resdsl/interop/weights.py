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

from resdsl.ir import Network

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

# (torch prefix, keras layer name, kind: "conv" | "norm" | "linear" | "channel_conv")
Pair = tuple[str, str, str]
NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")  # a group norm: the first two


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
    """(PyTorch prefix, Keras layer name, kind) for every layer with weights, in PyTorch's
    registration order; kind is the layer's op: conv, norm, linear or channel_conv. Read from
    the IR, where elaboration named every layer in both frameworks."""
    return [(torch, keras, layer.op) for torch, keras, layer in network.weighted_layers()]


def state_dict_layout(network: Network) -> list[tuple[str, str, tuple[int, ...]]]:
    """Every layer with weights of the generated PyTorch model, in model order, as
    (state-dict prefix, kind, weight shape); kind is "conv", "norm", "linear" or
    "channel_conv" (ECA's)."""
    return [
        (torch, layer.op, layer.tensors()["weight"])
        for torch, _, layer in network.weighted_layers()
    ]


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
