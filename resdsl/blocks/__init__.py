"""Block kinds: each one recipe (:class:`BlockRecipe`) in one registry (:data:`RECIPES`), the
built-in residual blocks in :mod:`resdsl.blocks.residual`, others from plugins."""

from resdsl.blocks.recipe import (
    COMMON_ARGUMENTS,
    COMMON_DEFAULTS,
    BlockLayers,
    BlockRecipe,
    Builder,
)
from resdsl.blocks.registry import RECIPES, PluginError, register_block

__all__ = [
    "COMMON_ARGUMENTS",
    "COMMON_DEFAULTS",
    "RECIPES",
    "BlockLayers",
    "BlockRecipe",
    "Builder",
    "PluginError",
    "register_block",
]
