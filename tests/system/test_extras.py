"""Issue 30, "Installing": every command whose dependency is not installed says so in one line
naming the extra that installs it, and exits 2, before it makes a folder or writes a file.

Each case runs `resdsl` in a process of its own where the modules named cannot be imported (a
finder first on sys.meta_path refuses them, as Python does a module that is not installed), so
that what the core install meets is what runs here, with every other module as installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import ENV, tiny_spec

LAUNCHER = """\
import sys

BLOCKED = frozenset(sys.argv[1].split(","))


class NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled)
sys.argv[0:2] = ["resdsl"]
from resdsl.cli.main import main

main()
"""

TO_KERAS = "SPEC --from torch W --to keras OUT.weights.h5"
EVAL = "eval SPEC --weights W --data digits"
# (modules not installed, the command line, the extra the error names). OUT and every file in
# the command line but the inputs must not exist afterwards.
CASES = {
    "train without numpy": ("numpy", "train SPEC --data digits --out OUT", "train"),
    "train without torch": ("torch", "train SPEC --data digits", "train"),
    "train without scikit-learn": ("sklearn", "train SPEC --data digits", "train"),
    "train without pillow": ("PIL", "train SPEC --data digits --out OUT", "train"),
    "train without matplotlib": ("matplotlib", "train SPEC --data digits --out OUT", "train"),
    "train keras without keras": ("keras", "train SPEC -b keras --out OUT", "keras"),
    "train keras without tensorflow": ("tensorflow", "train SPEC -b keras --out OUT", "keras"),
    "train keras --init without torch": ("torch", "train SPEC -b keras --init W", "torch"),
    "compare without torch": ("torch", "compare SPEC --out OUT", "train"),
    "eval without torch": ("torch", "eval SPEC --weights W --data digits", "train"),
    "eval without numpy": ("numpy", "eval SPEC --weights W --data digits", "train"),
    "predict without pillow": ("PIL", "predict SPEC IMAGE --weights W", "train"),
    "eval --confusion without matplotlib": ("matplotlib", f"{EVAL} --confusion OUT.png", "train"),
    "plot without matplotlib": ("matplotlib", "plot IMAGE -o OUT.png", "plot"),
    "export without onnx": ("onnx", "export SPEC -o OUT", "export"),
    "export without torch": ("torch", "export SPEC -o OUT", "export"),
    "import torchvision without it": ("torchvision", "import torchvision:resnet18", "import"),
    "import timm without it": ("timm", "import timm:resnet18 -o OUT", "import"),
    "import a .pt without torch": ("torch", "import W -o OUT", "import"),
    "import safetensors without it": ("safetensors", "import W.safetensors -o OUT", "import"),
    "port-weights without keras": ("keras", f"port-weights {TO_KERAS}", "keras"),
    "port-weights without torch": ("torch", f"port-weights {TO_KERAS}", "torch"),
    "summary --signal without torch": ("torch", "summary SPEC --signal", "torch"),
    "summary --png without matplotlib": ("matplotlib", "summary SPEC --signal --png OUT", "plot"),
    "lsp without pygls": ("pygls", "lsp --stdio", "lsp"),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """A spec, its weights (a state dict, and the same names in a .safetensors file: only the
    header is read) and an image."""
    import torch
    from PIL import Image

    import resdsl

    folder = tmp_path_factory.mktemp("inputs")
    spec = folder / "net.res"
    spec.write_text(tiny_spec("1x16x16", 10))
    weights = folder / "w.pt"
    torch.save(resdsl.build(str(spec), backend="torch").state_dict(), weights)
    (folder / "w.pt.safetensors").write_bytes(b"")
    Image.new("L", (8, 8)).save(folder / "a.png")
    (folder / "launcher.py").write_text(LAUNCHER)
    return {"SPEC": str(spec), "W": str(weights), "IMAGE": str(folder / "a.png")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_missing_dependency_is_one_line_naming_the_extra(inputs, tmp_path, case):
    blocked, line, extra = CASES[case]
    out = tmp_path / "out"
    words = {**inputs, "OUT": str(out)}
    args = [next((v + w[len(k) :] for k, v in words.items() if w.startswith(k)), w)
            for w in line.split()]  # fmt: skip
    launcher = Path(inputs["SPEC"]).parent / "launcher.py"
    env = {**os.environ, **ENV, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, str(launcher), blocked, *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: `resdsl ") and "(not installed)" in lines[0], lines
    assert lines[0].endswith(f"pip install 'resdsl[{extra}]'"), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "it made files before it refused"
