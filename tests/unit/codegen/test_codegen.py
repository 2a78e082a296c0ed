"""The generated text, the same checks for every backend: golden files (a handful per backend,
one per kind of generated module), ruff, byte-determinism, and imports of only the backend's
framework and the standard library.

`RESDSL_UPDATE_GOLDEN=1` (`make golden`) rewrites the golden files instead of comparing.
"""

from __future__ import annotations

import ast
import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from spec_sets import ALL_SPECS, FEATURE_SPECS, ROOT, SPECS, TIMM_SPECS, spec_id

import resdsl

BACKENDS = ["torch", "keras"]
EVERY_SPEC = ALL_SPECS + FEATURE_SPECS + TIMM_SPECS
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RESDSL_UPDATE_GOLDEN") == "1"

# One golden file per kind of generated module; every spec is compiled, checked and built by
# the other tests.
GOLDEN_SPECS = {
    # Post- and pre-activation, the deep stem with pool-project shortcuts, grouped
    # convolutions, the CIFAR nets' option A, keras' V2 nets (projections and subsampling in
    # one block class), and the feature specs.
    "torch": [
        *(
            SPECS / name
            for name in (
                "resnet18.res",
                "resnet50.res",
                "resnet50d.res",
                "preact_resnet18.res",
                "resnext50_32x4d.res",
                "cifar/resnet20.res",
                "keras/resnet50v2.res",
            )
        ),
        *FEATURE_SPECS,
    ],
    "keras": [
        SPECS / name
        for name in (
            "resnet18.res",
            "resnet50.res",
            "resnet50d.res",
            "resnext50_32x4d.res",
            "preact_resnet18.res",
            "cifar/resnet20.res",
            "keras/resnet50.res",
            "keras/resnet50v2.res",
        )
    ]
    + [path for path in FEATURE_SPECS if path.stem == "sknet_small"],
}

# What generated code may import: the backend's framework and a few standard modules.
ALLOWED_IMPORTS = {
    "torch": {"__future__", "collections", "torch"},
    "keras": {"__future__", "keras", "sys"},
}


def _compile(backend: str, path: Path) -> str:
    """A fresh compile (no cache: the determinism tests compare two)."""
    return resdsl.compile(str(path), backend=backend)


def _by_backend_and_spec(specs: dict[str, list[Path]]) -> list:
    return [
        pytest.param(backend, path, id=f"{backend}-{spec_id(path)}")
        for backend in BACKENDS
        for path in specs[backend]
    ]


EVERY_BY_BACKEND = _by_backend_and_spec(dict.fromkeys(BACKENDS, EVERY_SPEC))


# --------------------------------------------------------------------------- goldens


def _golden(backend: str, path: Path) -> Path:
    if path.is_relative_to(SPECS):
        return GOLDEN / backend / path.relative_to(SPECS).with_suffix(".py")
    return GOLDEN / backend / "torch_specs" / f"{path.stem}.py"


@pytest.mark.parametrize("backend", BACKENDS)
def test_golden_files_are_exactly_the_chosen_ones(backend):
    if UPDATE:
        pytest.skip("regenerating: the files are being written")
    expected = {_golden(backend, p) for p in GOLDEN_SPECS[backend]}
    assert set((GOLDEN / backend).rglob("*.py")) == expected


@pytest.mark.parametrize(("backend", "path"), _by_backend_and_spec(GOLDEN_SPECS))
def test_golden(backend, path):
    golden = _golden(backend, path)
    code = _compile(backend, path)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(code, newline="\n")
        return
    assert golden.exists(), f"no golden file {golden}; run with RESDSL_UPDATE_GOLDEN=1"
    expected = golden.read_text()
    if code != expected:
        diff = difflib.unified_diff(
            expected.splitlines(True), code.splitlines(True), str(golden), "generated"
        )
        pytest.fail(
            "generated code differs from the golden file "
            "(RESDSL_UPDATE_GOLDEN=1 regenerates):\n" + "".join(diff)
        )


# --------------------------------------------------------------------------- ruff


@pytest.mark.parametrize("backend", BACKENDS)
def test_ruff_check_and_format(backend, tmp_path):
    """`ruff check` and `ruff format --check` with the project's config: one run each over
    every spec's generated module."""
    for path in EVERY_SPEC:
        (tmp_path / f"{spec_id(path).replace('/', '__')}.py").write_text(_compile(backend, path))
    files = sorted(str(p) for p in tmp_path.glob("*.py"))
    assert len(files) == len(EVERY_SPEC)
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(ROOT / "pyproject.toml")]
    check = subprocess.run(
        [*ruff, "check", *config, "--no-cache", *files], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [*ruff, "format", *config, "--check", "--diff", "--no-cache", *files],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("backend", BACKENDS)
def test_byte_identical_across_hash_seeds(backend):
    """Every spec compiled in processes of different hash seeds gives the same bytes, and the
    same as this process."""
    script = (
        "import sys, resdsl\n"
        "for p in sys.argv[2:]:\n"
        "    sys.stdout.buffer.write(resdsl.compile(p, backend=sys.argv[1]).encode())\n"
    )
    paths = [str(p) for p in EVERY_SPEC]
    outputs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", script, backend, *paths], cwd=ROOT, env=env, capture_output=True
        )
        assert run.returncode == 0, run.stderr.decode()
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0] == "".join(_compile(backend, p) for p in EVERY_SPEC).encode()
    assert b"\r" not in outputs[0]


@pytest.mark.parametrize(("backend", "path"), EVERY_BY_BACKEND)
def test_generated_code_names_no_folder_of_this_machine(backend, path):
    """The same bytes wherever the spec lies: the checkout's path appears nowhere. (Determinism
    across processes is test_byte_identical_across_hash_seeds'; compiling twice in one process
    would compare a cached result with itself.)"""
    assert str(ROOT) not in _compile(backend, path)


# --------------------------------------------------------------------------- imports


def _imports(code: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize(("backend", "path"), EVERY_BY_BACKEND)
def test_imports_only_its_framework_and_stdlib(backend, path):
    code = _compile(backend, path)
    imported = _imports(code)
    assert backend in imported
    assert imported <= ALLOWED_IMPORTS[backend]
    # `sys` only for the recursion limit very deep Keras models need.
    assert ("sys" in imported) == ("sys.setrecursionlimit" in code)
