"""The block plugin of examples/block-plugin, installed as a user installs it: a spec using its
block kind passes `check`, compiles for both backends, runs in both, and weights port between
them. The plugin is installed with pip into a folder of its own and found through its entry
point, in processes that have that folder on their path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torch_helpers import ruff_problems

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "block-plugin"
RESDSL = [sys.executable, "-m", "resdsl"]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict[str, str]:
    """The environment of a process with the plugin installed (`pip install --target`)."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "source"
    shutil.copytree(EXAMPLE, source)  # pip builds in the tree it is given: not the checkout's
    target = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run(args, env, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=EXAMPLE, **kwargs)


def test_unknown_without_the_plugin():
    """Without the plugin the kind is unknown: a located diagnostic, exit 1."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = run([*RESDSL, "check", "scaled18.res"], env)
    assert done.returncode == 1, done.stderr
    assert "unknown block type `scaled_basic`" in done.stdout + done.stderr


def test_check_reads_the_recipe(plugin, tmp_path):
    done = run([*RESDSL, "check", "scaled18.res"], plugin)
    assert done.returncode == 0, done.stdout + done.stderr
    # A misspelt argument is told from the recipe's own table.
    bad = tmp_path / "bad.res"
    bad.write_text((EXAMPLE / "scaled18.res").read_text().replace("init: 0.1", "inti: 0.1"))
    done = run([*RESDSL, "check", str(bad)], plugin)
    assert done.returncode == 1
    assert "did you mean `init`" in done.stdout + done.stderr


def test_compiles_runs_and_ports_in_both_backends(plugin, tmp_path):
    for backend in ("torch", "keras"):
        out = tmp_path / f"scaled18_{backend}.py"
        done = run([*RESDSL, "compile", "scaled18.res", "--backend", backend, "-o", str(out)],
                   plugin)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        text = out.read_text()
        assert "class LayerScale" in text
        assert "resdsl" not in text.split('"""', 2)[2].split("import")[0]  # imports nothing of ours
        assert not ruff_problems(out)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np, torch
        sys.path.insert(0, {str(ROOT / "tests" / "support")!r})
        from torch_helpers import randomise_norms
        import resdsl
        from resdsl.interop import weights

        network = resdsl.load("scaled18.res")
        torch.manual_seed(0)
        torch_model = weights.build_generated(network, "torch").build_model().eval()
        randomise_norms(torch_model)
        with torch.no_grad():  # LayerScale's factors away from their start
            for name, p in torch_model.named_parameters():
                if name.endswith(".ls.gamma"):
                    p.uniform_(0.5, 1.5)
        keras_model = weights.build_generated(network, "keras").build_model()
        weights.torch_to_keras(torch_model, keras_model, network)
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            expected = torch_model(x).numpy()
        got = np.asarray(keras_model(weights.to_keras_images(x), training=False))
        back = weights.build_generated(network, "torch").build_model().eval()
        weights.keras_to_torch(keras_model, back, network)
        with torch.no_grad():
            again = back(x).numpy()
        gammas = [k for k in torch_model.state_dict() if k.endswith("ls.gamma")]
        print(json.dumps({{
            "to_keras": float(np.abs(expected - got).max()),
            "back": float(np.abs(expected - again).max()),
            "scale": float(np.abs(expected).max()),
            "gammas": len(gammas),
            "params": sum(p.numel() for p in torch_model.parameters()),
            "ir_params": network.params,
        }}))
        """
    )
    done = run([sys.executable, "-c", script], plugin)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["gammas"] == 8  # one per block
    assert result["params"] == result["ir_params"]
    assert result["to_keras"] <= 1e-5 * max(1.0, result["scale"]), result
    assert result["back"] == 0.0, result


def test_summary_reads_the_layer(plugin):
    done = run([*RESDSL, "summary", "scaled18.res", "--layers"], plugin)
    assert done.returncode == 0, done.stderr
    assert "layer scale 64" in done.stdout and "layer scale 512" in done.stdout


def test_broken_plugin_is_one_line(tmp_path):
    """A plugin whose entry point fails is named in one line, exit 2, never a traceback."""
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[resdsl.blocks]\nbroken = broken_plugin:register\n")
    (site / "broken_plugin.py").write_text("def register():\n    raise RuntimeError('oops')\n")
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="2")
    done = run([*RESDSL, "check", "scaled18.res"], env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: block plugin `broken` (broken_plugin:register) failed to load: oops"
    )
