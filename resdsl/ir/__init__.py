"""The intermediate representations, from the text as written to the elaborated network.

Three levels, each produced by one phase:

* the syntax tree (:class:`SpecFile`): settings and stages exactly as written, untyped values;
* the spec (:class:`NetworkSpec`): typed, defaults filled in, ``extends`` resolved, every field
  still pointing at the place that set it;
* the network (:class:`Network`): every block with concrete channels, stride, shortcut, shapes,
  parameters and multiply-accumulates. Backends read only this level.

Every node is frozen and forbids unknown fields, so a phase cannot quietly change what an
earlier one decided, and a typo in a field name is a bug caught at construction.

The phases build nodes from values they have already checked, so constructing a node checks
only its field names (unknown or missing ones raise TypeError) and validates nothing. Nodes are
plain classes, not pydantic models: importing pydantic's model machinery and creating a model
class for each node would cost a short-lived command such as `resdsl check` more than all its
own work (see the docs' Speed page). pydantic still defines what a node may hold: each
node class has a model with the same name, fields and docstring, derived on first use by
:mod:`resdsl.ir.models`, behind the methods nodes share with pydantic's models
(`model_validate`, `model_validate_json`, `model_json_schema`, `model_dump`,
`model_dump_json`, `model_fields`). Validation proper applies wherever data comes from outside:
`Network.model_validate_json(...)`, and the tests, which validate every spec's IR at every level
against the models.

The modules follow the levels: `node` (the node class and source spans), `syntax`, `spec`,
`layers` (the elaborated network's layer types, each answering for its own shape, cost, weights
and words) and `network`; `models` holds the pydantic models. Everything is importable from
`resdsl.ir`.
"""

from __future__ import annotations

from resdsl.ir.attention import (
    BilinearAttentionLayer,
    ChannelConvLayer,
    EcaLayer,
    GlobalContextLayer,
    LineConvLayer,
    SqueezeExciteLayer,
)
from resdsl.ir.composite import (
    AnyLayer,
    BranchLayer,
    BranchPath,
    SelectAttention,
    flatten,
    layer_stride,
    make_divisible,
    register_layer,
    weighted,
)
from resdsl.ir.layers import (
    ActLayer,
    BlurPoolLayer,
    Conv,
    ConvLayer,
    Cost,
    DropoutLayer,
    GlobalPoolLayer,
    IdentityLayer,
    Layer,
    LinearLayer,
    NormLayer,
    PadChannelsLayer,
    Pool,
    PoolLayer,
    Shape,
    Width,
)
from resdsl.ir.network import (
    Block,
    BlockRun,
    Conventions,
    Head,
    Network,
    Shortcut,
    ShortcutKind,
    Source,
    Stage,
    Stem,
)
from resdsl.ir.node import (
    Discriminator,
    Node,
    Span,
)
from resdsl.ir.spec import (
    FUSED_NORMS,
    Activation,
    AntiAliasSpec,
    AttentionSpec,
    BlockLayout,
    BlockSpec,
    ConvBias,
    ConvSpec,
    Gate,
    HeadSpec,
    InitSpec,
    NetworkSpec,
    NormKind,
    NormSpec,
    ShortcutPolicy,
    ShortcutSpec,
    StageSpec,
    StemPool,
    StemPreset,
    StemSpec,
    Waiver,
)
from resdsl.ir.syntax import (
    Arg,
    Call,
    Dims,
    Name,
    NetworkDecl,
    Number,
    Setting,
    SpecFile,
    StageDecl,
    String,
    Value,
)

__all__ = [
    "FUSED_NORMS",
    "ActLayer",
    "Activation",
    "AntiAliasSpec",
    "AnyLayer",
    "Arg",
    "AttentionSpec",
    "BilinearAttentionLayer",
    "Block",
    "BlockLayout",
    "BlockRun",
    "BlockSpec",
    "BlurPoolLayer",
    "BranchLayer",
    "BranchPath",
    "Call",
    "ChannelConvLayer",
    "Conv",
    "ConvBias",
    "ConvLayer",
    "ConvSpec",
    "Conventions",
    "Cost",
    "Dims",
    "Discriminator",
    "DropoutLayer",
    "EcaLayer",
    "Gate",
    "GlobalContextLayer",
    "GlobalPoolLayer",
    "Head",
    "HeadSpec",
    "IdentityLayer",
    "InitSpec",
    "Layer",
    "LineConvLayer",
    "LinearLayer",
    "Name",
    "Network",
    "NetworkDecl",
    "NetworkSpec",
    "Node",
    "NormKind",
    "NormLayer",
    "NormSpec",
    "Number",
    "PadChannelsLayer",
    "Pool",
    "PoolLayer",
    "SelectAttention",
    "Setting",
    "Shape",
    "Shortcut",
    "ShortcutKind",
    "ShortcutPolicy",
    "ShortcutSpec",
    "Source",
    "Span",
    "SpecFile",
    "SqueezeExciteLayer",
    "Stage",
    "StageDecl",
    "StageSpec",
    "Stem",
    "StemPool",
    "StemPreset",
    "StemSpec",
    "String",
    "Value",
    "Waiver",
    "Width",
    "flatten",
    "layer_stride",
    "make_divisible",
    "register_layer",
    "weighted",
]
