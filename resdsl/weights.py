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
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping

from .ir import ChannelConvLayer, ConvLayer, Network, NormLayer

__all__ = [
    "PortError",
    "build_generated",
    "keras_to_state_dict",
    "keras_to_torch",
    "layer_pairs",
    "load_torch_checkpoint",
    "read_torch_checkpoint",
    "save_keras_weights",
    "save_torch_state",
    "state_dict_layout",
    "state_dict_shapes",
    "state_dict_to_keras",
    "to_keras_images",
    "to_torch_images",
    "torch_to_keras",
]

# (torch prefix, keras layer name, kind: "conv" | "norm" | "linear" | "channel_conv")
Pair = tuple[str, str, str]
NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")  # a group norm: the first two


class PortError(ValueError):
    """The two models do not correspond: a missing layer or a shape that differs."""


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


def state_dict_shapes(network: Network) -> dict[str, tuple[int, ...]]:
    """Every tensor of the generated PyTorch model's state dict and its shape: what a
    reference's state dict must hold to load strictly (batch norm's `num_batches_tracked`
    included)."""
    shapes: dict[str, tuple[int, ...]] = {}
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
            shapes[f"{torch}.weight"] = (layer.out_features, layer.in_features)
            if layer.bias:
                shapes[f"{torch}.bias"] = (layer.out_features,)
    return shapes


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
    """The generated module of `network` for `backend`, imported from memory."""
    from .backend import get_backend
    from .generated import import_source

    code = get_backend(backend).emit(network)
    return import_source(
        code,
        f"_resdsl_generated_{backend}_{network.name}",
        f"<resdsl {backend} {network.source.file}>",
    )


def load_torch_checkpoint(path: str | os.PathLike) -> dict:
    """A state dict from a `.pt` file, read with `weights_only=True` (no code runs); a
    checkpoint that wraps it under `state_dict` or `model` is unwrapped."""
    return read_torch_checkpoint(path)[0]


def read_torch_checkpoint(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """The state dict of a `.pt` file (see :func:`load_torch_checkpoint`), and the data record
    a `resdsl train` checkpoint keeps beside it (`data`: name, normalisation, class names), or
    None. One read of the file."""
    import torch

    try:
        data = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "WeightsUnpickler error" in line), None)
        reason = reason or (lines[0] if lines else type(error).__name__)
        raise ValueError(f"torch.load(weights_only=True) refused it: {reason}") from None
    record = data.get("data") if isinstance(data, Mapping) else None
    for key in ("state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
    if not isinstance(data, Mapping) or not all(hasattr(v, "shape") for v in data.values()):
        raise PortError(f"`{os.fspath(path)}` holds no state dict of tensors")
    return dict(data), (record if isinstance(record, dict) else None)


def save_torch_state(state: Mapping, path: str | os.PathLike) -> None:
    """`torch.save` to a temporary file beside `path`, then rename: never half a file."""
    import io

    import torch

    from .files import atomic_write

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    atomic_write(path, buffer.getvalue())


def save_keras_weights(keras_model, path: str | os.PathLike) -> None:
    """`save_weights` to a temporary `.weights.h5` beside `path`, then rename over it."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".weights.h5", dir=folder
    )
    os.close(fd)
    try:
        os.unlink(temporary)  # keras refuses to overwrite without asking in some versions
        keras_model.save_weights(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
