"""The syntax tree: settings and stages exactly as written, values untyped."""

from __future__ import annotations

import math

from resdsl.ir.node import Node, Span


class Name(Node):
    text: str
    span: Span


class Number(Node):
    value: float
    text: str
    span: Span

    @property
    def is_int(self) -> bool:
        if not math.isfinite(self.value):  # `1e999`, or more digits than a float holds
            return False
        return self.value == int(self.value) and not any(c in self.text for c in ".eE")


class Dims(Node):
    """A size written as `3x224x224` or `3x3`."""

    parts: tuple[int, ...]
    text: str
    span: Span


class String(Node):
    text: str
    span: Span


class Arg(Node):
    name: Name
    value: Value
    span: Span


class Call(Node):
    """A preset or kind with arguments: `bottleneck(expansion: 4)`."""

    name: Name
    args: tuple[Arg, ...]
    span: Span


Value = Call | Name | Number | Dims | String


class Setting(Node):
    key: Name
    value: Value
    span: Span


class StageDecl(Node):
    name: Name
    blocks: Number
    width: Number
    stride: Number | None
    settings: tuple[Setting, ...]
    span: Span


class NetworkDecl(Node):
    name: Name
    extends: String | None
    settings: tuple[Setting, ...]
    stages: tuple[StageDecl, ...]
    span: Span


class SpecFile(Node):
    path: str
    network: NetworkDecl
