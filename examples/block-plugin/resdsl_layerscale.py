"""A resdsl plugin: `block scaled_basic(init: 1e-5)`, a basic block whose branch ends in
LayerScale (Touvron et al., "Going deeper with image transformers", 2021): a learned factor
per channel, `init` at first, so that each residual branch starts close to zero.

It adds what a block kind with a layer of its own needs, each registered once:

* the layer type (:class:`LayerScaleLayer`): its fields, shape, cost, tensors and their Keras
  layout, which elaboration, `summary` and weight porting ask it for;
* one emitter per backend: the module or layer that builds it, and the helper class the
  generated file defines;
* the block recipe: its arguments (the residual blocks' and `init`), the layers it builds, the
  name of its generated class and its checks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from resdsl.blocks import BlockLayers, BlockRecipe, Builder, register_block, residual
from resdsl.codegen.emitters import register_emitter
from resdsl.codegen.layout import Call
from resdsl.ir import Cost, Layer, Shape, Width, register_layer
from resdsl.language.values import positive_number


class LayerScaleLayer(Layer):
    """Each channel times a learned factor: PyTorch's `gamma` (channels,), Keras' `gamma`."""

    op: Literal["layer_scale"] = "layer_scale"
    channels: int
    init: float
    width: Width = "out"  # the block's width it scales: the generated class takes it

    summary = "LayerScale (a learned factor per channel) ends the branch"

    def cost(self, shape: Shape) -> Cost:
        return Cost(macs=shape.channels * shape.height * shape.width, params=self.channels)

    def weighted(self) -> tuple[Layer, ...]:
        return (self,)

    def tensors(self, rows: int | None = None) -> dict[str, tuple[int, ...]]:
        return {"gamma": (self.channels,)}

    def keras_weights(self) -> tuple[tuple[str, tuple[int, ...] | None], ...]:
        return (("gamma", None),)  # the same (channels,) vector

    def words(self, activation: str = "relu") -> str:
        return f"layer scale {self.channels}"


TORCH_HELPER = '''
class LayerScale(nn.Module):
    """Each channel times a learned factor, `init` at first (Touvron et al.'s LayerScale)."""

    def __init__(self, channels: int, init: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)
'''

KERAS_HELPER = '''
@keras.saving.register_keras_serializable(package="resdsl")
class LayerScale(layers.Layer):
    """Each channel times a learned factor, `init` at first (Touvron et al.'s LayerScale)."""

    def __init__(self, init=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.gamma = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init),
            name="gamma",
        )

    def call(self, x):
        return x * self.gamma

    def get_config(self):
        return {**super().get_config(), "init": self.init}
'''


def _torch(fields: dict[str, str]) -> Call:
    return Call("LayerScale", (fields["channels"], f"init={fields['init']}"))


def _keras(fields: dict[str, str]) -> Call:
    return Call("LayerScale", (f"init={fields['init']}", f"name={fields['name']}"))


def _build(builder: Builder) -> BlockLayers:
    block = residual.convolutions(
        builder, residual.basic_steps(builder.spec), grouped=False, preact=False
    )
    scale = LayerScaleLayer(
        torch="ls",
        keras="ls",
        channels=builder.widths["out"],
        init=builder.spec.option("init"),
    )
    return replace(block, branch=(*block.branch, scale))


RECIPE = BlockRecipe(
    name="scaled_basic",
    summary="a basic block whose branch ends in LayerScale, a learned factor per channel",
    build=_build,
    arguments={**residual.ARGUMENTS, "init": positive_number(1.0)},
    defaults={"init": 1e-5},  # the residual arguments' are every kind's
    layout="basic",
    class_words=("Scaled", "Basic", "Block"),
    inapplicable=residual.BOTTLENECK_ONLY,
    check=residual.check,
    docs={**residual.DOCS, "init": "each channel's factor at first"},
)


def register() -> None:
    """The `resdsl.blocks` entry point."""
    register_layer(LayerScaleLayer)
    register_emitter("torch", "layer_scale", _torch, TORCH_HELPER)
    register_emitter("keras", "layer_scale", _keras, KERAS_HELPER)
    register_block(RECIPE)
