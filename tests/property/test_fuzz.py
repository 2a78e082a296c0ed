"""Fuzzing the front end: sentences of the grammar and byte-level mutations of every spec.

Properties: no input raises; every rejection
is a diagnostic located inside the file it names (I/O, encoding and size errors, E001-E003,
may have no position or the first). The suite runs a short version; `make fuzz` sets
RESDSL_FUZZ=1 for at least 10,000 inputs of each kind, and there each input must take under a
second (hypothesis' deadline: a wall-clock limit, so never in the suite a busy CI machine runs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from resdsl.diagnostics.core import render_json, render_text
from resdsl.driver import analyze_file, analyze_text
from resdsl.language.parser import _LARK_OPTIONS, grammar_text

ROOT = Path(__file__).parents[2]
SPECS = sorted(p.relative_to(ROOT) for p in (ROOT / "specs").rglob("*.res"))
LONG = os.environ.get("RESDSL_FUZZ") == "1"
EXAMPLES = 10_000 if LONG else 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=1) if LONG else None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=not LONG,
)
NO_POSITION = {"E001", "E002", "E003"}


def _sentences():
    """Sentences of grammars/resdsl.lark, tokens separated by spaces (the grammar ignores
    whitespace, which from_lark would otherwise never produce)."""
    spaced = {
        "NETWORK": "network", "EXTENDS": "extends", "STAGE": "stage", "LBRACE": "{",
        "RBRACE": "}", "COLON": ":", "X": "x", "SLASH": "/", "COMMA": ",", "LPAR": "(",
        "RPAR": ")",
    }  # fmt: skip
    words = st.sampled_from(
        ["input", "classes", "stem", "block", "shortcut", "basic", "bottleneck", "cifar",
         "imagenet", "A", "B", "D", "waive", "halve_double", "dilation", "groups",
         "expansion", "stride_on", "on", "off", "layer1", "norm", "batch", "eps", "head"]
    ) | st.from_regex(r"[A-Za-z_][A-Za-z_0-9]{0,8}", fullmatch=True)  # fmt: skip
    numbers = st.integers(-3, 70_000).map(str) | st.sampled_from(
        ["0", "1", "2", "0.5", "1e999", "-1", "1.5", ".5", "1e-5", "99999999999999999999"]
    )
    sizes = st.lists(st.integers(0, 300), min_size=2, max_size=4).map(
        lambda parts: "x".join(map(str, parts))
    )
    explicit = {name: st.just(f" {text} ") for name, text in spaced.items()}
    explicit.update(
        NAME=words.map(lambda w: f" {w} "),
        INT=st.integers(0, 2_000).map(lambda n: f" {n} "),
        NUMBER=numbers.map(lambda n: f" {n} "),
        DIMS=sizes.map(lambda d: f" {d} "),
        STRING=st.sampled_from(['"missing.res"', '""', '"p.res"', '"."']).map(lambda s: f" {s} "),
    )
    # from_lark reads the grammar's rules, which the prebuilt tables do not carry: build it.
    return from_lark(Lark(grammar_text(), **_LARK_OPTIONS), start="start", explicit=explicit)


def _check(result, data_len: int | None = None) -> None:
    if result.ok:
        return
    assert result.diagnostics, "a rejected spec without a diagnostic"
    for d in result.diagnostics:
        if d.span is None:
            assert d.code in NO_POSITION, d
            continue
        text = result.sources.get(d.span.file)
        if text is None:
            assert d.code in NO_POSITION, d
            assert (d.span.line, d.span.column) >= (1, 1)
            continue
        lines = text.split("\n")
        assert 1 <= d.span.line <= len(lines), d
        assert 1 <= d.span.column <= len(lines[d.span.line - 1]) + 1, d
        for note in d.notes:
            note_text = result.sources[note.span.file].split("\n")
            assert 1 <= note.span.line <= len(note_text), note
    render_text(result.diagnostics, result.sources)
    render_json(result.diagnostics)


@pytest.fixture(scope="module")
def folder():
    """A private copy of specs/ to run in, so `extends` resolves and nothing leaks."""
    cwd = os.getcwd()
    path = Path(tempfile.mkdtemp(prefix="resdsl-fuzz-"))
    shutil.copytree(ROOT / "specs", path / "specs")
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(cwd)
        shutil.rmtree(path, ignore_errors=True)


@FUZZ
@given(text=_sentences())
def test_grammar_sentences(folder, text):
    _check(analyze_text(text, file="fuzz.res"))


def _mutate(data: bytes, draw) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate"]))
        at = draw(st.integers(0, len(out)))
        if kind == "flip" and at < len(out):
            out[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from([b"{", b"}", b"(", b")", b":", b"x", b"/", b'"', b"\n",
                                   b"0", b"-", b".", b"#", b"\x00", b"\xff", b"\xe9", b"9" * 40])
            )  # fmt: skip
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 20))]
        elif kind == "duplicate":
            end = min(len(out), at + draw(st.integers(1, 80)))
            out[at:at] = out[at:end]
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


@st.composite
def _mutated_specs(draw):
    path = draw(st.sampled_from(SPECS))
    return path, _mutate((ROOT / path).read_bytes(), draw)


@FUZZ
@given(case=_mutated_specs())
def test_mutated_specs(folder, case):
    path, data = case
    (folder / path.parent / "mutant.res").write_bytes(data)
    _check(analyze_file(str(path.parent / "mutant.res")))


def test_library_specs_pass_the_checker(folder):
    for path in SPECS:
        result = analyze_file(str(path))
        assert result.ok, render_text(result.diagnostics, result.sources)


# --------------------------------------------------------------------------- across backends
# Accepted mutants of the small specs are compiled for both backends and, where small enough to
# run quickly, built, given the same weights and compared: what `check` accepts must compute
# the same function in PyTorch and Keras, not only build in one of them.

SMALL = [p for p in SPECS if p.parts[1] == "cifar" or p.stem in ("resnet18", "preact_resnet18")]
SMALL += [p for p in SPECS if p.stem in ("resnet10t", "seresnet18", "resnetblur18")]
CROSS = settings(
    max_examples=300 if LONG else 8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=not LONG,
)


@st.composite
def _accepted_mutants(draw):
    path = draw(st.sampled_from(SMALL))
    return path, _mutate((ROOT / path).read_bytes(), draw)


@CROSS
@given(case=_accepted_mutants())
def test_accepted_mutants_agree_across_backends(folder, case):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    pytest.importorskip("keras")
    from resdsl.codegen.backends import get_backend
    from resdsl.interop.weights import build_generated, to_keras_images, torch_to_keras

    path, data = case
    (folder / path.parent / "mutant.res").write_bytes(data)
    result = analyze_file(str(path.parent / "mutant.res"))
    if not result.ok:
        return  # rejections are the other tests' business
    network = result.network
    for backend in ("torch", "keras"):
        assert get_backend(backend).unsupported(network) == [], backend
        get_backend(backend).emit(network)
    if network.params > 3_000_000 or network.macs > 300_000_000:
        return  # compiled, not run: large mutants would make the suite slow
    torch_model = build_generated(network, "torch").build_model().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in torch_model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    keras_model = build_generated(network, "keras").build_model()
    torch_to_keras(torch_model, keras_model, network)
    shape = (2, network.input.channels, network.input.height, network.input.width)
    x = torch.randn(*shape, generator=generator)
    with torch.no_grad():
        expected = torch_model(x).numpy()
    got = np.asarray(keras_model(to_keras_images(x), training=False))
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
