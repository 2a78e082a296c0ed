"""The registry of block kinds: the built-in recipes (:mod:`resdsl.blocks.residual`) and those
that installed packages add through the `resdsl.blocks` entry point group.

An entry point names a callable that registers what its package adds (block recipes with
:func:`register_block`, layer types with :func:`resdsl.ir.register_layer`, emitters with
:func:`resdsl.codegen.emitters.register_emitter`). Plugins are loaded the first time a kind
that is not built in is looked up, or the whole registry is listed (completion, the
reference): a spec that uses only built-in kinds never scans the installed packages, so
`check` starts as fast without plugins as with them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from resdsl.blocks.recipe import BlockRecipe

ENTRY_POINT_GROUP = "resdsl.blocks"
# The modules of the built-in kinds, each with its `RECIPES`, imported on first use.
BUILT_IN_MODULES = (
    "resdsl.blocks.residual",
    "resdsl.blocks.res2net",
    "resdsl.blocks.sknet",
    "resdsl.blocks.resnest",
    "resdsl.blocks.aggregated",
)


def _built_in_recipes() -> list[BlockRecipe]:
    import importlib

    return [r for name in BUILT_IN_MODULES for r in importlib.import_module(name).RECIPES]


class PluginError(RuntimeError):
    """A plugin that could not be loaded or registered what it may not."""


class Registry(Mapping[str, BlockRecipe]):
    """Block recipes by name, in registration order: the built-ins first."""

    def __init__(self) -> None:
        self._recipes: dict[str, BlockRecipe] = {}
        self._builtins_loaded = False
        self._plugins_loaded = False

    def register(self, recipe: BlockRecipe) -> None:
        self._builtins()
        known = self._recipes.get(recipe.name)
        if known is not None and known is not recipe:
            raise PluginError(f"a block kind `{recipe.name}` is registered already")
        self._recipes[recipe.name] = recipe

    def _builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for recipe in _built_in_recipes():
                self._recipes[recipe.name] = recipe

    def load_plugins(self) -> None:
        """Call every `resdsl.blocks` entry point once."""
        self._builtins()
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                point.load()()
            except PluginError:
                raise
            except Exception as error:  # a broken plugin is named, not a traceback
                raise PluginError(
                    f"block plugin `{point.name}` ({point.value}) failed to load: {error}"
                ) from error

    def built_in(self) -> list[str]:
        """The names of the built-in kinds, without loading any plugin."""
        return [recipe.name for recipe in _built_in_recipes()]

    def __getitem__(self, name: str) -> BlockRecipe:
        self._builtins()
        if name not in self._recipes and not self._plugins_loaded:
            self.load_plugins()
        return self._recipes[name]

    def __iter__(self) -> Iterator[str]:
        self.load_plugins()
        return iter(list(self._recipes))

    def __len__(self) -> int:
        self.load_plugins()
        return len(self._recipes)


RECIPES = Registry()


def register_block(recipe: BlockRecipe) -> None:
    """Add a block kind; `block NAME(...)` then reads its arguments and builds its layers."""
    RECIPES.register(recipe)
