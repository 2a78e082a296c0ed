"""What the training tests share: the small network they train, and running `resdsl train` as
a user does, in a subprocess with one framework thread (two such processes share the 2 CI cores
without spinning)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def tiny_spec(shape: str, classes: int, shortcut: str = "A") -> str:
    """A CIFAR-style ResNet-8 of input `shape` ("CxHxW") that learns small images in seconds
    (its final width is 64)."""
    return f"""network resnet8 {{
  input    {shape}
  classes  {classes}
  stem     cifar
  block    basic
  shortcut {shortcut}

  stage layer1: 1 x 16
  stage layer2: 1 x 32 / 2
  stage layer3: 1 x 64 / 2
}}
"""


def env(extra: dict | None = None) -> dict:
    return {**os.environ, **ENV, **(extra or {})}


def train(*args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    process = start(*args, extra_env=extra_env)
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def start(
    *args: str, cwd: Path = ROOT, extra_env: dict | None = None, umask: int = -1
) -> subprocess.Popen:
    """`resdsl train ARGS` started in `cwd` and left running: the caller waits for it."""
    return subprocess.Popen(
        [sys.executable, "-m", "resdsl", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(extra_env),
        cwd=cwd,
        umask=umask,
    )


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def same_run(a: list[dict], b: list[dict]) -> None:
    """Two runs' metrics, epoch by epoch: the same up to floating-point noise."""
    assert [m["epoch"] for m in a] == [m["epoch"] for m in b]
    for x, y in zip(a, b, strict=True):
        assert x["val_acc"] == pytest.approx(y["val_acc"], abs=1e-9)
        assert x["val_loss"] == pytest.approx(y["val_loss"], rel=1e-4)
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)


def spec_file(tmp_path_factory, text: str) -> str:
    """`text` saved as a spec in a temporary folder of its own, for a module's tests."""
    path = tmp_path_factory.mktemp("spec") / "resnet8.res"
    path.write_text(text)
    return str(path)


def in_process(*args: str) -> tuple[int, str, str]:
    """`resdsl ARGS` in this process: (status, standard output, standard error). Faster than a
    subprocess where the frameworks are already imported; an uncaught exception fails."""
    from click.testing import CliRunner

    from resdsl.cli.main import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def without_tensorflow(folder: Path) -> dict:
    """Environment variables under which `tensorflow` refuses to import (a package of that
    name in `folder`, put first on PYTHONPATH): what runs there never started TensorFlow."""
    (folder / "tensorflow").mkdir(exist_ok=True)
    (folder / "tensorflow" / "__init__.py").write_text('raise ImportError("no TensorFlow here")\n')
    return {"PYTHONPATH": str(folder)}


def shared_folder(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder made once for the whole test session by `make(folder)`, whichever pytest-xdist
    worker asks first (a module fixture runs once per worker: a training run two workers both
    make costs the suite twice). Workers share the base temporary folder's parent; a lock
    makes the others wait for the first, and a folder whose `make` failed is made again."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder, done = base / f"shared-{name}", base / f"shared-{name}.done"
    with FileLock(str(base / f"shared-{name}.lock")):
        if not done.exists():
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder
