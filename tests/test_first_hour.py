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

    from resdsl.weight_files import read_torch_checkpoint

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
