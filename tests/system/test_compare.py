"""`resdsl compare` (issue 27): several specs, one recipe, one seed; a sub-run per spec with
everything `train` writes; compare.json, compare.png and a table. The learning dynamics are the
`make experiments` run's, not a test's: this checks the files, the sub-runs and resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from train_helpers import ROOT, env, same_run, tiny_spec
from train_helpers import read_metrics as metrics_of


def _compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "resdsl", "compare", *args],
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
    )


def _specs(tmp_path) -> list[str]:
    residual = tmp_path / "residual.res"
    plain = tmp_path / "plain.res"
    residual.write_text(tiny_spec("1x8x8", 10))
    plain.write_text(tiny_spec("1x8x8", 10, shortcut="none").replace("resnet8", "plain8"))
    return [str(plain), str(residual)]


def test_compare_trains_each_spec_with_one_recipe_and_overlays_them(tmp_path):
    specs, out = _specs(tmp_path), tmp_path / "cmp"
    recipe = ["--data", "digits", "--epochs", "2", "--batch-size", "128"]
    # Two at a time: each sub-run's progress goes to OUT/NAME.log, with a thread each.
    done = _compare(*specs, *recipe, "--parallel", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("plain", "residual"):
        run = out / name
        assert {"best.pt", "checkpoint.pt", "metrics.jsonl", "result.json", "run.json"} <= {
            p.name for p in run.iterdir()
        }
        recorded = json.loads((run / "run.json").read_text())
        options = recorded["options"]
        assert (options["epochs"], options["batch_size"], options["seed"]) == (2, 128, 0)
        assert "epoch 2/2" in (out / f"{name}.log").read_text()
    data = json.loads((out / "compare.json").read_text())
    assert [s["name"] for s in data["specs"]] == ["plain", "residual"]
    for entry in data["specs"]:
        epochs = metrics_of(out / entry["name"])
        assert [e["epoch"] for e in entry["epochs"]] == [1, 2]
        assert entry["epochs"][-1]["train_error"] == 1 - epochs[-1]["train_acc"]
        assert entry["epochs"][-1]["val_loss"] == epochs[-1]["val_loss"]
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    header, *rows = done.stdout.splitlines()
    assert header.split()[:2] == ["spec", "epochs"]
    assert [row.split()[0] for row in rows] == ["plain", "residual"]
    # Done sub-runs are kept: the same command trains nothing again.
    before = (out / "plain" / "metrics.jsonl").read_bytes()
    again = _compare(*specs, *recipe, "--out", str(out))
    assert again.returncode == 0 and "compare: training" not in again.stderr
    assert (out / "plain" / "metrics.jsonl").read_bytes() == before


def test_a_sub_run_starts_resumes_or_is_kept_by_what_its_folder_holds(tmp_path):
    from resdsl.cli.compare import _command

    run = tmp_path / "run"
    assert "--resume" not in _command("a.res", str(run), ["--epochs", "2"])
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    command = _command("a.res", str(run), ["--epochs", "2"])
    assert command[-5:] == ["--out", str(run), "--epochs", "2", "--resume"]
    (run / "result.json").write_text("{}")
    assert _command("a.res", str(run), []) is None


# Four training runs: `make conformance`; the test above checks how compare picks --resume, and
# tests/system/test_train.py Ctrl-C and resuming in `make test`.
@pytest.mark.conformance
def test_ctrl_c_stops_the_sub_runs_and_the_same_command_continues_them(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) once the first epoch is
    logged: the sub-run saves and compare exits 130; the same command resumes it, and it ends
    as an unbroken run does. Any stopping point is accepted, so a busy machine that finishes
    first cannot make this fail."""
    (spec,) = _specs(tmp_path)[1:]
    common = [spec, "--data", "digits", "--epochs", "3", "--batch-size", "128"]
    whole = _compare(*common, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-m", "resdsl", "compare", *common, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
        start_new_session=True,
    )
    log = out / "residual" / "metrics.jsonl"
    while process.poll() is None and not (log.exists() and log.read_text().strip()):
        time.sleep(0.05)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate()
    assert process.returncode in (0, 130), stderr[-3000:]
    if process.returncode == 130:
        assert "run the same command to continue" in stderr
    again = _compare(*common, "--out", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    same_run(metrics_of(out / "residual"), metrics_of(tmp_path / "whole" / "residual"))


def test_what_compare_refuses(tmp_path):
    specs = _specs(tmp_path)
    bad = _compare(*specs, "--lr", "nan", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "not a finite number" in bad.stderr
    assert not (tmp_path / "x").exists()  # refused before anything is written
    twice = _compare(specs[0], specs[0], "--out", str(tmp_path / "y"))
    assert twice.returncode == 2 and "share the sub-run" in twice.stderr
    init = _compare(*specs, "--init", specs[0], "--out", str(tmp_path / "z"))
    assert init.returncode == 2 and "No such option" in init.stderr
