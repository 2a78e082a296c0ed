"""How fast `resdsl check` is: whole process, in-process throughput, and depth independence.

Prints medians (and ratios against a bare `python -c pass` start-up measured in the same run).
Targets: `resdsl check specs/resnet152.res` <= 200 ms per process; >= 500 resnet50-sized specs
a second in process; ResNet-1202 about as fast as ResNet-20 (elaboration works on runs of
identical blocks). Run: `make bench` or `.venv/bin/python benchmarks/bench_check.py`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESDSL = Path(sys.executable).parent / "resdsl"


def _median_ms(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _median_s(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    os.chdir(ROOT)
    runs = int(os.environ.get("RESDSL_BENCH_RUNS", "20"))
    python = _median_ms([sys.executable, "-c", "pass"], runs)
    command = (
        [str(RESDSL), "check", "specs/resnet152.res"]
        if RESDSL.exists()
        else [sys.executable, "-m", "resdsl", "check", "specs/resnet152.res"]
    )
    check = _median_ms(command, runs)
    print(f"python -c pass                      median {python:7.1f} ms")
    print(
        f"resdsl check specs/resnet152.res     median {check:7.1f} ms  "
        f"(target <= 200 ms; {check / python:.1f}x a bare interpreter)"
    )

    from resdsl.driver import analyze_text

    text = (ROOT / "specs/resnet50.res").read_text()
    analyze_text(text, "resnet50.res")  # build the parser once
    batch = 200
    per_batch = _median_s(lambda: [analyze_text(text, "resnet50.res") for _ in range(batch)], 7)
    rate = batch / per_batch
    print(
        f"analyze_text(resnet50.res)          median {per_batch / batch * 1e3:7.3f} ms/spec, "
        f"{rate:,.0f} specs/s (target >= 500)"
    )

    cifar = ROOT / "specs/cifar"
    os.chdir(cifar)  # resnet1202 extends resnet20; analyze_text reads parents from here
    deep, shallow = (cifar / "resnet1202.res").read_text(), (cifar / "resnet20.res").read_text()
    t20 = _median_s(lambda: [analyze_text(shallow, "resnet20.res") for _ in range(50)], 9) / 50
    t1202 = _median_s(lambda: [analyze_text(deep, "resnet1202.res") for _ in range(50)], 9) / 50
    print(f"analyze_text(resnet20.res)          median {t20 * 1e3:7.3f} ms")
    print(
        f"analyze_text(resnet1202.res)        median {t1202 * 1e3:7.3f} ms  "
        f"ratio 1202/20 = {t1202 / t20:.2f} (reads and parses its parent too)"
    )
    # The same depth written out in one file: only the block count differs from ResNet-20.
    flat = shallow.replace("3 x ", "200 x ").replace("network resnet20", "network resnet1202")
    tflat = _median_s(lambda: [analyze_text(flat, "flat1202.res") for _ in range(50)], 9) / 50
    print(
        f"analyze_text(1202 in one file)      median {tflat * 1e3:7.3f} ms  "
        f"ratio 1202/20 = {tflat / t20:.2f} (target ~1: cost does not grow with depth)"
    )


if __name__ == "__main__":
    main()
