"""The built wheel: only `resdsl/` at the top level, backends and grammar inside it, and the
installed command works from a fresh virtual environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The wheel, and what building it printed (`-v`: setuptools' own output too). Built from
    a copy of the tracked tree: setuptools builds in the source's `build/` and `*.egg-info`, so
    two workers building from the checkout at once collide (and a failed build leaves files
    behind for the next)."""
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    source = tmp_path_factory.mktemp("source") / "resdsl"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(source)],
        capture_output=True, text=True, env={**os.environ, "TMPDIR": str(build)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (wheel,) = out.glob("resdsl-*.whl")
    return wheel, run.stdout + run.stderr


@pytest.fixture(scope="module")
def wheel(built) -> Path:
    return built[0]


def test_the_wheel_declares_its_package_data(built):
    """Issue 30: the templates' folders were data setuptools found but was not told of, and
    it printed a "Package would be ignored" block for each."""
    log = built[1]
    assert "would be ignored" not in log, log[log.find("would be ignored") - 500 :][:3000]


def test_wheel_layout(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"resdsl"}, tops
    assert all(t == "resdsl" or t.startswith("resdsl-") for t in tops), tops
    assert "resdsl/grammars/resdsl.lark" in names
    assert "resdsl/backends/torch/__init__.py" in names
    assert "resdsl/backends/keras/__init__.py" in names
    assert "resdsl/charts/style.py" in names  # issue 33's package, listed in pyproject.toml
    assert any(n.startswith("resdsl/backends/torch/templates/") for n in names)
    for backend in ("torch", "keras"):  # the precompiled templates and their stamp
        assert f"resdsl/backends/{backend}/templates/compiled/STAMP" in names
        assert any(
            n.startswith(f"resdsl/backends/{backend}/templates/compiled/tmpl_") for n in names
        )
    assert not any(n.startswith(("backends/", "grammars/", "tests/", "specs/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "resdsl = resdsl.cli.main:main" in text
    assert "torch = resdsl.backends.torch:TorchBackend" in text


def test_installed_wheel_checks_specs(wheel, tmp_path):
    """A fresh venv that sees only the wheel and its three dependencies, taken from this
    environment (a .pth file), never the source tree."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    zipfile.ZipFile(wheel).extractall(site)
    # Dependencies: the folders of lark, pydantic, jinja2 and click in this environment.
    deps = set()
    for module in ("lark", "pydantic", "pydantic_core", "jinja2", "markupsafe", "click",
                   "typing_extensions", "annotated_types", "typing_inspection"):  # fmt: skip
        spec = __import__(module)
        deps.add(str(Path(spec.__file__).parent.parent))
    (site / "deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    launcher = env_dir / "bin" / "resdsl"
    launcher.write_text(f"#!{python}\nfrom resdsl.cli.main import main\nmain()\n")
    launcher.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run(
        [str(launcher), "check", str(ROOT / "specs")],
        capture_output=True, text=True, cwd=work, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "all valid" in run.stderr
    where = subprocess.run(
        [str(python), "-c",
         "import resdsl, resdsl.grammars, resdsl.backends.torch as t; "
         "print(resdsl.__file__); print(t.__file__)"],
        capture_output=True, text=True, cwd=work, env=env,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert line.startswith(str(site)), line
    assert (
        subprocess.run(
            [str(python), "-c", "import backends"], capture_output=True, cwd=work, env=env
        ).returncode
        != 0
    )
