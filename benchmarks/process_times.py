"""Whole-process times of `resdsl check` and `resdsl compile`, against the imports they build on.

Shared by bench_check.py and bench_compile.py. In one run, interleaved so that drifting machine
load hits every command alike, it takes the median wall time of:

* `python -c pass` (the interpreter's own start-up),
* `python -c "import lark, pydantic, jinja2"` (the reference: resdsl's dependencies imported),
* `resdsl check specs/resnet152.res`,
* `resdsl compile specs/resnet152.res --backend torch`, and `--backend keras`,
* `resdsl compile specs/timm/resnetrs420.res` (the largest spec: 139 blocks with
  squeeze-excitation, a ResNet-D shortcut and the ResNet-RS stem), both backends,

and prints each command's ratio to the reference (target: at most 1.3) and the largest spec's
ratio to ResNet-152's (target: at most 1, within noise).

Bytecode: an installed wheel has every module compiled, so by default each command runs once
untimed first, with bytecode written under a temporary PYTHONPYCACHEPREFIX (nothing is written
into the source tree), and the timed runs use it, for the reference's imports and resdsl's
alike. `no_bytecode=True` measures the environment as it is instead (with
PYTHONDONTWRITEBYTECODE=1, an editable install compiles resdsl's modules in every process).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = "specs/resnet152.res"
LARGEST = "specs/timm/resnetrs420.res"
TARGET = 1.3
REFERENCE = "import lark, pydantic, jinja2"


def _resdsl() -> list[str]:
    script = Path(sys.executable).parent / "resdsl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resdsl"]


def commands() -> dict[str, list[str]]:
    """The commands measured, by the label printed."""
    resdsl = _resdsl()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        f'python -c "{REFERENCE}"': [sys.executable, "-c", REFERENCE],
        f"resdsl check {SPEC}": [*resdsl, "check", SPEC],
        f"resdsl compile {SPEC} --backend torch": [*resdsl, "compile", SPEC, "--backend", "torch"],
        f"resdsl compile {SPEC} --backend keras": [*resdsl, "compile", SPEC, "--backend", "keras"],
        f"resdsl compile {LARGEST} --backend torch": [
            *resdsl, "compile", LARGEST, "--backend", "torch",
        ],
        f"resdsl compile {LARGEST} --backend keras": [
            *resdsl, "compile", LARGEST, "--backend", "keras",
        ],
    }  # fmt: skip


def medians(runs: int, *, no_bytecode: bool = False) -> dict[str, float]:
    """Median seconds of each command over `runs` interleaved rounds."""
    todo = commands()
    with tempfile.TemporaryDirectory(prefix="resdsl-bench-pycache-") as prefix:
        env = dict(os.environ)
        if not no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = prefix
        times: dict[str, list[float]] = {label: [] for label in todo}
        for round_ in range(runs + 1):
            for label, command in todo.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
                if round_:  # the first round only warms up
                    times[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in times.items()}


def report(runs: int, *, no_bytecode: bool = False) -> dict[str, float]:
    """Measure, print a table of medians and ratios to the reference, and return the medians."""
    found = medians(runs, no_bytecode=no_bytecode)
    reference = found[f'python -c "{REFERENCE}"']
    condition = "as the environment is" if no_bytecode else "with bytecode, as a wheel installs"
    print(f"whole process, median of {runs} interleaved runs, {condition}:")
    width = max(map(len, found))
    for label, seconds in found.items():
        ratio = seconds / reference
        mark = ""
        if label.startswith("resdsl"):
            mark = "  ok" if ratio <= TARGET else f"  (target <= {TARGET}x)"
        print(f"  {label:<{width}}  {seconds * 1e3:7.1f} ms  {ratio:5.2f}x reference{mark}")
    for backend in ("torch", "keras"):
        largest = found[f"resdsl compile {LARGEST} --backend {backend}"]
        ratio = largest / found[f"resdsl compile {SPEC} --backend {backend}"]
        print(f"  {LARGEST} / {SPEC}, {backend}: {ratio:.2f}x")
    return found
