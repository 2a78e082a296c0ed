"""Importing TensorFlow (and Keras on it) with its start-up log lines held to
TF_CPP_MIN_LOG_LEVEL.

TensorFlow logs through absl, whose messages before `absl::InitializeLog()` go to standard
error whatever TF_CPP_MIN_LOG_LEVEL says: importing TensorFlow 2.16+ on a CPU prints the
`port.cc` "oneDNN custom operations are on" line at INFO level, each time after absl's own
"All log messages before absl::InitializeLog() ..." warning. It prints twice because two
shared libraries each link their own copy of TensorFlow's `port.cc` and of absl's log state:
`libtensorflow_framework.so.2`, loaded first, and the profiler's `_pywrap_profiler_plugin.so`,
loaded later in the same import.

:func:`import_quietly` runs the import with file descriptor 2 sent to a temporary file, then
writes back every line but the absl lines below TF_CPP_MIN_LOG_LEVEL (I = 0, W = 1, E = 2,
F = 3) and absl's pre-initialisation warning: what TensorFlow would print if it applied the
variable to these lines as it does to later ones. Nothing else is hidden (Python warnings,
errors, any other library's output), and with the variable unset or 0 nothing is filtered.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
from types import ModuleType

# absl's prefix: severity letter, MMDD, the time (seconds since the epoch before absl is
# initialised), thread id, file:line]
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]\s]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}


def min_log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it: 0 (everything) when unset or not a number."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0)
    except ValueError:
        return 0


def import_quietly(name: str) -> ModuleType:
    """`importlib.import_module(name)` ("tensorflow", "keras"); the first import of TensorFlow
    in the process has its start-up log lines filtered by TF_CPP_MIN_LOG_LEVEL (see the module
    docstring). Exceptions propagate as from a plain import."""
    level = min_log_level()
    if name in sys.modules or "tensorflow" in sys.modules or level <= 0:
        return importlib.import_module(name)
    try:
        held = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    except OSError:  # nowhere to hold the lines: import as is
        return importlib.import_module(name)
    with held, _filtered_stderr(held, level):
        return importlib.import_module(name)


def keep_line(line: bytes, level: int) -> bool:
    """Whether a line written to standard error during the import is shown at `level`."""
    if line.startswith(_ABSL_PREAMBLE):
        return level <= 0
    match = _ABSL_LINE.match(line)
    return match is None or _SEVERITY[match.group(1)] >= level


@contextlib.contextmanager
def _filtered_stderr(held, level: int):
    """File descriptor 2 sent to the file `held` for the duration, then the lines that
    :func:`keep_line` keeps written to the real standard error."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(held.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        held.seek(0)
        kept = b"".join(line for line in held if keep_line(line, level))
        while kept:
            kept = kept[os.write(2, kept) :]
