"""GPU evidence (issue 17): the generated networks and `resdsl train`, measured on one GPU.

    python benchmarks/gpu_evidence.py --out benchmarks/results/gpu         # one H100/H200
    python benchmarks/gpu_evidence.py --out /tmp/evidence --smoke          # tiny, on CPU

On a lent GPU machine without a package index (Python 3.12 with torch, torchvision, timm):
`make gpu-wheels` here first, carry `.whl`, and there run
`python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl` and this script
with PYTHONPATH=/tmp/site (resdsl itself need not be installed: the script finds it in the
checkout).

Each part runs in its own subprocess with a time budget, and all of them under one deadline
(--deadline, 450 s by default, so that the whole run stays under 8 minutes): a part that fails
or runs out of time is recorded as such, with the last lines of its output, and the next one
starts. In order:

  environment       GPU, driver, CUDA, cuDNN; torch, torchvision, timm, keras versions
  resnet50          training images/s (one SGD step of batch 256 at 224x224), the generated
                    ResNet-50 (specs/resnet50.res) against torchvision's in the same process,
                    interleaved rounds, medians: fp32; bf16 autocast + channels_last; the same
                    + torch.compile
  train-torch       resdsl train specs/cifar/resnet20.res --data digits (AMP and channels_last
                    are the defaults with CUDA): test accuracy, wall time, images/s
  ddp               python -m torch.distributed.run --standalone --nproc_per_node=1 -m resdsl
                    train ... --epochs 2: success, the trainer's "device:" line, wall time
  train-keras       train-torch with --backend keras and KERAS_BACKEND=torch
  timm-resnet50d    specs/timm/resnet50d.res against timm's resnet50d: bf16 + channels_last; fp32
  timm-seresnet50   specs/timm/seresnet50.res against timm's seresnet50: bf16 + channels_last
  timm-resnet50d-compile  bf16 + channels_last + torch.compile, when the time is left for it

Peak GPU memory: in the throughput parts, torch.cuda.max_memory_allocated of each model's
warm-up steps (reset before each; `resident` is what was allocated before them: both models'
weights and optimizer state). For every subprocess, the allocator's peak as the process reports
it at exit (a sitecustomize hook on PYTHONPATH; the command line is unchanged), and the largest
GPU memory nvidia-smi shows for its process tree (null without nvidia-smi).

OUT/gpu_evidence.json and OUT/gpu_evidence.md (a table) are rewritten after every part, a
throughput part's figures go to OUT/parts/NAME.json after each mode, every subprocess's output
to OUT/logs/NAME.log, and the training runs to OUT/runs/. Targets are reported, never asserted:
generated/reference ratio >= 0.98 in every mode, ResNet-50 bf16 + channels_last + compile >=
3,500 images/s, >= 97% test accuracy on digits, DDP over NCCL named in the device line. The
exit status is 0 when every part finished, 1 when one failed or ran out of time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the workers import bench_gpu from beside it

RESNET20 = "specs/cifar/resnet20.res"
# mode -> (bf16 autocast, channels_last, torch.compile)
MODES = {
    "fp32": (False, False, False),
    "bf16_channels_last": (True, True, False),
    "bf16_channels_last_compile": (True, True, True),
}
MODE_LABELS = {
    "fp32": "fp32",
    "bf16_channels_last": "bf16 + channels_last",
    "bf16_channels_last_compile": "bf16 + channels_last + compile",
}
RATIO_TARGET = 0.98
COMPILE_TARGET = 3_500.0  # images/s, ResNet-50 bf16 + channels_last + compile
ACCURACY_TARGET = 0.97


@dataclass(frozen=True)
class Part:
    name: str
    kind: str  # environment | throughput | train | ddp
    budget_s: float  # on the GPU; the deadline may leave less
    min_s: float = 20.0  # with less time than this left, the part is skipped
    spec: str = ""
    reference: str = ""  # "torchvision:NAME" or "timm:NAME"
    modes: tuple[str, ...] = ()
    backend: str = "torch"


# Expected on an H100 (estimates, not measurements): environment ~5 s; resnet50 ~200 s (fp32
# ~35 s, bf16 ~20 s, compile ~130 s of which most is inductor compiling two models);
# train-torch ~35 s; ddp ~25 s; train-keras ~60 s; timm-resnet50d ~60 s; timm-seresnet50
# ~35 s; timm-resnet50d-compile ~140 s, which the deadline usually leaves out.
PARTS = [
    Part("environment", "environment", 60),
    Part(
        "resnet50",
        "throughput",
        240,
        spec="specs/resnet50.res",
        reference="torchvision:resnet50",
        modes=("fp32", "bf16_channels_last", "bf16_channels_last_compile"),
    ),
    Part("train-torch", "train", 90, min_s=30),
    Part("ddp", "ddp", 60, min_s=30),
    Part("train-keras", "train", 120, min_s=40, backend="keras"),
    Part(
        "timm-resnet50d",
        "throughput",
        75,
        spec="specs/timm/resnet50d.res",
        reference="timm:resnet50d",
        modes=("bf16_channels_last", "fp32"),
    ),
    Part(
        "timm-seresnet50",
        "throughput",
        45,
        min_s=30,
        spec="specs/timm/seresnet50.res",
        reference="timm:seresnet50",
        modes=("bf16_channels_last",),
    ),
    Part(
        "timm-resnet50d-compile",
        "throughput",
        180,
        min_s=120,
        spec="specs/timm/resnet50d.res",
        reference="timm:resnet50d",
        modes=("bf16_channels_last_compile",),
    ),
]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _write(path: Path, text: str) -> None:
    """Write atomically: a kill midway leaves the previous version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, data) -> None:
    _write(path, json.dumps(data, indent=2) + "\n")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _mib(n: float | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


# --- workers (run in subprocesses) ----------------------------------------------------------


def _nccl_version(torch) -> str | None:
    try:
        version = torch.cuda.nccl.version()
    except Exception:
        return None
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def _environment_worker(args) -> int:
    import importlib.util
    import platform
    from importlib import metadata

    import torch

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    cuda = torch.cuda.is_available()
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "timm": version("timm"),
        "keras": version("keras"),
        "tensorflow": version("tensorflow"),
        "cuda_available": cuda,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "nccl": _nccl_version(torch) if cuda else None,
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "capability": list(torch.cuda.get_device_capability()) if cuda else None,
        "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
        "gpu_memory_mib": _mib(torch.cuda.get_device_properties(0).total_memory) if cuda else None,
        "modules": {
            name: importlib.util.find_spec(name) is not None
            for name in ("lark", "resdsl", "torchvision", "timm", "keras", "tensorflow", "sklearn")
        },
        "tf32": {
            "matmul": torch.backends.cuda.matmul.allow_tf32,
            "cudnn": torch.backends.cudnn.allow_tf32,
        },
    }
    _write_json(Path(args.result), info)
    return 0


def _reference_model(reference: str):
    library, name = reference.split(":")
    if library == "torchvision":
        import torchvision

        return getattr(torchvision.models, name)()
    import timm

    return timm.create_model(name, pretrained=False)


def _throughput_worker(args) -> int:
    """Both models of each mode in this process, timed in interleaved rounds; the figures go
    to --result after every mode, so that a kill keeps the modes done."""
    import gc

    import torch
    from bench_gpu import Variant, _generated, interleaved, synthetic_batch, warm_up

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    # On CPU the smoke run checks that the compiled path traces, without inductor's C++ build.
    backend = "inductor" if cuda else "eager"
    result = {
        "spec": args.spec,
        "reference": args.reference,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "batch": args.batch,
        "size": args.size,
        "optimizer": "SGD lr 0.01 momentum 0.9",
        "compile_backend": backend,
        "rounds_asked": args.rounds,
        "steps_per_round": args.steps,
        "modes": {},
    }
    out = Path(args.result)
    folder = tempfile.mkdtemp(prefix="gpu-evidence-")
    module = _generated(args.spec, folder)
    builders = {
        "generated": module.build_model,
        "reference": lambda: _reference_model(args.reference),
    }
    for mode in args.modes.split(","):
        amp, channels_last, compiled = MODES[mode]
        entry: dict = {"status": "running", "label": MODE_LABELS[mode]}
        result["modes"][mode] = entry
        left = args.until - time.time()
        if left < (args.compile_min_s if compiled else args.mode_min_s):
            entry.update(status="skipped", reason=f"deadline: {left:.0f} s left")
            _write_json(out, result)
            continue
        _write_json(out, result)
        started = time.perf_counter()
        variants = []
        try:
            for role, build in builders.items():
                torch.manual_seed(0)
                variants.append(
                    Variant(
                        role,
                        build(),
                        device,
                        compiled=compiled,
                        compile_backend=backend,
                        amp=amp,
                        channels_last=channels_last,
                    )
                )
            x, y = synthetic_batch(device, args.batch, args.size, 1000, channels_last=channels_last)
            for variant in variants:
                figures: dict = {}
                if cuda:
                    torch.cuda.synchronize()
                    figures["resident_mib"] = _mib(torch.cuda.memory_allocated())
                    torch.cuda.reset_peak_memory_stats()
                figures["warm_up_s"] = round(warm_up(variant, x, y, args.warm_up), 2)
                figures["peak_allocated_mib"] = (
                    _mib(torch.cuda.max_memory_allocated()) if cuda else None
                )
                entry[variant.name] = figures
                _write_json(out, result)
            entry["rounds"] = interleaved(
                variants, x, y, args.rounds, args.steps, until=args.until - 3
            )
            for variant in variants:
                entry[variant.name] |= {
                    "images_per_s": statistics.median(variant.samples),
                    "min": min(variant.samples),
                    "max": max(variant.samples),
                    "samples": variant.samples,
                }
            entry["ratio"] = entry["generated"]["images_per_s"] / entry["reference"]["images_per_s"]
            entry["status"] = "ok"
        except Exception:
            entry.update(status="failed", error=_tail(traceback.format_exc()))
        entry["seconds"] = round(time.perf_counter() - started, 1)
        del variants
        gc.collect()
        if compiled:
            torch._dynamo.reset()
        if cuda:
            torch.cuda.empty_cache()
        _write_json(out, result)
    shutil.rmtree(folder, ignore_errors=True)
    failed = [m for m, e in result["modes"].items() if e["status"] == "failed"]
    return 1 if failed else 0


# --- running a part: a subprocess, its time limit, its GPU memory ----------------------------

# Imported by every subprocess of a part (PYTHONPATH): at exit, a process that used CUDA
# writes its allocator's peaks to $GPU_EVIDENCE_PEAKS/PID.json. With
# $GPU_EVIDENCE_SOURCE_TREE (a checkout of resdsl that is not installed, as on a GPU machine
# with its own Python), `resdsl` is that checkout's, with its backends/ and grammars/ folders
# inside the package, where pyproject's package-dir puts them. Then it runs the
# sitecustomize it shadows, if there is one.
PEAK_HOOK = """\
import atexit, importlib.util, json, os, sys
from importlib.machinery import PathFinder


class _SourceTree:
    root = os.environ.get("GPU_EVIDENCE_SOURCE_TREE")

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "resdsl":
            return None
        spec = PathFinder.find_spec(name, [cls.root])
        if spec is not None and spec.submodule_search_locations is not None:
            spec.submodule_search_locations.append(cls.root)
        return spec


if _SourceTree.root:
    sys.meta_path.insert(0, _SourceTree)


def _gpu_evidence_peaks():
    torch = sys.modules.get("torch")
    folder = os.environ.get("GPU_EVIDENCE_PEAKS")
    try:
        if torch is None or not folder or not torch.cuda.is_initialized():
            return
        peaks = {
            "max_memory_allocated": torch.cuda.max_memory_allocated(),
            "max_memory_reserved": torch.cuda.max_memory_reserved(),
            "device": torch.cuda.current_device(),
        }
        with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as f:
            json.dump(peaks, f)
    except Exception:
        pass


atexit.register(_gpu_evidence_peaks)
_here = os.path.dirname(os.path.abspath(__file__))
_spec = PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here]
)
if _spec is not None and _spec.loader is not None:
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
"""


def _tree(root: int) -> set[int]:
    """`root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def _smi(*query: str) -> list[list[str]]:
    done = subprocess.run(
        ["nvidia-smi", *query, "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return [[c.strip() for c in line.split(",")] for line in done.stdout.splitlines() if line]


class GpuMonitor:
    """Polls nvidia-smi while a process runs: the most GPU memory its process tree held, all
    compute processes together, and the whole device (MiB). Nothing without nvidia-smi."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.available = shutil.which("nvidia-smi") is not None
        self.tree = self.apps = self.device = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        if self.available:
            with contextlib.suppress(Exception):
                self.before = float(_smi("--query-gpu=memory.used")[0][0])
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    def _poll(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                apps = _smi("--query-compute-apps=pid,used_memory")
                device = float(_smi("--query-gpu=memory.used")[0][0])
                pids = _tree(self.pid)
                used = {int(pid): float(mib) for pid, mib in apps if pid.isdigit()}
                mine = [mib for pid, mib in used.items() if pid in pids]
                if mine:
                    self.tree = max(self.tree or 0.0, sum(mine))
                self.apps = max(self.apps or 0.0, sum(used.values()))
                self.device = max(self.device or 0.0, device)
                self.samples += 1
            self._stop.wait(self.interval)

    def report(self) -> dict | None:
        if not self.available:
            return None
        return {
            "peak_mib_process_tree": self.tree,
            "peak_mib_all_compute_apps": self.apps,
            "peak_mib_device_used": self.device,
            "device_used_mib_before": getattr(self, "before", None),
            "samples": self.samples,
        }


def _resdsl_installed() -> bool:
    """Whether this Python, run in the checkout as the parts are, imports resdsl whole
    (its grammars included): an install does that, the checkout alone does not."""
    done = subprocess.run(
        [sys.executable, "-c", "import resdsl.grammars"], cwd=ROOT, capture_output=True
    )
    return done.returncode == 0


class Stopped(Exception):
    """SIGTERM: the figures so far are written, then the script stops."""


def _stop(signum, frame):
    raise Stopped(f"signal {signum}")


def _kill(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(cmd: list[str], *, timeout: float, env: dict, log: Path, peaks: Path) -> dict:
    """Run `cmd` (its own process group, killed at `timeout`), its output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peaks.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w") as output:
        proc = subprocess.Popen(
            cmd,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**env, "GPU_EVIDENCE_PEAKS": str(peaks)},
            cwd=ROOT,
            start_new_session=True,
        )
        timed_out = False
        with GpuMonitor(proc.pid) as monitor:
            try:
                proc.wait(timeout=max(timeout, 1))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill(proc)
            except BaseException:
                _kill(proc)
                raise
    allocator = [json.loads(p.read_text()) for p in sorted(peaks.glob("*.json"))]
    return {
        "command": shlex.join(cmd),
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "wall_s": round(time.perf_counter() - started, 2),
        "output": log.read_text(errors="replace"),
        "log": str(log),
        "memory": {
            "peak_allocated_mib": _mib(
                max((a["max_memory_allocated"] for a in allocator), default=None)
            ),
            "peak_reserved_mib": _mib(
                max((a["max_memory_reserved"] for a in allocator), default=None)
            ),
            "processes_reporting": len(allocator),
            "nvidia_smi": monitor.report(),
        },
    }


# --- the parts ----------------------------------------------------------------------------


class Evidence:
    def __init__(self, args, argv: list[str]):
        self.args = args
        self.out = Path(args.out)
        self.smoke = args.smoke
        self.started = time.time()
        self.deadline = self.started + args.deadline
        self.scratch = Path(tempfile.mkdtemp(prefix="gpu-evidence-"))
        (self.scratch / "hook").mkdir()
        (self.scratch / "hook" / "sitecustomize.py").write_text(PEAK_HOOK)
        python_path = [str(self.scratch / "hook"), os.environ.get("PYTHONPATH", "")]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in python_path if p),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
        }
        if self.smoke:  # two cores shared with others: one thread a process
            self.env["OMP_NUM_THREADS"] = "1"
        installed = _resdsl_installed()
        if not installed:
            self.env["GPU_EVIDENCE_SOURCE_TREE"] = str(ROOT)
        self.throughput = {
            "batch": args.batch or (2 if self.smoke else 256),
            "size": 64 if self.smoke else 224,
            "rounds": args.rounds or (2 if self.smoke else 5),
            "steps": args.steps or (1 if self.smoke else 10),
            "warm_up": 1 if self.smoke else 3,
        }
        self.report = {
            "issue": 17,
            "script": "benchmarks/gpu_evidence.py",
            "command": shlex.join(["python", "benchmarks/gpu_evidence.py", *argv]),
            "python": sys.executable,
            "cwd": str(ROOT),
            "smoke": self.smoke,
            "started": _now(),
            "updated": None,
            "finished": None,
            "deadline_s": args.deadline,
            "resdsl": "installed" if installed else f"the checkout {ROOT}, not installed",
            "settings": {
                "throughput": self.throughput,
                "train": {
                    "spec": RESNET20,
                    "data": "digits",
                    "epochs": 1 if self.smoke else "preset (12)",
                    "ddp_epochs": 1 if self.smoke else 2,
                },
            },
            "environment": {},
            "parts": {},
            "targets": [],
        }
        earlier = self.out / "gpu_evidence.json"
        if args.parts and earlier.exists():  # a rerun of some parts keeps the others' figures
            with contextlib.suppress(ValueError, KeyError):
                before = json.loads(earlier.read_text())
                self.report["parts"] = before["parts"]
                self.report["earlier_run"] = {k: before[k] for k in ("command", "started")}

    # time

    def left(self) -> float:
        return self.deadline - time.time()

    # output

    def save(self) -> None:
        self.report["updated"] = _now()
        self.report["targets"] = targets(self.report)
        _write_json(self.out / "gpu_evidence.json", self.report)
        _write(self.out / "gpu_evidence.md", table(self.report))

    # parts

    def run(self, part: Part) -> dict:
        left = self.left()
        budget = part.budget_s if not self.smoke else max(part.budget_s, 600)
        record: dict = {"status": "running", "kind": part.kind, "budget_s": budget}
        self.report["parts"][part.name] = record
        if not self.smoke and left < part.min_s:
            record.update(status="skipped", reason=f"deadline: {left:.0f} s left")
            return record
        timeout = min(budget, left) if not self.smoke else budget
        record.update(timeout_s=round(timeout, 1), started=_now())
        self.save()
        started = time.perf_counter()
        try:
            getattr(self, f"_{part.kind}")(part, record, timeout)
        except Stopped:
            record.update(status="interrupted")
            raise
        except Exception:
            record.update(status="failed", error=_tail(traceback.format_exc()))
        finally:
            record["seconds"] = round(time.perf_counter() - started, 1)
            self.save()
        return record

    def _command(self, part: Part, cmd: list[str], timeout: float, env: dict | None = None):
        return run_command(
            cmd,
            timeout=timeout,
            env=env or self.env,
            log=self.out / "logs" / f"{part.name}.log",
            peaks=self.scratch / "peaks" / part.name,
        )

    @staticmethod
    def _settle(record: dict, ran: dict, ok: bool) -> None:
        output = ran.pop("output")
        record.update(ran)
        if ran["timed_out"]:
            record.update(status="timeout", error=_tail(output))
        elif ran["returncode"] != 0 or not ok:
            record.update(status="failed", error=_tail(output))
        else:
            record.update(status="ok", output_tail=_tail(output, 6))

    def _worker(self, part: Part, kind: str, timeout: float, *extra: str) -> dict:
        result = self.out / "parts" / f"{part.name}.json"
        result.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind]
        cmd += ["--result", str(result), "--until", f"{time.time() + timeout - 5:.1f}", *extra]
        ran = self._command(part, cmd, timeout)
        data = json.loads(result.read_text()) if result.exists() else None
        return ran, data

    def _environment(self, part: Part, record: dict, timeout: float) -> None:
        ran, data = self._worker(part, "environment", timeout)
        self._settle(record, ran, data is not None)
        info = dict(data or {})
        if shutil.which("nvidia-smi"):
            with contextlib.suppress(Exception):
                name, driver, total = _smi("--query-gpu=name,driver_version,memory.total")[0]
                info |= {"driver": driver, "nvidia_smi_gpu": name, "nvidia_smi_total_mib": total}
        else:
            info["driver"] = None
        self.report["environment"] = info

    def _throughput(self, part: Part, record: dict, timeout: float) -> None:
        t = self.throughput
        gpu = not self.smoke
        ran, data = self._worker(
            part,
            "throughput",
            timeout,
            *("--spec", part.spec, "--reference", part.reference),
            *("--modes", ",".join(part.modes)),
            *("--batch", str(t["batch"]), "--size", str(t["size"])),
            *("--rounds", str(t["rounds"]), "--steps", str(t["steps"])),
            *("--warm-up", str(t["warm_up"])),
            *("--mode-min-s", "15" if gpu else "0", "--compile-min-s", "100" if gpu else "0"),
        )
        modes = (data or {}).get("modes", {})
        for mode in part.modes:  # what a kill or a crash left unfinished
            entry = modes.setdefault(mode, {"label": MODE_LABELS[mode]})
            if entry.get("status") in (None, "running"):
                entry["status"] = "timeout" if ran["timed_out"] else "failed"
        record["figures"] = data
        ok = all(modes[m]["status"] in ("ok", "skipped") for m in part.modes)
        self._settle(record, ran, ok)

    def _run_folder(self, part: Part) -> Path:
        folder = self.out / "runs" / part.name
        shutil.rmtree(folder, ignore_errors=True)  # this script's own earlier run
        return folder

    def _train(self, part: Part, record: dict, timeout: float) -> None:
        folder = self._run_folder(part)
        cmd = [sys.executable, "-m", "resdsl", "train", RESNET20, "--data", "digits"]
        if part.backend != "torch":
            cmd += ["--backend", part.backend]
        if self.smoke:
            cmd += ["--epochs", "1"]
        cmd += ["--out", str(folder)]
        env = None
        if part.backend == "keras":
            # TensorFlow only feeds the data here: should its build see the GPU, it must not
            # take all of its memory first.
            record["env"] = {"KERAS_BACKEND": "torch", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
            env = {**self.env, **record["env"]}
        ran = self._command(part, cmd, timeout, env)
        record |= training_figures(folder, ran["output"])
        self._settle(record, ran, record.get("test_acc") is not None)

    def _ddp(self, part: Part, record: dict, timeout: float) -> None:
        folder = self._run_folder(part)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += ["--nproc_per_node=1", "-m", "resdsl", "train", RESNET20, "--data", "digits"]
        cmd += ["--epochs", "1" if self.smoke else "2", "--out", str(folder)]
        ran = self._command(part, cmd, timeout)
        record |= training_figures(folder, ran["output"])
        line = record.get("device_line") or ""
        record["success"] = ran["returncode"] == 0 and record.get("test_acc") is not None
        record["ddp_in_device_line"] = "DDP" in line
        record["nccl_in_device_line"] = "nccl" in line
        if record["success"] and "DDP" not in line:
            record["note"] = (
                "the device line names no DDP: with one process (WORLD_SIZE=1) the trainer "
                "starts no process group, so neither DDP nor NCCL ran"
            )
        self._settle(record, ran, record["success"])


def training_figures(folder: Path, output: str) -> dict:
    """result.json's accuracy, metrics.jsonl's per-epoch speed, and the device line."""
    figures: dict = {"out": str(folder)}
    match = re.search(r"^(?:\[[^\]]*\]\s*)?(device: .*)$", output, re.MULTILINE)
    figures["device_line"] = match.group(1).strip() if match else None
    result = folder / "result.json"
    if result.exists():
        data = json.loads(result.read_text())
        keys = ("test_acc", "best_test_acc", "best_epoch", "epochs", "device", "framework")
        figures |= {k: data.get(k) for k in (*keys, "processes")}
    metrics = folder / "metrics.jsonl"
    if metrics.exists():
        epochs = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        rates = [e["images_per_s"] for e in epochs]
        figures["epoch_images_per_s"] = rates
        figures["epoch_time_s"] = [e["time_s"] for e in epochs]
        figures["train_time_s"] = round(sum(e["time_s"] for e in epochs), 2)
        # The first epoch pays for cudnn autotuning and the loaders' start: the median of the
        # others, when there are others.
        figures["images_per_s"] = statistics.median(rates[1:] or rates) if rates else None
    return figures


# --- targets and the table ------------------------------------------------------------------


def targets(report: dict) -> list[dict]:
    """Every target with the value measured (None when its part has none yet) and pass/fail
    (None in --smoke, whose settings are not the targets')."""
    rows = []

    def add(name, value, threshold):
        ok = None if value is None or report["smoke"] else value >= threshold
        rows.append({"target": name, "value": value, "threshold": threshold, "pass": ok})

    for name, part in report["parts"].items():
        if part.get("kind") == "throughput":
            modes = (part.get("figures") or {}).get("modes", {})
            for mode, entry in modes.items():
                add(
                    f"{name} {MODE_LABELS[mode]}: generated/reference",
                    entry.get("ratio"),
                    RATIO_TARGET,
                )
                if name == "resnet50" and mode == "bf16_channels_last_compile":
                    rate = entry.get("generated", {}).get("images_per_s")
                    add("resnet50 bf16 + channels_last + compile: images/s", rate, COMPILE_TARGET)
        elif part.get("kind") == "train":
            add(f"{name}: test accuracy on digits", part.get("test_acc"), ACCURACY_TARGET)
        elif part.get("kind") == "ddp" and part.get("status") not in ("running", "skipped"):
            named = part.get("ddp_in_device_line") and part.get("nccl_in_device_line")
            add(
                "ddp: ran, its device line names DDP and nccl",
                bool(part.get("success") and named),
                True,
            )
    return rows


def _fmt(value, spec: str = ",.0f") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format(value, spec)
    return str(value)


def table(report: dict) -> str:
    env = report["environment"]
    parts = report["parts"]
    t = report["settings"]["throughput"]
    lines = [
        "# GPU evidence (issue 17)" + (" — smoke run, not evidence" if report["smoke"] else ""),
        "",
        f"- GPU: {env.get('gpu') or 'none (CPU)'}; driver {env.get('driver') or '–'}; "
        f"CUDA {env.get('cuda_runtime') or '–'}; cuDNN {env.get('cudnn') or '–'}",
        f"- torch {env.get('torch', '–')}, torchvision {env.get('torchvision', '–')}, "
        f"timm {env.get('timm', '–')}, keras {env.get('keras', '–')}",
        f"- command: `{report['command']}`",
        f"- started {report['started']}, updated {report['updated']}, finished "
        f"{report['finished'] or '–'}",
        "",
        f"## Training throughput (images/s; one SGD step of batch {t['batch']} at "
        f"{t['size']}x{t['size']}; medians of interleaved rounds)",
        "",
        "| network | reference | mode | generated | reference | ratio | rounds | "
        "peak MiB gen / ref | status |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, part in parts.items():
        if part.get("kind") != "throughput":
            continue
        figures = part.get("figures") or {}
        for mode, e in figures.get("modes", {}).items():
            gen, ref = e.get("generated", {}), e.get("reference", {})
            peaks = f"{_fmt(gen.get('peak_allocated_mib'))} / {_fmt(ref.get('peak_allocated_mib'))}"
            lines.append(
                f"| {name} | {figures.get('reference', '')} | {MODE_LABELS[mode]} | "
                f"{_fmt(gen.get('images_per_s'), ',.1f')} | "
                f"{_fmt(ref.get('images_per_s'), ',.1f')} | "
                f"{_fmt(e.get('ratio'), '.3f')} | {_fmt(e.get('rounds'), 'd')} | {peaks} | "
                f"{e.get('status')} |"
            )
    lines += [
        "",
        "## resdsl train (specs/cifar/resnet20.res on digits)",
        "",
        "| run | status | test acc | wall s | images/s | peak MiB allocated / nvidia-smi | "
        "device line |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, part in parts.items():
        if part.get("kind") not in ("train", "ddp"):
            continue
        memory = part.get("memory") or {}
        smi = (memory.get("nvidia_smi") or {}).get("peak_mib_process_tree")
        lines.append(
            f"| {name} | {part.get('status')} | {_fmt(part.get('test_acc'), '.2%')} | "
            f"{_fmt(part.get('wall_s'), '.1f')} | {_fmt(part.get('images_per_s'), ',.0f')} | "
            f"{_fmt(memory.get('peak_allocated_mib'))} / {_fmt(smi)} | "
            f"{part.get('device_line') or '–'} |"
        )
    lines += [
        "",
        "## Targets",
        "",
        "| target | value | threshold | result |",
        "| --- | ---: | ---: | --- |",
    ]
    for row in report["targets"]:
        value, threshold = (
            _fmt(v, ".3f" if v is not None and v < 10 else ",.0f")
            for v in (row["value"], row["threshold"])
        )
        result = {True: "pass", False: "FAIL", None: "n/a"}[row["pass"]]
        lines.append(f"| {row['target']} | {value} | {threshold} | {result} |")
    lines += [
        "",
        "## Parts",
        "",
        "| part | status | seconds | budget s | note |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for name, part in parts.items():
        note = part.get("reason") or part.get("note") or ""
        if part.get("error"):
            note = part["error"].splitlines()[-1]
        note = note.replace("|", "\\|")
        lines.append(
            f"| {name} | {part.get('status')} | {_fmt(part.get('seconds'), '.1f')} | "
            f"{_fmt(part.get('budget_s'), '.0f')} | {note} |"
        )
    return "\n".join(lines) + "\n"


# --- the command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the JSON, the table, logs and runs")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that run on CPU")
    parser.add_argument(
        "--deadline", type=float, default=None, help="seconds for everything (450; smoke 1800)"
    )
    parser.add_argument("--parts", help=f"comma-separated subset of {[p.name for p in PARTS]}")
    parser.add_argument("--batch", type=int, help="throughput batch (256; smoke 2)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (5; smoke 2)")
    parser.add_argument("--steps", type=int, help="steps per round (10; smoke 1)")
    # The workers: this script again, in a subprocess.
    parser.add_argument("--worker", choices=["environment", "throughput"], help=argparse.SUPPRESS)
    for flag in ("--result", "--spec", "--reference", "--modes"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    for flag in ("--until", "--mode-min-s", "--compile-min-s"):
        parser.add_argument(flag, type=float, default=0, help=argparse.SUPPRESS)
    for flag in ("--size", "--warm-up"):
        parser.add_argument(flag, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "environment":
        return _environment_worker(args)
    if args.worker == "throughput":
        return _throughput_worker(args)
    if not args.out:
        parser.error("--out DIR is required")
    if args.deadline is None:
        args.deadline = 1800.0 if args.smoke else 450.0
    chosen = PARTS
    if args.parts:
        names = args.parts.split(",")
        unknown = [n for n in names if n not in {p.name for p in PARTS}]
        if unknown:
            parser.error(f"unknown parts: {', '.join(unknown)}")
        chosen = [p for p in PARTS if p.name in names or p.name == "environment"]

    evidence = Evidence(args, argv if argv is not None else sys.argv[1:])
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main_thread else None
    status = 0
    try:
        for part in chosen:
            record = evidence.run(part)
            print(
                f"{part.name:24s} {record['status']:8s} {record.get('seconds', 0):7.1f} s "
                f"({evidence.left():.0f} s left)",
                flush=True,
            )
            if record["status"] in ("failed", "timeout"):
                status = 1
            cuda = evidence.report["environment"].get("cuda_available")
            if part.kind == "environment" and not cuda and not args.smoke:
                print("no CUDA device: run with --smoke for a check on CPU", file=sys.stderr)
                status = 2
                break
    except (Stopped, KeyboardInterrupt):
        status = 130
    finally:
        evidence.report["finished"] = _now()
        evidence.report["total_s"] = round(time.time() - evidence.started, 1)
        evidence.save()
        shutil.rmtree(evidence.scratch, ignore_errors=True)
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(f"\nwrote {evidence.out / 'gpu_evidence.json'} and {evidence.out / 'gpu_evidence.md'}")
    print(table(evidence.report))
    return status


if __name__ == "__main__":
    sys.exit(main())
