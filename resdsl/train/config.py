"""`resdsl train --config FILE.toml`: every option of the command from a TOML file.

A key is an option's name as the command line spells it without its dashes (`batch-size`,
`nesterov`, `channels-last`; `batch_size` is taken too), plus `spec` for the spec file. Options
given on the command line override the file's. Relative paths (`spec`, `data`, `init`, `out`)
are read from the file's folder, so that a file and the specs beside it travel together.

A run writes the options it used, every value resolved (the preset's included), as
OUT/config.toml: `resdsl train --config OUT/config.toml --out OTHER` runs the same recipe again.
"""

from __future__ import annotations

import difflib
import json
import math
import os

import click

CONFIG_FILE = "config.toml"
# Options that name files or folders: a relative path is the config file's folder's.
PATHS = ("spec", "data", "init", "out")
# Not options of a run: what reads the file, and resuming (a command-line decision).
NOT_IN_FILE = ("config", "resume")


class ConfigError(Exception):
    """A config file the command cannot use: the message is one line, the exit status 2."""


def keys(command: click.Command) -> dict[str, click.Parameter]:
    """The keys a config file may hold for `command`, each to its parameter."""
    found = {}
    for param in command.params:
        if param.name in NOT_IN_FILE or param.name == "help":
            continue
        if isinstance(param, click.Argument):
            key = param.name
        else:
            key = next(o for o in param.opts if o.startswith("--"))[2:]
        found[key] = param
    return found


def read(path: str, command: click.Command, ctx: click.Context) -> dict[str, object]:
    """The options of the TOML file at `path`, by parameter name, each checked and converted
    as the command line's would be: a file that cannot be read, is not TOML, or holds an
    unknown key or a bad value is a :class:`ConfigError` naming the file and the key."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ConfigError(
                "--config reads TOML with Python 3.11's tomllib; on Python 3.10: pip install tomli"
            ) from None
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"--config `{path}`: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--config `{path}`: a folder, not a TOML file") from None
    except OSError as error:
        raise ConfigError(f"--config `{path}`: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not a TOML file: {error}") from None
    known = keys(command)
    by_name = {key.replace("-", "_"): key for key in known}
    folder = os.path.dirname(os.path.abspath(path))
    values: dict[str, object] = {}
    for raw_key, value in table.items():
        key = raw_key if raw_key in known else by_name.get(raw_key)
        if key is None:
            near = difflib.get_close_matches(raw_key, list(known), n=1)
            hint = f"; did you mean `{near[0]}`?" if near else f"; known: {', '.join(known)}"
            raise ConfigError(f"{path}: unknown key `{raw_key}`{hint}")
        param = known[key]
        if param.name in values:
            raise ConfigError(f"{path}: `{key}` is given twice (as `{raw_key}` too)")
        values[param.name] = _convert(path, key, value, param, ctx, folder)
    return values


def _convert(path, key, value, param, ctx, folder):
    """`value` as the command line's `--key value` would give it, or a ConfigError."""
    from resdsl.train.data import NAMES

    flag = isinstance(param, click.Option) and param.is_flag
    kind = param.type
    wanted = None
    if flag or isinstance(kind, click.types.BoolParamType):
        wanted = "true or false" if not isinstance(value, bool) else None
    elif isinstance(kind, (click.types.IntParamType,)):
        wanted = "a whole number" if isinstance(value, bool) or not isinstance(value, int) else None
    elif isinstance(kind, click.types.FloatParamType):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        wanted = "a number" if not number else None
    elif not isinstance(value, str):
        wanted = "a string"
    if wanted:
        raise ConfigError(f"{path}: `{key} = {_shown(value)}`: expected {wanted}")
    if param.name in PATHS and not (param.name == "data" and value in NAMES):
        value = os.path.join(folder, os.path.expanduser(value))
    if flag:
        return value
    try:
        return kind.convert(value, param, ctx)
    except click.BadParameter as error:
        raise ConfigError(f"{path}: `{key} = {_shown(value)}`: {error.message}") from None


def _shown(value) -> str:
    """A TOML value as the file spells it (near enough for a message)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def toml_value(value) -> str:
    """`value` (a string, number, boolean or list of them) as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are TOML's basic-string ones
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no TOML form here")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def resolved_text(values: dict[str, object]) -> str:
    """OUT/config.toml: `values` (key -> value, None left out) as TOML, with a header."""
    lines = [
        "# The options this run used, every value resolved (the preset's included).",
        "# Run the recipe again: resdsl train --config THIS_FILE --out ANOTHER_FOLDER",
    ]
    lines += [f"{key} = {toml_value(v)}" for key, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"
