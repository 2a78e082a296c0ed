"""The IR's node: frozen, typed by annotations, checked only for its field names when built
(resdsl.ir says why), with pydantic's methods through its class's model (resdsl.ir.models)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, NamedTuple


class _ModelFields:
    """`NodeClass.model_fields`: its model's fields (pydantic's FieldInfo), by name, in order."""

    def __get__(self, instance: Node | None, owner: type[Node]) -> dict[str, Any]:
        from resdsl.ir.models import model

        return model(owner).model_fields


_REQUIRED = object()  # in `Node._template`: a field without a default


class Node:
    """A node of the IR: immutable, built from keyword arguments. Its fields are its class's
    annotations, after its base class's, each with an optional default (`stride: int = 1`)."""

    # Every subclass's layout, set by __init_subclass__.
    _fields: ClassVar[tuple[str, ...]] = ()
    _names: ClassVar[frozenset[str]] = frozenset()
    _required: ClassVar[frozenset[str]] = frozenset()
    _defaults: ClassVar[dict[str, Any]] = {}
    # Every field in order, with its default or `_REQUIRED`: a node's values are a copy of this
    # updated with the keywords given (updating keeps the order), two C-level dict operations.
    _template: ClassVar[dict[str, Any]] = {}
    model_fields: ClassVar[dict[str, Any]] = _ModelFields()  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__annotations__  # the class's own (since Python 3.10), strings
        cls._fields = (*cls._fields, *(name for name in own if name not in cls._names))
        cls._names = frozenset(cls._fields)
        inherited = {name: v for name, v in cls._defaults.items() if name not in own}
        cls._defaults = {**inherited, **{n: cls.__dict__[n] for n in own if n in cls.__dict__}}
        cls._required = cls._names - cls._defaults.keys()
        cls._template = {name: cls._defaults.get(name, _REQUIRED) for name in cls._fields}

    def __init__(self, /, **fields: Any) -> None:
        cls = type(self)
        if not (fields.keys() <= cls._names and cls._required <= fields.keys()):
            _bad_fields(cls, fields)
        values = cls._template.copy()
        values.update(fields)
        object.__setattr__(self, "__dict__", values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: use model_copy(update=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """(name, value) of every field, in order, as pydantic's models: `dict(node)`."""
        return iter(self.__dict__.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._fields_text(', ')})"

    def __str__(self) -> str:
        return self._fields_text(" ")

    def _fields_text(self, separator: str) -> str:
        return separator.join(f"{name}={value!r}" for name, value in self.__dict__.items())

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Any:
        """A copy with the fields in `update` replaced (checked for their names only)."""
        return type(self)(**{**self.__dict__, **(update or {})})

    # What needs pydantic goes through the node class's model (resdsl.ir.models).

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Any:
        from resdsl.ir.models import validate

        return validate(cls, obj, **options)

    @classmethod
    def model_validate_json(cls, data: str | bytes, **options: Any) -> Any:
        from resdsl.ir.models import validate_json

        return validate_json(cls, data, **options)

    @classmethod
    def model_json_schema(cls, **options: Any) -> dict[str, Any]:
        from resdsl.ir.models import model

        return model(cls).model_json_schema(**options)

    def model_dump(self, **options: Any) -> dict[str, Any]:
        from resdsl.ir.models import as_model

        return as_model(self).model_dump(**options)

    def model_dump_json(self, **options: Any) -> str:
        from resdsl.ir.models import as_model

        return as_model(self).model_dump_json(**options)


def _bad_fields(cls: type[Node], fields: Mapping[str, Any]) -> None:
    unknown, missing = fields.keys() - cls._names, cls._required - fields.keys()
    problems = [
        f"{what} {', '.join(sorted(found))}"
        for what, found in (("unknown", unknown), ("missing", missing))
        if found
    ]
    raise TypeError(f"{cls.__name__}: " + "; ".join(problems))


class Discriminator(NamedTuple):
    """Marks a union of node classes that one field tells apart (`op` of layers): pydantic's
    discriminated union in the models (`Field(discriminator=...)`)."""

    field: str


class Span(Node):
    """A range of source text: 1-based line and column, end exclusive; offsets in characters."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int
