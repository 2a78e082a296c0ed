"""A block kind as one recipe: its arguments (readers and defaults), the layers it builds, how
its classes are named, and what it checks.

Everything that knows a block kind reads its recipe: the schema (which arguments `block` takes
and their defaults), elaboration (the layers), the validation passes (the recipe's checks), the
planner (class names), the language reference, the LSP's completion and hover. A new kind is a
new recipe, registered (:func:`resdsl.blocks.registry.register_block`); nothing else names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from resdsl.ir import (
    ActLayer,
    AntiAliasSpec,
    BlockSpec,
    BlurPoolLayer,
    NormLayer,
    Pool,
    PoolLayer,
)
from resdsl.language.values import Reader


@dataclass(frozen=True)
class BlockLayers:
    """What a recipe builds of one block: the layers before the branch splits off from the
    shortcut (a pre-activation block's first norm and activation, which the shortcut may read),
    the branch, and those after the addition."""

    pre: tuple = ()
    branch: tuple = ()
    post: tuple = ()


class Builder:
    """What a recipe builds one block from: the block's arguments and widths, its stride and
    dilations, its anti-aliasing, and the network's conventions, with the layers every block
    shares made here so that all of them are named and configured alike."""

    def __init__(
        self,
        spec: BlockSpec,
        widths: Mapping[str, int],
        stride: int,
        dilation: int,
        stage_dilation: int,
        anti_alias: AntiAliasSpec | None,
        conventions: Any,
    ):
        self.spec = spec
        self.widths = dict(widths)  # "in", "first", "mid", "out" (and a recipe's own)
        self.stride = stride
        self.dilation = dilation  # the block's own: a dilated stage's first keeps the one before
        self.stage_dilation = stage_dilation
        self.anti_alias = anti_alias  # where this block anti-aliases (it strides or redilates)
        self._conventions = conventions

    def bias(self, normed: bool) -> bool:
        """Whether a convolution has a bias, given whether a norm follows it."""
        return self._conventions.bias(normed)

    @property
    def normalised(self) -> bool:
        return self._conventions.normalised

    @property
    def zero_last(self) -> bool:
        """Whether the branch's last norm (or, without one, convolution) starts at zero."""
        return self._conventions.zero_last

    def names(self, role: str, **fields: Any) -> dict[str, str]:
        """A layer's `torch` and `keras` names for `role` in the spec's naming scheme
        (:mod:`resdsl.ir.naming`: `block.conv` with `n=1` is `conv1` and `1_conv`)."""
        return self._conventions.names(role, **fields)

    def norm(self, names: dict[str, str], width: str, **fields: Any) -> list[NormLayer]:
        """A norm of the network's kind over the block's `width` (none for `norm none`)."""
        return self._conventions.norm(names, self.widths[width], width=width, **fields)

    def act(self, names: dict[str, str]) -> ActLayer:
        """The network's activation."""
        return ActLayer(**names)

    def anti_aliasing(self, names: dict[str, str], width: str) -> BlurPoolLayer | PoolLayer:
        """The layer that applies the block's stride after a convolution that no longer
        strides (timm's `aa_layer`): a blur pool or an average pool."""
        assert self.anti_alias is not None
        return anti_alias_layer(
            self.anti_alias, names, self.widths[width], self.stride, width=width, strided=True
        )


def anti_alias_layer(
    spec: AntiAliasSpec,
    names: dict[str, str],
    channels: int,
    stride: int,
    *,
    width: str = "mid",
    strided: bool = False,
) -> BlurPoolLayer | PoolLayer:
    """The layer that applies a stride after a convolution that no longer does: a blur pool
    over `channels` (the block's `width`), or an average pool whose window is the stride
    (timm's `aa_layer`), which takes whatever channels it is given. `strided`: it applies the
    block's stride."""
    if spec.kind == "blur":
        return BlurPoolLayer(
            **names,
            channels=channels,
            size=spec.size,
            stride=stride,
            # Zhang's padding: a map of n pixels strided by s becomes ceil(n / s), as the
            # shortcut's, for every size and stride (timm's symmetric one agrees only for odd
            # sizes at stride 2).
            padding=((spec.size - 1) // 2, spec.size // 2),
            width=width,
            strided=strided,
        )
    # In a block, rounding up, as every other strided layer there does, so that an odd map still
    # meets the shortcut's size (timm's floor agrees where the stride divides the map, as in its
    # nets); in the stem, which no shortcut meets, timm's floor.
    pool = Pool(kind="avg", kernel=stride, stride=stride, padding=0, ceil=strided)
    return PoolLayer(**names, pool=pool, strided=strided)


# The arguments every block kind has, as the typed spec's fields (:class:`resdsl.ir.BlockSpec`),
# and their values where a kind does not read them; a kind's other arguments are its `options`.
COMMON_DEFAULTS = {
    "expansion": 1.0, "groups": 1, "group_width": None, "group_size": None, "width_factor": 1.0,
    "stride_on": None, "reduce_first": 1,
}  # fmt: skip
COMMON_ARGUMENTS = tuple(COMMON_DEFAULTS)


def refuse(stage, block: BlockSpec, report, why: Mapping[str, str], instead: str) -> None:
    """E402 for the settings a kind cannot build, each with its reason in `why`: `stride_on`
    (given at all), `reduce_first` (other than 1) and `anti_alias` (anywhere in the stage); the
    help names the kind to use `instead`."""
    from resdsl.diagnostics import core as dx

    given = {
        "stride_on": block.stride_on is not None,
        "reduce_first": block.reduce_first != 1,
        "anti_alias": any(run.block.anti_alias != "none" for run in stage.runs),
    }
    reasons = [f"`{name}` ({reason})" for name, reason in why.items() if given[name]]
    if reasons:
        report(
            dx.E_NOT_FOR_KIND,
            f"`{block.name}` blocks do not take " + " or ".join(reasons),
            help=f"remove them, or use `{instead}` blocks",
        )


# A recipe's check: (the stage, its block spec, its inner width, report) where `report(code,
# message, **details)` adds a diagnostic at the block's span, once per span and code.
Check = Callable[[Any, BlockSpec, int, Callable[..., None]], None]


@dataclass(frozen=True)
class BlockRecipe:
    """One block kind.

    * `arguments`: every argument `block NAME(...)` reads, with its reader; `defaults` gives
      the kind's own values where the spec leaves them out (those of the arguments every kind
      has, :data:`COMMON_DEFAULTS`, where it says nothing). `inapplicable` are arguments the
      kind reads only to say, in its check, why they do not apply (a basic block's `groups`);
      the reference leaves them out.
    * `build`: the block's layers, from a :class:`Builder`.
    * `layout` and `preact`: the block's structure in words (`basic`, `bottleneck`; a norm and
      activation before each convolution), for the importers and reports; `class_words`: the
      words of its generated class's name (`Bottleneck`; `PreAct` is added for `preact`).
    * `grouped`: whether `groups` groups its spatial convolutions.
    * `check`: its diagnostics (see :data:`Check`).
    """

    name: str
    summary: str  # one line, for hover and the reference
    build: Callable[[Builder], BlockLayers]
    arguments: Mapping[str, Reader]
    defaults: Mapping[str, Any]
    layout: str
    class_words: tuple[str, ...]
    preact: bool = False
    grouped: bool = False
    inapplicable: frozenset[str] = frozenset()
    check: Check | None = None
    docs: Mapping[str, str] = field(default_factory=dict)  # an argument's meaning, in words
