"""Block kinds: each one recipe (:class:`BlockRecipe`) in one registry (:data:`RECIPES`), the
built-in residual blocks in :mod:`resdsl.blocks.residual`, others from plugins."""

from resdsl.blocks.recipe import (
    COMMON_ARGUMENTS,
    COMMON_DEFAULTS,
    BlockLayers,
    BlockRecipe,
    Builder,
    anti_alias_layer,
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
    "anti_alias_layer",
    "register_block",
]
