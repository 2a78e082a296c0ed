"""Issue 30, "Training runs": what a new user hit in the first hour. A failed start leaves no
run folder behind and does not lock its --out; every command reads a checkpoint saved under
DDP or wrapped in a dict as `import` does; run.json records the recipe the run used; `eval`
reports top-5 only where it says something."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_helpers import in_process, spec_file, tiny_spec

TINY = tiny_spec("1x16x16", 10)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return spec_file(tmp_path_factory, TINY)


def _state(spec: str, classes: int = 10) -> dict:
    import resdsl

    return resdsl.build(spec, backend="torch", num_classes=classes).state_dict()


# --- one reader of checkpoints ---------------------------------------------------------------

WRAPPINGS = {
    "ddp": lambda s: {f"module.{k}": v for k, v in s.items()},
    "state_dict": lambda s: {"state_dict": s, "epoch": 3},
    "model": lambda s: {"model": s, "optimizer": {}},
    "ddp in state_dict": lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
    "compiled ddp": lambda s: {f"module._orig_mod.{k}": v for k, v in s.items()},
}


@pytest.mark.parametrize("wrapping", sorted(WRAPPINGS))
def test_the_reader_unwraps_what_trainers_save(tiny, tmp_path, wrapping):
    import torch

    from resdsl.interop.weight_files import read_torch_checkpoint

    state = _state(tiny)
    path = tmp_path / "w.pt"
    torch.save(WRAPPINGS[wrapping](state), path)
    read, _ = read_torch_checkpoint(path)
    assert list(read) == list(state)


def test_a_ddp_checkpoint_is_read_by_every_command(tiny, tmp_path):
    """`eval`, `export`, `predict` and `train --init` (its reader, :func:`initial_state`)
    take a checkpoint saved from a DistributedDataParallel model, as `import` does."""
    import torch
    from PIL import Image

    import resdsl
    from resdsl.train.common import initial_state

    path = tmp_path / "ddp.pt"
    torch.save(WRAPPINGS["ddp"](_state(tiny)), path)
    status, stdout, stderr = in_process("eval", tiny, "--weights", path, "--data", "digits")
    assert status == 0, stderr
    assert "top-1" in stdout
    status, _, stderr = in_process("export", tiny, "--weights", path, "-o", tmp_path / "n.onnx")
    assert status == 0, stderr
    Image.new("L", (8, 8), 90).save(tmp_path / "a.png")
    status, stdout, stderr = in_process(
        "predict", tiny, tmp_path / "a.png", "--weights", path, "--data", "digits"
    )
    assert status == 0 and "a.png:" in stdout, stderr
    state, dropped = initial_state(str(path), resdsl.load(tiny), 10)
    assert dropped == [] and "conv1.weight" in state


# --- eval's top-k ----------------------------------------------------------------------------


def _three_classes(root: Path) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        for i, name in enumerate(("a", "b", "c")):
            (root / split / name).mkdir(parents=True)
            for j in range(2):
                Image.new("L", (8, 8), 60 * i + 10 * j).save(root / split / name / f"{j}.png")
    return root


def test_eval_reports_top5_only_with_more_than_five_classes(tiny, tmp_path):
    import torch

    three = tmp_path / "three.pt"
    torch.save(_state(tiny, 3), three)
    data = _three_classes(tmp_path / "images")
    status, stdout, stderr = in_process("eval", tiny, "--weights", three, "--data", data)
    assert status == 0, stderr
    assert "top-1" in stdout and "top-3" not in stdout and "top-5" not in stdout, stdout
    status, stdout, stderr = in_process("eval", tiny, "--weights", three, "--data", data, "--json")
    assert status == 0, stderr
    assert [k for k in json.loads(stdout) if k.startswith("top")] == ["top1"]
    ten = tmp_path / "ten.pt"
    torch.save(_state(tiny), ten)
    status, stdout, stderr = in_process("eval", tiny, "--weights", ten, "--data", "digits")
    assert status == 0 and "top-5" in stdout, stderr


# --- a failed start leaves nothing behind ----------------------------------------------------


def test_a_failed_start_makes_no_folder_and_a_rerun_needs_no_resume(tiny, tmp_path, monkeypatch):
    """`--init` weights that do not fit (or data that cannot be read) are refused before the
    run folder is made: neither `--out` nor a numbered `runs/NAME-N` is left behind, and the
    same command with good weights then starts a new run there."""
    import torch

    monkeypatch.chdir(tmp_path)
    wrong = tmp_path / "wrong.pt"
    torch.save(_state(tiny_spec_file(tmp_path, "2x16x16")), wrong)
    out = tmp_path / "run"
    for args in (("--out", out), ()):
        status, _, stderr = in_process("train", tiny, "--epochs", "1", "--init", wrong, *args)
        assert status == 2 and "does not fit" in stderr, stderr
        status, _, stderr = in_process("train", tiny, "--data", tmp_path / "none", *args)
        assert status == 2 and "none" in stderr, stderr
    assert not out.exists() and not (tmp_path / "runs").exists()
    good = tmp_path / "good.pt"
    torch.save(_state(tiny), good)
    args = ("train", tiny, "--epochs", "1", "--no-tensorboard", "--out", out, "--init", good)
    status, _, stderr = in_process(*args)
    assert status == 0, stderr
    record = json.loads((out / "run.json").read_text())
    assert None not in record["options"].values()
    assert record["options"] == {"data": "digits", "epochs": 1, "seed": 0}
    recipe = record["recipe"]
    assert None not in recipe.values()
    assert (recipe["preset"], recipe["epochs"], recipe["batch_size"]) == ("digits", 1, 64)
    assert (recipe["lr"], recipe["schedule"], recipe["warmup_steps"]) == (0.05, "cosine", 20)
    assert (recipe["augment"], recipe["pad"], recipe["flip"], recipe["ema"]) == (
        "cifar", 2, False, 0.0
    )  # fmt: skip


def tiny_spec_file(folder: Path, shape: str) -> str:
    path = folder / f"other-{shape}.res"
    path.write_text(tiny_spec(shape, 10))
    return str(path)


def test_a_folder_without_a_checkpoint_is_not_a_run(tmp_path):
    """What a run writes before its first checkpoint takes a new run; trained weights without
    a checkpoint are named (nothing to --resume, and a new run would write over them); a
    numbered folder that ends without a checkpoint is removed."""
    from resdsl.train import folder
    from resdsl.train.common import TrainError

    started = tmp_path / "started"
    (started / "tensorboard").mkdir(parents=True)
    for name in ("run.json", "model.py", "metrics.jsonl", ".run.lock"):
        (started / name).write_text("")
    folder.check_new_run_folder(str(started), None)
    (started / "best.pt").write_text("")
    with pytest.raises(TrainError, match=r"holds `best\.pt` of an earlier run but no checkpoint"):
        folder.check_new_run_folder(str(started), None)
    (started / "checkpoint.pt").write_text("")
    with pytest.raises(TrainError, match="continue it with --resume"):
        folder.check_new_run_folder(str(started), None)

    parent = tmp_path / "runs"
    out, held = folder.new_run_folder("net.res", str(parent))
    for name in ("run.json", "model.py"):
        (Path(out) / name).write_text("{}")
    held.release()
    assert not Path(out).exists()
    out, held = folder.new_run_folder("net.res", str(parent))
    assert out == str(parent / "net-1")
    (Path(out) / "checkpoint.pt").write_text("")
    held.release()
    assert Path(out).is_dir()


def test_resume_names_the_backend_whose_checkpoint_the_folder_holds(tiny, tmp_path):
    (tmp_path / "checkpoint").mkdir()
    status, _, stderr = in_process("train", tiny, "--out", tmp_path, "--resume")
    assert status == 2 and "is a keras one: resume with --backend keras" in stderr, stderr
    (tmp_path / "checkpoint").rmdir()
    status, _, stderr = in_process("train", tiny, "--out", tmp_path, "--resume")
    assert status == 2 and "no torch checkpoint" in stderr, stderr


# --- round two: eval's confusion matrix in text ------------------------------------------------


def _rows(stdout: str) -> list[list[str]]:
    """The body rows of the rich table eval prints: each row's cells."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def test_eval_prints_the_confusion_matrix_it_computes(tiny, tmp_path):
    """The text matrix is --json's matrix (rows true, columns predicted; a zero as a dot)."""
    import torch

    weights = tmp_path / "ten.pt"
    torch.save(_state(tiny), weights)
    status, stdout, stderr = in_process("eval", tiny, "--weights", weights, "--data", "digits")
    assert status == 0, stderr
    status, as_json, stderr = in_process(
        "eval", tiny, "--weights", weights, "--data", "digits", "--json"
    )
    assert status == 0, stderr
    matrix = json.loads(as_json)["matrix"]
    rows = _rows(stdout)
    assert [row[0] for row in rows] == json.loads(as_json)["classes"]
    assert [[int(c) if c != "." else 0 for c in row[1:]] for row in rows] == matrix
    assert "rows: true class, columns: predicted" in stdout


def test_many_classes_print_the_most_frequent_confusions(tiny):
    """Beyond MAX_TEXT_CLASSES the table lists the largest off-diagonal cells, in order."""
    import io

    import numpy as np
    from rich.console import Console

    from resdsl.cli.evaluate import MAX_TEXT_CLASSES, TOP_CONFUSIONS, confusion_table

    classes = MAX_TEXT_CLASSES + 5
    matrix = np.random.default_rng(0).integers(0, 9, (classes, classes))
    names = [f"class{i}" for i in range(classes)]
    out = io.StringIO()
    Console(file=out, width=200).print(confusion_table(matrix, names))
    rows = _rows(out.getvalue())
    assert len(rows) == TOP_CONFUSIONS and f"of {classes} classes" in out.getvalue()
    off = [(int(matrix[t, p]), t, p) for t in range(classes) for p in range(classes) if t != p]
    expected = sorted(off, key=lambda e: (-e[0], e[1], e[2]))[:TOP_CONFUSIONS]
    assert [(int(r[2]), names.index(r[0]), names.index(r[1])) for r in rows] == expected
