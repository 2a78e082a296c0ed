"""benchmarks/gpu_evidence.py, the GPU evidence of issue 17: its parts' bookkeeping (a part
that fails or runs out of time is recorded and the next one runs), and `--smoke` end to end on
the CPU, so that the one run on a GPU has every path tried."""

from __future__ import annotations

import importlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_evidence.py"

# Stands in for nvidia-smi: each process of a part (a trainer or a worker) holds 100 MiB.
FAKE_NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *query-compute-apps*)
    for pid in $(pgrep -f "resdsl train|gpu_evidence.py --worker"); do echo "$pid, 100"; done ;;
  *name,driver_version*) echo "Fake GPU, 555.55, 81559" ;;
  *memory.used*) echo "1000" ;;
esac
"""


def _script():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        return importlib.import_module("gpu_evidence")
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_a_failed_or_late_part_is_recorded_and_the_next_one_runs(tmp_path, monkeypatch):
    evidence = _script()
    Part = evidence.Part
    monkeypatch.setattr(
        evidence,
        "PARTS",
        [
            Part("environment", "environment", 10),
            Part("slow", "sleep", 2, min_s=0),
            Part("broken", "broken", 10, min_s=0),
            Part("late", "sleep", 10, min_s=60),
        ],
    )

    def environment(self, part, record, timeout):
        self.report["environment"] = {"cuda_available": True}
        record["status"] = "ok"

    def sleep(self, part, record, timeout):
        code = "import time; print('working', flush=True); time.sleep(60)"
        self._settle(record, self._command(part, [sys.executable, "-c", code], timeout), True)

    def broken(self, part, record, timeout):
        raise RuntimeError("boom")

    for name, method in [("environment", environment), ("sleep", sleep), ("broken", broken)]:
        monkeypatch.setattr(evidence.Evidence, f"_{name}", method, raising=False)
    started = time.perf_counter()
    status = evidence.main(["--out", str(tmp_path), "--deadline", "40"])
    assert status == 1 and time.perf_counter() - started < 30
    report = json.loads((tmp_path / "gpu_evidence.json").read_text())
    parts = report["parts"]
    assert [parts[p]["status"] for p in parts] == ["ok", "timeout", "failed", "skipped"]
    assert parts["slow"]["timed_out"] and "working" in parts["slow"]["error"]
    assert "RuntimeError: boom" in parts["broken"]["error"]
    assert parts["late"]["reason"].startswith("deadline")
    assert report["finished"] and "| slow | timeout |" in (tmp_path / "gpu_evidence.md").read_text()


@pytest.mark.conformance
def test_smoke_runs_every_part_on_cpu(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_NVIDIA_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "evidence"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "gpu_evidence.json").read_text())
    assert report["smoke"] and report["finished"] and "--smoke" in report["command"]
    assert report["environment"]["torch"] and report["environment"]["driver"] == "555.55"
    parts = report["parts"]
    assert list(parts) == [p.name for p in _script().PARTS]
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(parts, "ok")

    throughput = [p for p in parts.values() if p["kind"] == "throughput"]
    assert len(throughput) == 4
    modes = set()
    for part in throughput:
        for mode, entry in part["figures"]["modes"].items():
            modes.add(mode)
            assert entry["status"] == "ok", entry
            assert entry["generated"]["images_per_s"] > 0 and entry["reference"]["images_per_s"] > 0
            assert entry["ratio"] > 0 and entry["rounds"] >= 1
    assert modes == {"fp32", "bf16_channels_last", "bf16_channels_last_compile"}
    assert parts["resnet50"]["figures"]["reference"] == "torchvision:resnet50"

    for name in ("train-torch", "train-keras", "ddp"):
        run = parts[name]
        assert 0 <= run["test_acc"] <= 1 and run["wall_s"] > 0 and run["images_per_s"] > 0
        assert run["device_line"].startswith("device:") and run["returncode"] == 0
        # The fake nvidia-smi's 100 MiB a process, found in the run's own process tree.
        assert run["memory"]["nvidia_smi"]["peak_mib_process_tree"] >= 100
        assert (out / "runs" / name / "result.json").exists()
    assert "torch" in parts["train-keras"]["device_line"]  # KERAS_BACKEND=torch
    assert parts["ddp"]["success"] and "torch.distributed.run" in parts["ddp"]["command"]

    assert report["targets"] and all(t["pass"] is None for t in report["targets"])
    table = (out / "gpu_evidence.md").read_text()
    for heading in ("## Training throughput", "## resdsl train", "## Targets", "## Parts"):
        assert heading in table
