"""Emitters that packages add for their own layer types, one per backend.

The backends emit the built-in layer types themselves. A plugin's layer type (registered with
:func:`resdsl.ir.register_layer`) gets its code here: for each backend, a function from the
layer's fields to the module (PyTorch) or layer (Keras) that builds it, and the helper's source
(its class), which the generated module defines once wherever the layer is used.

An emitter receives the fields as the generated code writes them, strings: a block class's
argument where the field varies from block to block (`out_channels`, or in Keras `filters`),
a literal elsewhere; in Keras also `name`, the layer's name. It returns the call
(:class:`resdsl.codegen.layout.Call`): PyTorch registers it as a module, Keras applies it to
the tensor (`x = LayerScale(...)(x)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resdsl.codegen.layout import Call

BACKENDS = ("torch", "keras")


@dataclass(frozen=True)
class Emitter:
    emit: Callable[[dict[str, str]], Call]
    helper: str  # the source of what `emit`'s call calls: a class, written once per module


EMITTERS: dict[str, dict[str, Emitter]] = {backend: {} for backend in BACKENDS}


def register_emitter(
    backend: str, op: str, emit: Callable[[dict[str, str]], Call], helper: str = ""
) -> None:
    """Emit layers of type `op` with `emit` in `backend` ("torch" or "keras")."""
    if backend not in EMITTERS:
        raise ValueError(f"no backend `{backend}`: {', '.join(BACKENDS)}")
    EMITTERS[backend][op] = Emitter(emit, helper.strip("\n"))


def emitter(backend: str, op: str) -> Emitter | None:
    return EMITTERS[backend].get(op)
