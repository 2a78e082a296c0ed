"""Whole-process time of `resdsl compile specs/resnet152.res --backend torch`.

    python benchmarks/bench_compile.py [--runs 15]

Prints the median wall time of the process (target <= 250 ms), with `python -c pass` as the
interpreter's own floor, and asserts that compiling never imports torch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "resdsl", "compile", "specs/resnet152.res", "--backend", "torch"]


def median_time(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def imported_modules(command: list[str]) -> set[str]:
    run = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
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
    args = parser.parse_args()
    modules = imported_modules(COMMAND)
    assert "torch" not in modules, "compiling imported torch"
    assert "numpy" not in modules, "compiling imported numpy"
    floor = median_time([sys.executable, "-c", "pass"], args.runs)
    compile_time = median_time(COMMAND, args.runs)
    print(
        f"resdsl compile specs/resnet152.res --backend torch: median {compile_time * 1e3:.0f} ms "
        f"over {args.runs} runs (target <= 250 ms); bare interpreter {floor * 1e3:.0f} ms; "
        f"torch not imported"
    )


if __name__ == "__main__":
    main()
