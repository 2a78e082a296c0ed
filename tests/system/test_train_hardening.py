"""Issue 23, training runs: what `resdsl train` cannot handle is a clear error and a non-zero
exit, and no failure loses a file or a run. Two runs never share a folder; a full disk, a kill
while saving, bad option values and a diverging loss each leave the run folder as it was
after its last good checkpoint, with every file written under one rule (0666 less the umask)."""

from __future__ import annotations

import json
import math
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_helpers import in_process, read_metrics, spec_file, start, tiny_spec, train

TINY = tiny_spec("1x16x16", 10)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return spec_file(tmp_path_factory, TINY)


def _dead_pid() -> int:
    """The id of a process that has ended (a killed writer's)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def _strict_json(line: str):
    """A metrics line as strict JSON: `NaN` and `Infinity` are not JSON."""

    def refuse(word):
        raise ValueError(f"{word} in {line!r}")

    return json.loads(line, parse_constant=refuse)


# --- two runs, one folder ------------------------------------------------------------------


def test_two_runs_started_together_get_two_folders(tiny, tmp_path):
    args = [tiny, "--epochs", "2", "--no-tensorboard"]
    # Slowed steps keep both runs training at once, as in the report.
    slow = {"RESDSL_TRAIN_STEP_SLEEP": "0.02"}
    runs = [start(*args, cwd=tmp_path, extra_env=slow) for _ in range(2)]
    for run in runs:
        _, stderr = run.communicate()
        assert run.returncode == 0, stderr
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["resnet8-1", "resnet8-2"]
    for name in folders:
        out = tmp_path / "runs" / name
        assert [m["epoch"] for m in read_metrics(out)] == [1, 2]
        assert json.loads((out / "run.json").read_text())["spec"] == os.path.abspath(tiny)


def _wait_until_claimed(process: subprocess.Popen, out: Path) -> None:
    """Wait until the run has recorded itself in `out`. No deadline: the run ending first
    fails the test."""
    while not (out / "run.json").exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)


def test_a_second_run_in_a_running_runs_folder_is_refused_naming_it(tiny, tmp_path):
    out = tmp_path / "run"
    # Each step of the first run sleeps an hour: it is still running when the others start.
    first = start(
        tiny, "--epochs", "1", "--out", str(out), extra_env={"RESDSL_TRAIN_STEP_SLEEP": "3600"}
    )
    try:
        _wait_until_claimed(first, out)
        record = (out / "run.json").read_bytes()
        for extra in ([], ["--resume"]):
            done = train(tiny, "--epochs", "1", "--out", str(out), *extra)
            assert done.returncode == 2, done.stderr
            assert f"in use by a running `resdsl train` (process {first.pid})" in done.stderr
            assert "Traceback" not in done.stderr
        assert (out / "run.json").read_bytes() == record
        assert first.poll() is None
    finally:
        first.kill()
        first.communicate()


def test_out_equal_to_the_data_folder_says_so(tiny, tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / name / "0.png")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    status, _, stderr = in_process("train", tiny, "--data", tmp_path, "--out", tmp_path)
    assert status == 2
    assert f"`{tmp_path}` is the data folder" in stderr and "earlier run" not in stderr
    status, _, stderr = in_process("train", tiny, "--data", tmp_path, "--out", tmp_path / "a")
    assert status == 2 and "is inside the data folder" in stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# --- checkpoints -----------------------------------------------------------------------------


def test_a_full_disk_in_torch_save_is_a_clear_error_that_keeps_the_checkpoint(
    tiny, tmp_path, monkeypatch
):
    import torch

    from resdsl.train import checkpoint as ckpt
    from resdsl.train.common import TrainError

    ckpt.save_torch(str(tmp_path), {"format": 1, "epoch": 1})
    before = (tmp_path / ckpt.TORCH_FILE).read_bytes()

    def full(*args, **kwargs):  # what torch's zip writer raises when the disk is full
        raise RuntimeError(
            "[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing "
            "file data/3: file write failed (No space left on device)"
        )

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(TrainError, match=r"No space left on device.*previous checkpoint is intact"):
        ckpt.save_torch(str(tmp_path), {"format": 1, "epoch": 2})
    assert (tmp_path / ckpt.TORCH_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.TORCH_FILE]

    out = tmp_path / "run"
    status, _, stderr = in_process("train", tiny, "--epochs", "1", "--out", out)
    assert status == 2, stderr
    assert "cannot write a checkpoint" in stderr and "No space left on device" in stderr


def test_temporaries_are_named_by_pid_and_a_killed_writers_are_removed(tmp_path, monkeypatch):
    import torch

    from resdsl.train import checkpoint as ckpt

    dead, live = _dead_pid(), os.getpid()
    leftovers = {
        f".{ckpt.TORCH_FILE}.{dead}.x1y2.resdsl-tmp": "killed while saving",
        f".{ckpt.TORCH_FILE}.{live}.a1b2.resdsl-tmp": "another save of this process",
        ".checkpoint.k3j4.tmp": "named by an earlier resdsl",
    }
    for name, text in leftovers.items():
        (tmp_path / name).write_text(text)
    stale_folder = tmp_path / f".{ckpt.KERAS_DIR}.{dead}.z9.resdsl-tmp"
    stale_folder.mkdir()
    (stale_folder / "model.weights.h5").write_text("half written")

    written = []
    save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: (written.append(f), save(obj, f)))
    ckpt.save_torch(str(tmp_path), {"format": 1, "epoch": 1})
    # Written beside its target under the name SECURITY.md gives.
    pattern = rf"\.{re.escape(ckpt.TORCH_FILE)}\.{live}\.[^.]+\.resdsl-tmp"
    assert any(re.search(pattern, os.fspath(getattr(f, "name", f))) for f in written), written
    ckpt.save_folder(str(tmp_path), lambda folder: Path(folder, "trainer.json").write_text("{}"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [ckpt.TORCH_FILE, ckpt.KERAS_DIR, f".{ckpt.TORCH_FILE}.{live}.a1b2.resdsl-tmp"]
    )


def _modes(out: Path) -> dict[str, int]:
    return {
        os.fspath(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode)
        for p in [out, *out.rglob("*")]
    }


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_every_file_a_run_writes_has_the_mode_of_a_new_file(tiny, tmp_path, backend):
    out = tmp_path / "run"
    run = start(tiny, "--backend", backend, "--epochs", "1", "--out", str(out), umask=0o027)
    _, stderr = run.communicate()
    assert run.returncode == 0, stderr
    modes = _modes(out)
    best = "best.pt" if backend == "torch" else "best.weights.h5"
    assert best in modes and any(name.startswith("checkpoint") for name in modes)
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o750 if (out / name).is_dir() else 0o640)
    }
    assert wrong == {}


# --- option values and a diverging loss -----------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--seed", "-1"],
        ["--seed", str(2**70)],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--weight-decay", "inf"],
        ["--clip-grad", "nan"],
        ["--label-smoothing", "nan"],
        ["--ema", "nan"],
        ["--backend", "keras", "--lr", "nan"],
    ],
)
def test_non_finite_and_out_of_range_options_are_refused(tiny, tmp_path, option):
    status, _, stderr = in_process("train", tiny, "--epochs", "1", "--out", tmp_path, *option)
    assert status == 2, stderr
    name = option[-2]
    assert f"Invalid value for '{name}'" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_torch_loss_that_becomes_non_finite_stops_and_keeps_the_last_checkpoint(
    tiny, tmp_path, monkeypatch
):
    import torch

    from resdsl.train import checkpoint as ckpt

    calls = []

    class Diverging(torch.nn.CrossEntropyLoss):
        """NaN from the 5th step of the second epoch (23 steps an epoch) on."""

        def forward(self, logits, target):
            calls.append(1)
            loss = super().forward(logits, target)
            return loss * math.nan if len(calls) > 23 + 4 else loss

    monkeypatch.setattr(torch.nn, "CrossEntropyLoss", Diverging)
    out = tmp_path / "run"
    status, stdout, stderr = in_process("train", tiny, "--epochs", "3", "--out", out)
    assert status == 3, stdout + stderr
    assert "the training loss became non-finite (nan) in epoch 2" in stderr
    assert "checkpoint of epoch 1 is kept" in stderr
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [_strict_json(line)["epoch"] for line in lines] == [1]
    state = torch.load(out / ckpt.TORCH_FILE, weights_only=True)
    assert state["epoch"] == 1 and all(
        torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point()
    )
    assert not (out / "result.json").exists()


def test_a_keras_loss_that_becomes_non_finite_stops(tiny, tmp_path):
    out = tmp_path / "run"
    done = train(tiny, "--backend", "keras", "--epochs", "2", "--lr", "1e30", "--out", str(out))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "the training loss became non-finite" in done.stderr
    assert "Traceback" not in done.stderr
    metrics = out / "metrics.jsonl"
    assert not metrics.exists() or all(_strict_json(x) for x in metrics.read_text().splitlines())
    assert not (out / "result.json").exists()
