"""Issue 30, round two: the best epoch is chosen on a validation split (val/, else held out
from the training images with a fixed seed) and the test split is measured once, for the
chosen weights; `--config FILE.toml` and the resolved OUT/config.toml; `--device`; the
progress bar's figures on short and resumed epochs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tomllib
from train_helpers import in_process, read_metrics, shared_folder, spec_file, tiny_spec, train

TINY = tiny_spec("1x8x8", 10)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return spec_file(tmp_path_factory, TINY)


@pytest.fixture(scope="module")
def configured(tiny, tmp_path_factory):
    """A digits run from a config file (the learning rate overridden on the command line),
    made once for the session (train_helpers.shared_folder): (the finished process, its run
    folder, the config file)."""
    config_text = (
        f'spec = "{Path(tiny).name}"\n'
        "epochs = 3\nbatch-size = 128\nlr = 0.5\nseed = 1\ntensorboard = false\n"
        'device = "cpu"\n'
    )

    def make(folder: Path) -> None:
        (folder / "run.toml").write_text(config_text)
        (folder / Path(tiny).name).write_text(Path(tiny).read_text())
        done = train(
            "--config", str(folder / "run.toml"), "--lr", "0.1", "--out", str(folder / "run")
        )
        for name, text in (("stdout.txt", done.stdout), ("stderr.txt", done.stderr)):
            (folder / name).write_text(text)
        (folder / "status.txt").write_text(str(done.returncode))

    folder = shared_folder(tmp_path_factory, "configured-run", make)
    output = [(folder / name).read_text() for name in ("stdout.txt", "stderr.txt")]
    status = int((folder / "status.txt").read_text())
    done = subprocess.CompletedProcess([], status, *output)
    return done, folder / "run", folder / "run.toml"


def test_held_out_validation_is_stratified_fixed_and_disjoint():
    from resdsl.train.data import Split, hold_out_validation

    labels = np.repeat(np.arange(4), [10, 20, 5, 1])
    split = Split(labels, images=np.arange(len(labels))[:, None, None, None].astype(np.uint8))
    kept, val = hold_out_validation(split)
    again = hold_out_validation(split)[1]
    assert val.images.ravel().tolist() == again.images.ravel().tolist()  # the same every run
    assert not set(kept.images.ravel()) & set(val.images.ravel())
    assert len(kept) + len(val) == len(labels)
    # 10% of each class (one at least where a class has two images or more)
    assert np.bincount(val.labels, minlength=4).tolist() == [1, 2, 1, 0]
    assert hold_out_validation(Split(np.array([0, 1]), images=np.zeros((2, 1, 1, 1))))[1] is None


def test_the_best_epoch_is_chosen_on_validation_and_test_is_measured_once(configured, tiny):
    done, out, _ = configured
    assert done.returncode == 0, done.stderr
    metrics = read_metrics(out)
    assert all("val_acc" in m and "test_acc" not in m for m in metrics)  # test never per epoch
    result = json.loads((out / "result.json").read_text())
    best = max(metrics, key=lambda m: m["val_acc"])
    assert (result["best_epoch"], result["best_val_acc"]) == (best["epoch"], best["val_acc"])
    assert (result["val_split"], result["test_split"]) == ("held-out", "test")
    assert "held-out val / 359 test" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == (
        f"test accuracy: {result['test_acc']:.2%} (the best weights: epoch {best['epoch']}, "
        f"validation {best['val_acc']:.2%})"
    )
    # The test figure is the chosen weights' (best.pt), as eval measures them.
    status, stdout, stderr = in_process(
        "eval", tiny, "--weights", out / "best.pt", "--data", "digits", "--json"
    )
    assert status == 0, stderr
    got = json.loads(stdout)
    assert got["split"] == "test" and got["top1"] == pytest.approx(result["test_acc"], abs=1e-9)


def test_options_come_from_the_config_file_and_the_command_line_overrides(configured):
    """run.json's recipe has the file's values and the command line's lr; OUT/config.toml,
    read back by train's own reader, gives that recipe again."""
    from resdsl.cli.train import train as command
    from resdsl.train.config import read
    from resdsl.train.run import RECIPE_OPTIONS

    done, out, _ = configured
    assert done.returncode == 0, done.stderr
    recipe = json.loads((out / "run.json").read_text())["recipe"]
    assert (recipe["epochs"], recipe["batch_size"], recipe["lr"], recipe["seed"]) == (
        3,
        128,
        0.1,
        1,
    )
    saved = out / "config.toml"
    tomllib.loads(saved.read_text())  # TOML
    again = read(str(saved), command, None)
    for name in RECIPE_OPTIONS:
        assert again[name] == recipe[name], name
    assert again["device"] == "cpu" and again["tensorboard"] is False


BAD_CONFIGS = {
    "btach-size = 3": "unknown key `btach-size`; did you mean `batch-size`?",
    'lr = "fast"': '`lr = "fast"`: expected a number',
    "epochs = 0": "`epochs = 0`: 0 is not in the range x>=1",
    'schedule = "linear"': "`schedule = \"linear\"`: 'linear' is not one of",
    "epochs = [": "not a TOML file",
    "batch-size = 2\nbatch_size = 3": "`batch-size` is given twice",
    'device = "tpu"': "--device tpu: not a device; expected cpu, cuda, cuda:N or mps",
}


@pytest.mark.parametrize("text", sorted(BAD_CONFIGS))
def test_a_bad_config_is_one_line_and_exit_2_and_makes_no_folder(tiny, tmp_path, text, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "bad.toml"
    config.write_text(text + "\n")
    status, _, stderr = in_process("train", tiny, "--config", config)
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert BAD_CONFIGS[text] in stderr and stderr.startswith("error: ")
    assert not (tmp_path / "runs").exists()


def test_config_without_a_spec_and_a_missing_config_are_one_line(tmp_path):
    (tmp_path / "empty.toml").write_text("epochs = 1\n")
    status, _, stderr = in_process("train", "--config", tmp_path / "empty.toml")
    assert status == 2 and stderr.strip() == (
        "error: give the SPEC to train, or `spec = ...` in a --config file"
    )
    status, _, stderr = in_process("train", "--config", tmp_path / "none.toml")
    assert (
        status == 2
        and stderr.strip() == f"error: --config `{tmp_path / 'none.toml'}`: no such file"
    )


def test_a_device_this_machine_lacks_is_one_line(tiny, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    wanted, words = (
        ("cuda:99", "CUDA devices")
        if torch.cuda.is_available()
        else ("cuda", "CUDA is not available")
    )
    status, _, stderr = in_process("train", tiny, "--device", wanted)
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and words in stderr, stderr
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        status, _, stderr = in_process("train", tiny, "--device", "mps")
        assert status == 2 and "MPS is not available" in stderr
    assert not (tmp_path / "runs").exists()


def test_a_folder_of_train_and_val_alone_reports_validation(tiny, tmp_path):
    from PIL import Image

    for split, count in (("train", 6), ("val", 2)):
        for label, shade in (("dark", 30), ("light", 220)):
            (tmp_path / "images" / split / label).mkdir(parents=True)
            for i in range(count):
                Image.new("L", (8, 8), shade + i).save(
                    tmp_path / "images" / split / label / f"{i}.png"
                )
    out = tmp_path / "run"
    done = train(tiny, "--data", str(tmp_path / "images"), "--epochs", "2", "--batch-size", "4",
                 "--no-tensorboard", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "12 train / 4 val (read from disk as needed)" in done.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["test_acc"] is None and result["val_split"] == "val"
    assert done.stdout.strip().splitlines()[-1] == (
        f"validation accuracy: {result['best_val_acc']:.2%} (epoch {result['best_epoch']}; "
        "no test split)"
    )


def test_the_bar_shows_running_figures_and_a_resumed_epoch_s_speed(monkeypatch):
    """The speed leaves out the first step (what starting costs); the loss and accuracy stay
    on the bar between reads; short epochs read them every step."""
    from resdsl.train import progress

    clock = iter([0.0, 30.0, 30.0, 31.0, 32.0]).__next__
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    bar = progress.EpochProgress(2, 2, 12, enabled=False, start_step=9)  # t = 0
    bar.update(64, 2.5, 0.25, step=10)  # the first step ends at t = 30 (start-up)
    bar.update(64, step=11)  # t = 31
    assert bar.stats == "loss 2.5000  acc 25.00%  64 img/s"
    assert bar.rate() == pytest.approx((128 - 64) / (32 - 30))  # the first step left out
    assert progress.stats_every(12) == 1 and progress.stats_every(500) == 10
