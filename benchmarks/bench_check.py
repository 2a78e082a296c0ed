"""How fast `resdsl check` is: whole process against its dependencies' imports, in-process
throughput, and depth independence.

Whole process (see process_times.py): medians of `python -c pass`, of importing lark, pydantic
and jinja2 (the reference), of `resdsl check specs/resnet152.res` and of `resdsl compile` for
both backends, measured in one run, with each one's ratio to the reference (target <= 1.3x).
In process: >= 500 resnet50-sized specs a second; ResNet-1202 about as fast as ResNet-20
(elaboration works on runs of identical blocks).

    .venv/bin/python benchmarks/bench_check.py [--runs 20] [--no-bytecode]   # or `make bench`
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from process_times import report

ROOT = Path(__file__).resolve().parent.parent


def _median_s(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RESDSL_BENCH_RUNS", "20")))
    parser.add_argument(
        "--no-bytecode", action="store_true", help="time the environment as it is (see above)"
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    report(args.runs, no_bytecode=args.no_bytecode)
    print()

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
