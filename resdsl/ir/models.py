"""The IR's pydantic models, derived from resdsl.ir's node classes on first use.

The phases build plain nodes (resdsl.ir says why). Whatever needs pydantic, validating data
from outside, the JSON Schema, JSON and dict dumps, goes through the model of a node's class:
a pydantic model of the same name, docstring, fields, defaults and field order, frozen and
forbidding unknown fields, whose annotations are the node class's own, read with every node
class standing for its model. A node becomes a model instance without validation (as it was
built), and a validated model instance becomes a node again, so callers only see nodes.
"""

from __future__ import annotations

import inspect
import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from resdsl.ir import attention, composite, layers, network, spec, syntax
from resdsl.ir import node as nodes_module
from resdsl.ir.node import Discriminator, Node

# The IR's modules, each after those it builds on: a node's base is defined before it.
_MODULES = (nodes_module, syntax, spec, layers, attention, composite, network)


class _Model(BaseModel):
    # defer_build: a model's validator and serializer are built on first use, so asking for
    # one model's schema does not build all of them.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


def _models() -> dict[type, type[BaseModel]]:
    """Every node class of resdsl.ir and its model, with the layer types plugins registered
    (built again when one more is)."""
    return _models_with(len(composite.PLUGIN_LAYERS))


@cache
def _models_with(plugins: int) -> dict[type, type[BaseModel]]:
    nodes = [
        v
        for module in _MODULES
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Node) and v.__module__ == module.__name__
    ]
    nodes += composite.PLUGIN_LAYERS
    models: dict[type, type[BaseModel]] = {Node: _Model}
    for node in nodes[1:]:  # in the order of definition: bases before their subclasses
        (base,) = node.__bases__
        # Annotations as written (strings), read in `names` below; defaults as assigned.
        fields = {
            name: (annotation, node.__dict__[name]) if name in node.__dict__ else annotation
            for name, annotation in inspect.get_annotations(node).items()
        }
        models[node] = create_model(
            node.__name__,
            __base__=models[base],
            __doc__=node.__doc__,
            __module__=__name__,
            **fields,
        )
    # resdsl.ir's names (node classes, the unions and literals built of them, typing's names)
    # with every node class replaced by its model.
    namespace = {name: value for module in _MODULES for name, value in vars(module).items()}
    if composite.PLUGIN_LAYERS:  # the union of layer types, with the plugins'
        union = typing.Union[(*composite._BUILT_IN, *composite.PLUGIN_LAYERS)]
        namespace["AnyLayer"] = typing.Annotated[union, Discriminator("op")]
    names = {name: _translate(value, models) for name, value in namespace.items()}
    for model in models.values():
        model.model_rebuild(_types_namespace=names)
    return models


def _translate(value: Any, models: dict[type, type[BaseModel]]) -> Any:
    """A type of resdsl.ir's annotations with node classes replaced by their models."""
    if isinstance(value, type) and value in models:
        return models[value]
    if isinstance(value, Discriminator):
        return Field(discriminator=value.field)
    origin, args = typing.get_origin(value), typing.get_args(value)
    if origin is None or origin is typing.Literal or not args:
        return value
    args = tuple(_translate(arg, models) for arg in args)
    if origin is typing.Annotated:
        return typing.Annotated[args]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[args]  # noqa: UP007 - the members are only known here
    return origin[args]


def model(node_class: type) -> type[BaseModel]:
    """The pydantic model of a node class of resdsl.ir."""
    return _models()[node_class]


def as_model(value: Any) -> Any:
    """`value` with every node in it an instance of its model, built as the node was, without
    validation."""
    if isinstance(value, Node):
        return model(type(value)).model_construct(**{k: as_model(v) for k, v in value})
    if isinstance(value, (tuple, list)):
        return type(value)(as_model(item) for item in value)
    if isinstance(value, dict):
        return {key: as_model(item) for key, item in value.items()}
    return value


def _as_node(value: Any) -> Any:
    """`value` with every model instance in it the node it describes."""
    if isinstance(value, BaseModel):
        node = _nodes()[type(value)]
        return node(**{name: _as_node(getattr(value, name)) for name in node._fields})
    if isinstance(value, (tuple, list)):
        return type(value)(_as_node(item) for item in value)
    if isinstance(value, dict):
        return {key: _as_node(item) for key, item in value.items()}
    return value


def _nodes() -> dict[type[BaseModel], type]:
    return _nodes_with(len(composite.PLUGIN_LAYERS))


@cache
def _nodes_with(plugins: int) -> dict[type[BaseModel], type]:
    return {model: node for node, model in _models().items()}


def validate(node_class: type, obj: Any, **options: Any) -> Any:
    """`node_class.model_validate(obj)`: nodes inside `obj` are taken as they are."""
    return _as_node(model(node_class).model_validate(as_model(obj), **options))


def validate_json(node_class: type, data: str | bytes, **options: Any) -> Any:
    return _as_node(model(node_class).model_validate_json(data, **options))
