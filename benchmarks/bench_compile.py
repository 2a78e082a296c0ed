"""Whole-process time of `resdsl compile specs/resnet152.res` for both backends (and `check`),
against importing lark, pydantic and jinja2 (the reference; target <= 1.3x), and a check that
compiling imports no framework.

    .venv/bin/python benchmarks/bench_compile.py [--runs 15] [--no-bytecode]

See process_times.py for what is measured and how.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from process_times import ROOT, SPEC, report

FRAMEWORKS = ("torch", "tensorflow", "keras", "numpy")


def imported_modules(arguments: list[str]) -> set[str]:
    """The top-level modules `resdsl ARGUMENTS` imports (from `python -X importtime`)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "resdsl", *arguments],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    names = set()
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-bytecode", action="store_true", help="time the environment as it is")
    args = parser.parse_args()
    for backend in ("torch", "keras"):
        heavy = sorted(imported_modules(["compile", SPEC, "--backend", backend]) & set(FRAMEWORKS))
        assert not heavy, f"compiling for {backend} imported {', '.join(heavy)}"
    print(f"resdsl compile {SPEC}: imports none of {', '.join(FRAMEWORKS)}")
    report(args.runs, no_bytecode=args.no_bytecode)


if __name__ == "__main__":
    main()
