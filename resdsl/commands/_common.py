"""Helpers shared by the tooling commands: load a spec or exit with its diagnostics."""

from __future__ import annotations

import sys

import click

from ..driver import analyze_file
from ..ir import Network
from ..schema import MAX_INPUT_CHANNELS, MAX_INPUT_SIZE
from ._spec_options import EXIT_SPEC, report


def load_or_exit(path: str, input_shape: tuple[int, int, int] | None = None) -> Network:
    """The elaborated network of `path` (for another input size with `input_shape`); on errors,
    print them and exit 1 (2 for I/O)."""
    result = analyze_file(path, input_shape=input_shape)
    status = report([result], "text")
    if not result.ok:
        sys.exit(status or EXIT_SPEC)
    return result.network


def input_option(ctx, param, value: str | None) -> tuple[int, int, int] | None:
    """Click callback: `CxHxW` to (channels, height, width)."""
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"`{value}` is not CxHxW, e.g. 3x160x160")
    c, h, w = (int(p) for p in parts)
    if c > MAX_INPUT_CHANNELS or max(h, w) > MAX_INPUT_SIZE:
        raise click.BadParameter(
            f"`{value}` is beyond the limits ({MAX_INPUT_CHANNELS} channels, "
            f"{MAX_INPUT_SIZE} pixels a side)"
        )
    return c, h, w
