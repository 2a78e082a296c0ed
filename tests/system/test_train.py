"""`resdsl train`: learning on digits (torch, keras), DDP on gloo, kills and resumes, damaged
checkpoints, the CIFAR pickle and image-folder loaders, and the recipes.

Runs go through the real command line in subprocesses (one thread each, so that two
processes share the 2 CI cores without spinning). The small runs use a ResNet-8 at 16x16 that
learns digits in seconds; the acceptance runs use specs/cifar/resnet20.res.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from train_helpers import (
    ROOT,
    in_process,
    read_metrics,
    same_run,
    shared_folder,
    tiny_spec,
    without_tensorflow,
)
from train_helpers import env as _env

RESNET20 = str(ROOT / "specs" / "cifar" / "resnet20.res")
TINY = tiny_spec("1x16x16", 10)


def _train(*args: str, env: dict | None = None):
    from train_helpers import train

    return train(*args, extra_env=env)


def _result(out: Path) -> dict:
    return json.loads((out / "result.json").read_text())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    # One file for every worker: the runs below are shared, and a run records its spec.
    write = lambda folder: (folder / "resnet8.res").write_text(TINY)  # noqa: E731
    return str(shared_folder(tmp_path_factory, "tiny-spec", write) / "resnet8.res")


def _run(*args: str) -> Callable[[Path], None]:
    """Makes a shared folder (see `shared_folder`) by `resdsl train ARGS --out FOLDER/run`,
    keeping its output."""

    def make(folder: Path) -> None:
        done = _train(*args, "--out", str(folder / "run"))
        (folder / "stdout.txt").write_text(done.stdout)
        (folder / "stderr.txt").write_text(done.stderr)
        assert done.returncode == 0, done.stderr

    return make


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> Path:
    """An unbroken 4-epoch torch run of the tiny spec: what kills and resumes must reproduce.
    Made once for the session (tests copy it before they change it)."""
    make = _run(tiny, "--data", "digits", "--epochs", "4")
    return shared_folder(tmp_path_factory, "torch-reference", make) / "run"


@pytest.fixture(scope="module")
def keras_run(tiny, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """An 8-epoch Keras run of the tiny spec, the one that must learn (test_keras_learns_digits)
    and the one the other Keras tests read: (the finished process, its run folder). Made once
    for the session (tests copy it before they change it)."""
    make = _run(tiny, "--backend", "keras", "--data", "digits", "--epochs", "8")
    folder = shared_folder(tmp_path_factory, "keras-run", make)
    output = [(folder / name).read_text() for name in ("stdout.txt", "stderr.txt")]
    return subprocess.CompletedProcess([], 0, *output), folder / "run"


# --- acceptance: learning ----------------------------------------------------------------------


def test_torch_learns_digits(tiny, tmp_path):
    done = _train(
        tiny, "--backend", "torch", "--data", "digits", "--epochs", "6", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "device: cpu" in done.stdout
    result = _result(tmp_path)
    assert result["test_acc"] >= 0.90, done.stdout
    assert f"test accuracy: {result['test_acc']:.2%}" in done.stdout
    assert [m["epoch"] for m in read_metrics(tmp_path)] == [1, 2, 3, 4, 5, 6]
    # The generated module was written and the checkpoint is a plain weights-only file.
    assert (tmp_path / "model.py").exists()
    import torch

    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 6 and state["step"] == 0


def test_keras_learns_digits(keras_run):
    # The 8-layer net: Keras on TensorFlow trains ResNet-20 several times slower than PyTorch,
    # and the trainer's behaviour does not depend on depth.
    done, out = keras_run
    assert _result(out)["test_acc"] >= 0.90, done.stdout
    assert [m["epoch"] for m in read_metrics(out)] == list(range(1, 9))
    assert (out / "checkpoint" / "model.weights.h5").exists()
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["epoch"] == 8


@pytest.mark.conformance
@pytest.mark.parametrize("backend,epochs", [("torch", 6), ("keras", 8)])
def test_resnet20_learns_digits(backend, epochs, tmp_path):
    """The paper's CIFAR ResNet-20 in both trainers (`make conformance`; `make test` trains
    the 8-layer net above, which exercises the same trainer code)."""
    done = _train(
        RESNET20, "--backend", backend, "--data", "digits", "--epochs", str(epochs),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _result(tmp_path)["test_acc"] >= 0.90, done.stdout


# Two processes train twice over: `make conformance`; test_torchrun_with_one_process_still_runs_ddp
# takes the distributed path in `make test`.
@pytest.mark.conformance
def test_ddp_two_gloo_processes_match_one(tiny, tmp_path):
    common = [tiny, "--data", "digits", "--epochs", "5", "--batch-size", "64"]
    single = _train(*common, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "resdsl",
            "train",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    assert ddp.returncode == 0, ddp.stderr
    assert "DDP x2 (gloo)" in ddp.stdout
    # Rank 0 alone logs: one line per epoch, not two.
    assert ddp.stdout.count("epoch 5/5") == 1
    one, two = _result(tmp_path / "one"), _result(tmp_path / "two")
    assert two["processes"] == 2
    assert one["test_acc"] >= 0.93 and two["test_acc"] >= 0.93
    assert abs(one["test_acc"] - two["test_acc"]) <= 0.03, (one, two)
    assert [m["epoch"] for m in read_metrics(tmp_path / "two")] == list(range(1, 6))


def test_torchrun_with_one_process_still_runs_ddp(tiny, tmp_path):
    """`torchrun --nproc_per_node 1`, how the distributed path is tried on one GPU, starts a
    process group and DistributedDataParallel too, not a plain single-process run."""
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
         "-m", "resdsl", "train", tiny, "--data", "digits", "--epochs", "1",
         "--out", str(tmp_path)],
        capture_output=True, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "DDP x1 (gloo)" in done.stdout
    assert _result(tmp_path)["processes"] == 1


# --- runs that survive ----------------------------------------------------------------------------


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "resdsl", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
        cwd=ROOT,
    )


def _wait_for_epoch(process: subprocess.Popen, out: Path, epoch: int):
    """Wait until `epoch` is logged and the checkpoint written after it is in place. No
    deadline (a busy machine may take long): the run ending first fails the test."""
    while True:
        assert process.poll() is None, process.communicate()
        try:
            logged = [m["epoch"] for m in read_metrics(out)]
        except (FileNotFoundError, ValueError):
            logged = []
        if epoch in logged and (out / "checkpoint.pt").exists():
            return
        time.sleep(0.01)


def test_sigkill_in_second_epoch_then_resume(tiny, reference, tmp_path):
    args = [tiny, "--data", "digits", "--epochs", "4", "--out", str(tmp_path)]
    # 23 steps of at least 250 ms: the kill lands in the second epoch even when this test
    # process is starved of CPU for seconds by the rest of the suite.
    process = _start(*args, env={"RESDSL_TRAIN_STEP_SLEEP": "0.25"})
    _wait_for_epoch(process, tmp_path, 1)
    time.sleep(0.3)
    process.kill()
    process.communicate()
    logged = [m["epoch"] for m in read_metrics(tmp_path)]
    assert logged == [1]
    done = _train(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert "resuming from epoch" in done.stdout
    metrics = read_metrics(tmp_path)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    # Exactly where it left off: the same numbers as the unbroken run.
    same_run(metrics, read_metrics(reference))


def test_ctrl_c_saves_and_resumes_mid_epoch(tiny, reference, tmp_path):
    args = [tiny, "--data", "digits", "--epochs", "4", "--out", str(tmp_path)]
    process = _start(*args)
    _wait_for_epoch(process, tmp_path, 1)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted: checkpoint saved" in stdout
    import torch

    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] >= 1
    done = _train(*args, "--resume")
    assert done.returncode == 0, done.stderr
    metrics = read_metrics(tmp_path)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    same_run(metrics, read_metrics(reference))


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_checkpoint_is_a_clear_error(tiny, reference, tmp_path, damage):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    latest = out / "checkpoint.pt"
    good = (out / "checkpoint.prev.pt").read_bytes()
    payload = latest.read_bytes()
    latest.write_bytes(payload[: len(payload) // 2] if damage == "truncate" else b"x" * 1000)
    # In this process: the checkpoint is read before training starts.
    status, _, stderr = in_process(
        "train", tiny, "--data", "digits", "--epochs", "4", "--out", out, "--resume"
    )
    assert status == 2
    assert "Traceback" not in stderr
    assert "damaged or truncated" in stderr
    assert "checkpoint.prev.pt" in stderr
    assert (out / "checkpoint.prev.pt").read_bytes() == good


# Three Keras runs: `make conformance`; test_keras_resume_takes_the_recorded_recipe resumes Keras
# and test_damaged_checkpoint_is_a_clear_error damages checkpoints in `make test`.
@pytest.mark.conformance
def test_keras_resume_and_damaged_checkpoint(tiny, tmp_path):
    """A Keras run resumed from its previous checkpoint (the last epoch's removed) trains that
    epoch again and logs it once; a damaged checkpoint is a clear error."""
    import shutil

    args = [tiny, "--backend", "keras", "--data", "digits", "--out", str(tmp_path)]
    first = _train(*args, "--epochs", "3")
    assert first.returncode == 0, first.stderr
    shutil.rmtree(tmp_path / "checkpoint")
    (tmp_path / "checkpoint.prev").rename(tmp_path / "checkpoint")  # the end of epoch 2
    (tmp_path / "metrics.jsonl").open("a").write('{"epoch": 3, "bogus": true}\n{"epo')
    done = _train(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert "resuming from epoch 3" in done.stdout
    assert [m["epoch"] for m in read_metrics(tmp_path)] == [1, 2, 3]
    assert (tmp_path / "checkpoint.prev").is_dir()
    (tmp_path / "checkpoint" / "model.weights.h5").write_bytes(b"\x89HDF broken")
    bad = _train(*args, "--resume")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "damaged or truncated" in bad.stderr
    assert (tmp_path / "checkpoint.prev" / "trainer.json").exists()


def test_keras_resume_takes_the_recorded_recipe(tiny, keras_run, tmp_path):
    """A value the run had from its preset counts as recorded: giving it again is no change,
    another one is an error (before TensorFlow starts)."""
    import shutil

    from resdsl.train.common import TrainError, TrainOptions
    from resdsl.train.run import prepare_run

    out = tmp_path / "run"
    shutil.copytree(keras_run[1], out)
    args = ("train", tiny, "--backend", "keras", "--out", out, "--resume")
    status, _, stderr = in_process(*args, "--lr", "0.5", "--ema", "0.9", "--no-nesterov")
    assert status == 2, stderr
    assert "--lr 0.05 recorded, --lr 0.5 given; --ema 0 recorded, --ema 0.9 given." in stderr
    assert "nesterov" not in stderr
    opts = TrainOptions(spec=tiny, backend="keras", out=str(out), resume=True, lr=0.05)
    opts.given = frozenset({"lr"})
    prepare_run(opts)
    assert (opts.epochs, opts.lr, opts.data, opts.batch_size) == (8, 0.05, "digits", None)
    other = str(tmp_path / "other")
    with pytest.raises(TrainError, match="--data digits recorded, --data /"):
        prepare_run(TrainOptions(spec=tiny, backend="keras", out=str(out), resume=True,
                                 data=other, given=frozenset({"data"})))  # fmt: skip


@pytest.mark.conformance  # a second TensorFlow start with two devices: `make conformance`
def test_keras_mirrored_strategy_on_two_logical_cpus(tiny, tmp_path):
    done = _train(
        tiny,
        "--backend",
        "keras",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--strategy",
        "mirrored",
        "--out",
        str(tmp_path),
        env={"RESDSL_CPU_REPLICAS": "2"},
    )
    assert done.returncode == 0, done.stderr
    assert "MirroredStrategy x2" in done.stdout
    assert _result(tmp_path)["processes"] == 2


# --- data ---------------------------------------------------------------------------------------


def _write_cifar10(folder: Path, per_batch: int = 20, rng=None) -> None:
    rng = rng or np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def test_cifar10_archive_layout_trains(tiny, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    from resdsl.train import data

    loaded = data.load(str(tmp_path), (3, 32, 32))  # the parent folder is found too
    assert loaded.name == "cifar10" and loaded.train.images.shape[1:] == (3, 32, 32)
    assert len(loaded.train) + len(loaded.val) == 100  # 10% held out to choose the best epoch
    assert loaded.class_names[3] == "class3"
    raw = pickle.loads((folder / "data_batch_1").read_bytes())
    kept = [(x.tobytes(), int(y)) for split in (loaded.train, loaded.val)
            for x, y in zip(split.images, split.labels, strict=True)]  # fmt: skip
    for row, label in zip(raw[b"data"], raw[b"labels"], strict=True):
        assert (row.tobytes(), label) in kept
    # Adapted to the spec's input: 32x32 RGB -> 16x16 grey for the tiny spec.
    assert data.load(str(folder), (1, 16, 16)).test.images.shape == (20, 1, 16, 16)
    done = _train(
        tiny,
        "--data",
        str(folder),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        str(tmp_path / "run"),
    )
    assert done.returncode == 0, done.stderr
    assert "recipe: cifar-paper" in done.stdout


def test_cifar_missing_files_are_named(tiny, tmp_path):
    folder = tmp_path / "cifar"
    _write_cifar10(folder, per_batch=4)
    (folder / "data_batch_3").unlink()
    (folder / "test_batch").unlink()
    done = _train(tiny, "--data", str(folder), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "missing data_batch_3, test_batch" in done.stderr


def test_cifar_pickles_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar"
    _write_cifar10(folder, per_batch=4)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    from resdsl.train import data
    from resdsl.train.common import TrainError

    with pytest.raises(TrainError, match="refusing to load"):
        data.load(str(folder), (3, 32, 32))
    assert not (tmp_path / "pwned").exists()


class _Allocates:
    """Pickles as a call that would allocate `size` before reading any data."""

    def __init__(self, how: str, size: int):
        self.how, self.size = how, size

    def __reduce__(self):
        if self.how == "array":
            reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
            return (reconstruct, (np.ndarray, (self.size,), b"b"))
        return (bytes, (self.size,))


@pytest.mark.parametrize("how", ["array", "bytes"])
def test_a_tiny_cifar_pickle_cannot_allocate_gigabytes(tmp_path, how):
    import tracemalloc

    folder = tmp_path / "cifar"
    _write_cifar10(folder, per_batch=4)
    # Protocol 2 names bytes `__builtin__.bytes`, which is refused outright; 4 names it
    # `builtins.bytes`, which is allowed and so must be bounded.
    protocol = 2 if how == "array" else 4
    evil = pickle.dumps({b"data": _Allocates(how, 2 * 10**9), b"labels": []}, protocol=protocol)
    assert len(evil) < 200
    (folder / "data_batch_2").write_bytes(evil)
    from resdsl.train import data
    from resdsl.train.common import TrainError

    tracemalloc.start()
    with pytest.raises(TrainError, match="beyond CIFAR's sizes"):
        data.load(str(folder), (3, 32, 32))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * 2**20


def test_an_oversized_cifar_file_is_refused_unread(tmp_path, monkeypatch):
    folder = tmp_path / "cifar"
    _write_cifar10(folder, per_batch=4)
    from resdsl.train import data
    from resdsl.train.common import TrainError

    monkeypatch.setattr(data, "MAX_CIFAR_BYTES", 100)
    with pytest.raises(TrainError, match="no CIFAR batch is over"):
        data.load(str(folder), (3, 32, 32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("partial"), "no `partial` field"),
        (lambda s: s.__setitem__("epoch", "three"), "`epoch` is a str, not a int"),
        (lambda s: s["rng"].pop("torch"), "`rng.torch` is missing"),
        (lambda s: s.__setitem__("partial", [1.0]), "`partial` is not three numbers"),
    ],
)
def test_a_checkpoint_with_wrong_fields_is_a_clear_error(tmp_path, change, message):
    import torch

    from resdsl.train import checkpoint as ckpt
    from resdsl.train.common import TrainError

    state = {
        "format": 1, "epoch": 1, "step": 0, "partial": [0.0, 0.0, 0.0], "model": {},
        "optimizer": {}, "scheduler": {},
        "rng": {"python": [], "numpy": [], "torch": torch.zeros(2, dtype=torch.uint8)},
    }  # fmt: skip
    ckpt.save_torch(str(tmp_path), state)
    assert ckpt.load_torch(str(tmp_path))["epoch"] == 1
    good = (tmp_path / ckpt.TORCH_FILE).read_bytes()
    change(state)
    ckpt.save_torch(str(tmp_path), state)
    with pytest.raises(TrainError, match="damaged or truncated") as error:
        ckpt.load_torch(str(tmp_path))
    assert message in str(error.value) and ckpt.TORCH_PREV in str(error.value)
    assert (tmp_path / ckpt.TORCH_PREV).read_bytes() == good


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    import torch

    from resdsl.train import checkpoint as ckpt
    from resdsl.train.common import TrainError

    ckpt.save_torch(str(tmp_path), {"format": 1, "epoch": 1})
    before = (tmp_path / ckpt.TORCH_FILE).read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(TrainError, match=r"No space left on device.*previous checkpoint is intact"):
        ckpt.save_torch(str(tmp_path), {"format": 1, "epoch": 2})
    assert (tmp_path / ckpt.TORCH_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.TORCH_FILE]

    (tmp_path / "keras").mkdir()
    ckpt.save_folder(str(tmp_path / "keras"), lambda f: Path(f, "w.h5").write_text("one"))
    with pytest.raises(TrainError, match="previous checkpoint is intact"):
        ckpt.save_folder(str(tmp_path / "keras"), lambda f: full())
    assert (tmp_path / "keras" / ckpt.KERAS_DIR / "w.h5").read_text() == "one"
    assert sorted(p.name for p in (tmp_path / "keras").iterdir()) == [ckpt.KERAS_DIR]


def test_cifar100_layout(tmp_path):
    rng = np.random.default_rng(1)
    for name, n in (("train", 30), ("test", 10)):
        batch = {
            b"fine_labels": [int(v) for v in rng.integers(0, 100, n)],
            b"coarse_labels": [int(v) for v in rng.integers(0, 20, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"fine_label_names": [f"f{i}".encode() for i in range(100)]}
    (tmp_path / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    from resdsl.train import data

    loaded = data.load(str(tmp_path), (3, 32, 32))
    assert loaded.name == "cifar100" and loaded.num_classes == 100
    assert len(loaded.train) + len(loaded.val) == 30
    assert loaded.train.images.shape[1:] == loaded.val.images.shape[1:] == (3, 32, 32)
    assert loaded.test.images.shape == (10, 3, 32, 32)


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    for split, count in (("train", 4), ("test", 2)):
        for label in ("cat", "dog"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                suffix = "png" if i % 2 else "jpg"
                Image.fromarray(pixels).save(tmp_path / split / label / f"{i}.{suffix}")
    from resdsl.train import data

    loaded = data.load(str(tmp_path), (3, 16, 16))
    assert loaded.name == "folder" and loaded.class_names == ["cat", "dog"]
    assert loaded.streamed and loaded.train.images is None  # files, read as batches need them
    assert len(loaded.train) + len(loaded.val) == 8 and len(loaded.test) == 4
    assert loaded.val_name == "held-out" and not set(loaded.train.files) & set(loaded.val.files)
    held = [*loaded.train.files, *loaded.val.files]
    assert all(Path(f).parent.parent == tmp_path / "train" for f in held)
    assert sorted([*loaded.train.labels.tolist(), *loaded.val.labels.tolist()]) == [0] * 4 + [1] * 4
    # Without train/test subfolders, a fixed-seed split of the class folders.
    flat = data.load(str(tmp_path / "train"), (1, 8, 8))
    assert len(flat.train) + len(flat.val) + len(flat.test) == 8 and len(flat.test) >= 2
    splits = [set(flat.train.files), set(flat.val.files), set(flat.test.files)]
    assert len(set.union(*splits)) == 8  # disjoint


def test_digits_adapted_to_input_shape():
    from sklearn.datasets import load_digits

    from resdsl.train import data

    loaded = data.load("digits", (3, 32, 32))
    total = len(load_digits().target)
    assert len(loaded.train) + len(loaded.val) + len(loaded.test) == total
    assert loaded.train.images.shape[1:] == (3, 32, 32)
    np.testing.assert_array_equal(loaded.train.images[:, 0], loaded.train.images[:, 2])
    again = data.load("digits", (1, 8, 8))
    assert again.test.labels.tolist() == loaded.test.labels.tolist()  # the same split every time
    assert again.val.labels.tolist() == loaded.val.labels.tolist()


def test_unknown_data_is_a_clear_error(tiny, tmp_path):
    done = _train(tiny, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "not a dataset name" in done.stderr


# --- recipes ------------------------------------------------------------------------------------


def test_cifar_paper_recipe():
    from resdsl.train.presets import PRESETS, lr_factor, plan

    recipe = PRESETS["cifar-paper"]
    assert (recipe.batch_size, recipe.lr, recipe.momentum, recipe.weight_decay) == (
        128,
        0.1,
        0.9,
        1e-4,
    )
    assert (recipe.pad, recipe.flip) == (4, True)
    steps = -(-50_000 // 128)
    run = plan(recipe, steps)
    assert run.total_steps >= 64_000 and (run.epochs - 1) * steps < 64_000
    assert run.milestone_steps == (32_000, 48_000)
    assert lr_factor(31_999, recipe, run) == 1.0
    assert lr_factor(32_000, recipe, run) == pytest.approx(0.1)
    assert lr_factor(48_000, recipe, run) == pytest.approx(0.01)
    short = plan(recipe, steps, epochs=10)  # a shorter run scales its milestones
    assert short.milestone_steps == (int(0.5 * 10 * steps), int(0.75 * 10 * steps))


def test_checkpoint_loads_weights_only(reference):
    import torch

    state = torch.load(reference / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "step"} <= set(state)
    from resdsl.train import data

    assert state["scheduler"]["last_epoch"] == 4 * (
        -(-len(data.load("digits", (1, 8, 8)).train) // 64)
    )
    assert isinstance(state["rng"]["torch"], torch.Tensor)


@pytest.mark.conformance  # a benchmark's own check, not the product's behaviour
def test_gpu_benchmark_smoke_runs_on_cpu(tmp_path):
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_gpu.py"),
            "--smoke",
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(report.read_text())
    assert set(figures["resnet50"]) == {
        "generated",
        "torchvision",
        "generated +compile",
        "torchvision +compile",
    }
    assert figures["ratio"] > 0 and figures["ratio_compile"] > 0
    assert figures["resnet56"]["images_per_s"] > 0


def test_bad_spec_is_a_located_diagnostic(tmp_path):
    spec = tmp_path / "bad.res"
    spec.write_text("network n {\n  input 3x32x32\n  classes 10\n  clases 3\n}\n")
    done = _train(str(spec), "--out", str(tmp_path / "run"))
    assert done.returncode == 1
    assert "bad.res:4:3" in done.stderr and "Traceback" not in done.stderr
    missing = _train(str(tmp_path / "none.res"), "--out", str(tmp_path / "run"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


# --- run folders ----------------------------------------------------------------------------


def test_each_run_gets_a_new_folder_by_default(tiny, tmp_path, monkeypatch):
    from resdsl.train.common import TrainOptions
    from resdsl.train.run import prepare_run

    monkeypatch.chdir(tmp_path)
    first = TrainOptions(spec=tiny)
    prepare_run(first)
    second = TrainOptions(spec=tiny)
    prepare_run(second)
    assert (first.out, second.out) == (
        os.path.join("runs", "resnet8-1"),
        os.path.join("runs", "resnet8-2"),
    )
    record = json.loads((tmp_path / first.out / "run.json").read_text())
    assert record["backend"] == "torch" and record["spec"] == os.path.abspath(tiny)
    monkeypatch.setenv("WORLD_SIZE", "2")
    from resdsl.train.common import TrainError

    with pytest.raises(TrainError, match="give --out"):
        prepare_run(TrainOptions(spec=tiny))


def test_an_earlier_run_is_never_overwritten(tiny, reference, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in reference.iterdir()}
    done = _train(tiny, "--data", "digits", "--epochs", "1", "--out", str(reference))
    assert done.returncode == 2 and "holds an earlier run" in done.stderr
    assert "--resume" in done.stderr and "Traceback" not in done.stderr
    assert {p.name: p.stat().st_mtime_ns for p in reference.iterdir()} == before


def test_resume_refuses_another_spec_and_an_empty_folder(tiny, reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    other = tmp_path / "other.res"
    other.write_text(Path(tiny).read_text().replace("classes  10", "classes  9"))
    done = _train(str(other), "--data", "digits", "--out", str(out), "--resume")
    assert done.returncode == 2, done.stderr
    assert f"was trained from `{os.path.abspath(tiny)}`" in done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    done = _train(tiny, "--data", "digits", "--out", str(out), "--resume", "--backend", "keras")
    assert done.returncode == 2 and "is a torch one: resume with --backend torch" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _train(tiny, "--data", "digits", "--out", str(empty), "--resume")
    assert done.returncode == 2 and "no torch checkpoint" in done.stderr
    assert list(empty.iterdir()) == []


def test_the_progress_bar_moves_every_step(monkeypatch):
    """It once advanced one tick per 10 steps and ended at 3/23."""
    from resdsl.train import progress

    monkeypatch.setattr(progress.sys.stdout, "isatty", lambda: True)
    bar = progress.EpochProgress(1, 1, 23)
    try:
        for step in range(1, 24):
            if step % 10 == 0 or step == 23:
                bar.update(8, 0.5, 0.9, step=step)
            else:
                bar.update(8, step=step)
            assert bar._bar.tasks[0].completed == step
    finally:
        bar.close()
    assert bar.images == 23 * 8


def test_a_missing_cifar_archive_says_where_it_goes(tmp_path, monkeypatch):
    from resdsl.train import data
    from resdsl.train.common import TrainError

    monkeypatch.setenv("RESDSL_DATA", str(tmp_path / "datasets"))
    with pytest.raises(TrainError) as error:
        data.load("cifar10", (3, 32, 32))
    message = str(error.value)
    assert str(tmp_path / "datasets" / "cifar-10-batches-py") in message
    assert "cifar-10-python.tar.gz" in message and "RESDSL_DATA" in message


def test_the_data_decides_the_classes_and_says_so_once(tiny, tmp_path, capsys):
    import resdsl
    from resdsl.train.common import TrainOptions, data_and_recipe

    spec = tmp_path / "five.res"
    spec.write_text(Path(tiny).read_text().replace("classes  10", "classes  5"))
    data, _ = data_and_recipe(TrainOptions(spec=str(spec)), resdsl.load(spec))
    out = capsys.readouterr().out
    assert data.num_classes == 10
    assert out.count("the data has 10 classes and the spec 5") == 1


# --- using what was trained ------------------------------------------------------------------


def test_eval_and_predict_use_a_trained_checkpoint(tiny, reference, tmp_path):
    from PIL import Image

    checkpoint = str(reference / "best.pt")  # the chosen weights, whose test figures the run has
    result = json.loads((reference / "result.json").read_text())
    run = subprocess.run(
        [sys.executable, "-m", "resdsl", "eval", tiny, "--weights", checkpoint, "--data",
         "digits", "--json", "--confusion", str(tmp_path / "confusion.png")],
        capture_output=True, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    metrics = json.loads(run.stdout)
    assert metrics["top1"] == pytest.approx(result["test_acc"], abs=1e-9)
    assert metrics["top5"] >= metrics["top1"] and metrics["split"] == "test"
    matrix = np.array(metrics["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == metrics["images"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["top1"])
    assert Image.open(tmp_path / "confusion.png").format == "PNG"
    # predict: images of any mode; names from the checkpoint
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for index, mode in ((0, "L"), (1, "RGBA"), (2, "P")):
        image = Image.fromarray((digits.images[index] * 16).clip(0, 255).astype("uint8"))
        path = tmp_path / f"digit{index}.png"
        image.convert(mode).save(path)
        paths.append(str(path))
    run = subprocess.run(
        [sys.executable, "-m", "resdsl", "predict", tiny, *paths, "--weights", checkpoint,
         "--top", "3", "--json"],
        capture_output=True, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    predictions = json.loads(run.stdout)
    assert [p["image"] for p in predictions] == paths
    assert all(len(p["top"]) == 3 for p in predictions)
    assert all(abs(sum(r["probability"] for r in p["top"])) <= 1 + 1e-6 for p in predictions)
    assert {r["class"] for p in predictions for r in p["top"]} <= {str(i) for i in range(10)}
    bad = subprocess.run(
        [sys.executable, "-m", "resdsl", "predict", tiny, str(tmp_path / "confusion.png") + "x",
         "--weights", checkpoint],
        capture_output=True, text=True, env=_env(), cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_eval_predict_and_export_read_keras_weights(tiny, keras_run, tmp_path):
    """What `train --backend keras` keeps (best.weights.h5, the checkpoint folder, the weights
    in it) is ported to the PyTorch model: eval gives the run's own test accuracy and loss,
    predict finds the class names in the file, export writes the Keras model's logits."""
    import onnxruntime
    from PIL import Image
    from sklearn.datasets import load_digits

    import resdsl
    from resdsl.interop.weights import build_generated

    _, out = keras_run
    result = json.loads((out / "result.json").read_text())
    got = {}
    for weights in ("best.weights.h5", "checkpoint", "checkpoint/model.weights.h5"):
        status, stdout, stderr = in_process(
            "eval", tiny, "--weights", out / weights, "--data", "digits", "--json"
        )
        assert status == 0, stderr
        got[weights] = json.loads(stdout)
    # The chosen weights' test figures are the ones the run measured once, at its end.
    best = got["best.weights.h5"]
    assert best["top1"] == pytest.approx(result["test_acc"], abs=1.01 / best["images"])
    assert best["loss"] == pytest.approx(result["test_loss"], rel=1e-3)
    assert got["checkpoint"]["loss"] == pytest.approx(got["checkpoint/model.weights.h5"]["loss"])
    image = tmp_path / "digit.png"
    Image.fromarray((load_digits().images[0] * 16).clip(0, 255).astype("uint8")).save(image)
    status, stdout, stderr = in_process(
        "predict", tiny, image, "--weights", out / "best.weights.h5", "--json"
    )
    assert status == 0, stderr
    assert json.loads(stdout)[0]["top"][0]["class"] in {str(i) for i in range(10)}
    onnx = tmp_path / "keras.onnx"
    status, _, stderr = in_process("export", tiny, "--weights", out / "best.weights.h5", "-o", onnx)
    assert status == 0, stderr
    keras_model = build_generated(resdsl.load(tiny), "keras").build_model()
    keras_model.load_weights(str(out / "best.weights.h5"))
    x = np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype("float32")
    expected = np.asarray(keras_model(x.transpose(0, 2, 3, 1), training=False))
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x})
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_eval_refuses_data_of_other_classes_than_keras_weights_record(tiny, keras_run, tmp_path):
    """The class names a Keras `.weights.h5` keeps are checked as a checkpoint's are."""
    from PIL import Image

    from resdsl.cli.evaluate import class_mismatch

    for split in ("train", "test"):
        for name in ("bird", "cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("L", (8, 8)).save(tmp_path / split / name / "0.png")
    weights = keras_run[1] / "best.weights.h5"
    status, _, stderr = in_process("eval", tiny, "--weights", weights, "--data", tmp_path)
    assert status == 2 and "Traceback" not in stderr, stderr
    assert "the weights' 10 are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9; the data's 3 are bird, cat, dog" in (
        stderr
    )
    assert "in another order" in class_mismatch(["b", "a"], ["a", "b"], 2, "d")
    assert "5 classes (a, b, c, d, e); the weights have 3 outputs" in class_mismatch(
        None, list("abcde"), 3, "d"
    )


def test_weights_that_are_not_a_checkpoint_are_one_line_errors(tiny, tmp_path):
    """eval, predict and export say what the file is and what they expected, exit 2, without
    PyTorch's paragraphs ("file an issue")."""
    from PIL import Image

    photo = tmp_path / "photo.pt"
    Image.new("RGB", (4, 4)).save(photo, format="PNG")
    (tmp_path / "photo.weights.h5").write_bytes(photo.read_bytes())
    (tmp_path / "cut.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    (tmp_path / "folder").mkdir()
    cases = {
        "photo.pt": "a PNG image, not a PyTorch checkpoint or state dict (.pt), a Keras",
        "photo.weights.h5": "a PNG image, not a PyTorch checkpoint",
        "cut.weights.h5": "a damaged HDF5 file",
        "folder": "a folder, not a PyTorch checkpoint",
    }
    commands = (
        ("eval", tiny, "--data", "digits"),
        ("predict", tiny, photo),
        ("export", tiny, "-o", tmp_path / "x.onnx"),
    )
    for command in commands:
        for name, words in cases.items():
            weights = tmp_path / name
            status, stdout, stderr = in_process(*command, "--weights", weights)
            assert status == 2 and stdout == "", (command, name, stderr)
            assert stderr == f"error: cannot read `{weights}`: {stderr.split(': ', 2)[2]}"
            assert words in stderr and stderr.count("\n") == 1, (command, name, stderr)
            assert "issue" not in stderr, stderr
    assert not (tmp_path / "x.onnx").exists()


def test_weights_of_another_network_name_the_first_tensor_that_does_not_fit(
    tiny, reference, keras_run, tmp_path
):
    """A deeper spec than the weights': the first tensor it lacks, and the counts, on one line
    (the comparison `resdsl import` makes), for PyTorch and Keras weights alike."""
    import resdsl
    from resdsl.interop.weights import state_dict_shapes

    deeper = tmp_path / "deeper.res"
    deeper.write_text(Path(tiny).read_text().replace("layer1: 1 x 16", "layer1: 2 x 16"))
    ours, theirs = state_dict_shapes(resdsl.load(deeper)), state_dict_shapes(resdsl.load(tiny))
    lacking = [k for k in ours if k not in theirs and not k.endswith("num_batches_tracked")]
    first = f"`{lacking[0]}` {ours[lacking[0]]} is missing from the weights"
    for command in (("eval", deeper, "--data", "digits"), ("export", deeper, "-o", tmp_path / "x")):
        status, _, stderr = in_process(*command, "--weights", reference / "best.pt")
        assert status == 2 and stderr.count("\n") == 1, stderr
        assert f"does not fit {deeper}: {first} ({len(lacking)} missing, 0 unexpected)" in stderr
    keras_weights = keras_run[1] / "best.weights.h5"
    status, _, stderr = in_process("eval", deeper, "--weights", keras_weights, "--data", "digits")
    assert status == 2 and stderr.count("\n") == 1, stderr
    assert f"does not fit {deeper}: `layer1_block2_1_conv/kernel` is" in stderr, stderr
    status, _, ported = in_process(
        "port-weights", deeper, "--from", "keras", keras_weights, "--to", "torch", tmp_path / "p.pt"
    )
    assert status == 2 and ported == stderr, ported


# Keras' run under `make conformance`: both trainers read --init through one reader, which the
# torch run tests in `make test`. The classifier of another size starting fresh is
# tests/unit/train/test_train_data.py's (a torchvision state dict of 1000 classes) in `make
# test`; here under `make conformance`.
@pytest.mark.parametrize(
    "backend, cases",
    [
        pytest.param("torch", ("plain",), id="torch"),
        pytest.param("torch", ("five",), marks=pytest.mark.conformance, id="torch-five"),
        pytest.param("keras", ("five",), marks=pytest.mark.conformance, id="keras"),
    ],
)
def test_fine_tuning_from_a_state_dict_replaces_the_classifier(
    tiny, reference, tmp_path, backend, cases
):
    """--init from a state dict of 10 classes, on data of 10 classes: everything but the
    classifier carries over; the classifier is checked against the weights' count."""
    import torch

    state = torch.load(reference / "checkpoint.pt", weights_only=True)["model"]
    files = {"plain": (tmp_path / "weights.pt", state, False)}
    five = {k: (v[:5] if k.startswith("fc.") else v) for k, v in state.items()}
    files["five"] = (tmp_path / "five.pt", five, True)
    for case in cases:
        weights, tensors, fresh = files[case]
        torch.save(tensors, weights)
        out = tmp_path / f"run-{weights.stem}"
        done = _train(tiny, "--backend", backend, "--data", "digits", "--epochs", "1",
                      "--out", str(out), "--init", str(weights))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"starting from `{weights}`" in done.stdout
        assert "recipe: digits, 1 epoch x 21 steps," in done.stdout  # not "1 epochs"
        assert ("starts fresh" in done.stdout) == fresh
    wrong = tmp_path / "wrong.pt"
    torch.save({**state, "layer1.0.conv1.weight": torch.zeros(3, 3, 3, 3)}, wrong)
    # In this process: the weights are read before training starts.
    args = ["--backend", backend, "--data", "digits", "--epochs", "1", "--init", wrong]
    status, _, stderr = in_process("train", tiny, *args, "--out", tmp_path / "bad")
    assert status == 2 and "`layer1.0.conv1.weight` is (3, 3, 3, 3)" in stderr


def test_results_have_the_same_keys_and_the_best_epoch_is_kept(reference, keras_run):
    torch_result = json.loads((reference / "result.json").read_text())
    _, out = keras_run
    keras_result = json.loads((out / "result.json").read_text())
    assert list(torch_result) == list(keras_result)
    for run in (reference, out):
        result = json.loads((run / "result.json").read_text())
        metrics = read_metrics(run)
        best = max(metrics, key=lambda m: m["val_acc"])
        assert (result["best_epoch"], result["best_val_acc"]) == (best["epoch"], best["val_acc"])
    import torch

    best = torch.load(reference / "best.pt", weights_only=True)
    assert set(best) == {"model", "data"} and "fc.weight" in best["model"]
    assert (out / "best.weights.h5").is_file()
    from PIL import Image

    # drawn by matplotlib (tests/unit/charts/test_charts.py checks how)
    for run in (reference, out):
        with Image.open(run / "curves.png") as curves:
            assert curves.format == "PNG" and curves.size[0] > 2 * curves.size[1]
        assert (run / "curves.svg").read_text().lstrip().startswith("<?xml")


def test_both_trainers_report_each_epochs_last_learning_rate(reference, keras_run):
    """The `lr` of an epoch is the rate its last step used, in both trainers: at the end of
    the cosine schedule the last rate used, not the zero that would come after it."""
    from resdsl.train.presets import PRESETS, epoch_lr, plan

    recipe = PRESETS["digits"]
    assert recipe.schedule == "cosine"
    for out in (reference, keras_run[1]):
        metrics = read_metrics(out)
        run_plan = plan(recipe, metrics[0]["step"], len(metrics))
        expected = [epoch_lr(epoch, recipe, run_plan) for epoch in range(len(metrics))]
        assert [m["lr"] for m in metrics] == expected, out
        assert metrics[-1]["lr"] > 0


def test_the_torch_scheduler_runs_each_epochs_last_step_at_the_reported_rate():
    """The rate PyTorch's scheduler sets for an epoch's last step is `epoch_lr`, which the
    Keras trainer's callback also sets for that step (both through `lr_factor`)."""
    import torch

    from resdsl.train.presets import PRESETS, epoch_lr, lr_lambda, override, plan

    recipe = override(PRESETS["digits"], warmup_steps=4)
    run_plan = plan(recipe, 5, 3)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe, run_plan))
    used = []
    for _ in range(run_plan.total_steps):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    steps = run_plan.steps_per_epoch
    last = [used[(epoch + 1) * steps - 1] for epoch in range(run_plan.epochs)]
    assert last == pytest.approx([epoch_lr(e, recipe, run_plan) for e in range(run_plan.epochs)])


def test_keras_runs_print_no_tensorflow_start_up_lines(keras_run):
    """TensorFlow's oneDNN INFO line (twice, after absl's pre-initialisation warning) is held
    to TF_CPP_MIN_LOG_LEVEL=2 like its other lines."""
    done, _ = keras_run
    assert "oneDNN" not in done.stderr and "absl::InitializeLog" not in done.stderr, done.stderr


def test_tensorflow_start_up_lines_are_held_to_its_log_level():
    from resdsl.tf_startup import keep_line

    info = b"I0000 00:00:1795823776.323615    8322 port.cc:153] oneDNN custom operations are on.\n"
    warning = b"W0000 00:00:1795823776.323615    8322 cuda_dnn.cc:8] no cuDNN\n"
    preamble = b"WARNING: All log messages before absl::InitializeLog() is called are written\n"
    other = b"UserWarning: something else\n"
    assert [keep_line(line, 0) for line in (info, warning, preamble, other)] == [True] * 4
    assert [keep_line(line, 1) for line in (info, warning, preamble, other)] == [0, 1, 0, 1]
    assert [keep_line(line, 2) for line in (info, warning, preamble, other)] == [0, 0, 0, 1]


def test_keras_inputs_are_checked_before_tensorflow_starts(tiny, reference, tmp_path):
    """A bad spec, data folder or --init file fails with its own message where TensorFlow
    cannot even be imported: it is checked first."""
    bad = tmp_path / "bad.res"
    bad.write_text(Path(tiny).read_text().replace("block    basic", "block    basic\n  bogus 3"))
    image = tmp_path / "image.pt"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    cases = (
        ((str(bad),), 1, "unknown setting `bogus`"),
        ((tiny, "--data", str(tmp_path / "nowhere")), 2, "not a dataset name"),
        ((tiny, "--init", str(image)), 2, f"--init `{image}`: a PNG image, not a PyTorch"),
    )
    blocked = without_tensorflow(tmp_path)
    for number, (args, status, words) in enumerate(cases):
        out = str(tmp_path / f"run{number}")
        done = _train(*args, "--backend", "keras", "--epochs", "1", "--out", out, env=blocked)
        assert done.returncode == status and words in done.stderr, done.stderr
        assert "no TensorFlow here" not in done.stderr and "Traceback" not in done.stderr


def test_threads_option_reaches_the_framework(tiny, tmp_path):
    out = tmp_path / "run"
    done = _train(tiny, "--data", "digits", "--epochs", "1", "--out", str(out), "--threads", "1")
    assert done.returncode == 0, done.stderr
    device = next(line for line in done.stdout.splitlines() if line.startswith("device:"))
    assert "1 CPU thread" in device.split("; ", 1)[1].split(", ")
    bad = _train(tiny, "--threads", "0", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "--threads" in bad.stderr


# Keras' run (16 s on 2 cores) is under `make conformance`; test_keras_learns_digits and the
# Keras resume tests train with its recipe in `make test`.
@pytest.mark.parametrize("backend", ["torch", pytest.param("keras", marks=pytest.mark.conformance)])
def test_recipe_options_reach_the_optimizer(tiny, tmp_path, backend):
    """AdamW, Nesterov, label smoothing, gradient clipping and weight decay that skips norms
    and biases: named in the run's recipe line, and the run learns."""
    out = tmp_path / "run"
    done = _train(tiny, "--backend", backend, "--data", "digits", "--epochs", "2", "--out",
                  str(out), "--optimizer", "adamw", "--lr", "0.003", "--label-smoothing", "0.1",
                  "--clip-grad", "1.0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    recipe = next(line for line in done.stdout.splitlines() if line.startswith("model:"))
    assert "AdamW" in recipe and "label smoothing 0.1" in recipe and "clipped at 1" in recipe
    assert read_metrics(out)[-1]["val_acc"] > 0.5


def test_optimizers_decay_only_what_they_should():
    import torch

    import resdsl
    from resdsl.interop.weights import build_generated
    from resdsl.train.presets import PRESETS
    from resdsl.train.torch_trainer import make_optimizer

    model = build_generated(resdsl.load(RESNET20), "torch").build_model()
    imagenet = make_optimizer(torch, model, PRESETS["imagenet"])
    decayed, kept = imagenet.param_groups
    assert decayed["weight_decay"] == 1e-4 and kept["weight_decay"] == 0.0
    assert all(p.ndim == 4 or p.ndim == 2 for p in decayed["params"])
    assert all(p.ndim == 1 for p in kept["params"]) and imagenet.defaults["nesterov"]
    paper = make_optimizer(torch, model, PRESETS["cifar-paper"])
    assert len(paper.param_groups) == 1 and not paper.defaults["nesterov"]
