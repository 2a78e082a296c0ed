"""`resdsl import`: weights to a spec that rebuilds the same network.

Every spec of the library goes through its own state dict's names and shapes and must come back
as the same network; torchvision's and timm's models (read from the libraries at run time)
import to the library's specs; real files (PyTorch, DDP-prefixed, safetensors, Keras) import and
load strictly with the same outputs; a timm checkpoint reaches Keras through `import` and
`port-weights` with timm's logits; bad inputs get clear errors and never run code.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import byobnet_family
import pytest
from spec_sets import ALL_SPECS, CONFORMANCE, ROOT, TIMM_SPECS, TORCHVISION_BUILDERS, spec_id
from train_helpers import in_process

import resdsl
from resdsl.driver import analyze_text
from resdsl.interop.import_sources import ImportFailed, Source, read
from resdsl.interop.importer import infer
from resdsl.interop.weights import state_dict_shapes

PYTHON = sys.executable
# Anti-aliasing holds no weights: from a state dict alone these import without it (and say so).
AA = {"resnetaa", "resnetblur", "seresnetaa", "seresnextaa"}
# Nor does ResNeSt's average pool: from a state dict alone it strides after split attention.
AVD_FIRST = {"resnest50d_4s2x40d", "resnest50d_1s4x24d"}


def _shapes(network) -> dict:
    return {k: v for k, v in state_dict_shapes(network).items() if "num_batches" not in k}


def _input(network) -> tuple[int, int, int]:
    return network.input.channels, network.input.height, network.input.width


def _same_network(a, b, *, macs: bool = True, names: bool = True) -> None:
    if names:
        assert _shapes(a) == _shapes(b)
    else:  # a Keras file keeps no stage names: keras.applications' are used
        assert list(_shapes(a).values()) == list(_shapes(b).values())
    assert a.params == b.params and a.total_blocks == b.total_blocks
    assert [(s.blocks, s.out_shape) for s in a.stages] == [
        (s.blocks, s.out_shape) for s in b.stages
    ]
    assert [blk.stride for *_, blk in a.blocks()] == [blk.stride for *_, blk in b.blocks()]
    if macs:
        assert a.macs == b.macs


@pytest.mark.parametrize("path", ALL_SPECS + TIMM_SPECS, ids=spec_id)
def test_every_library_spec_comes_back_from_its_tensors(path):
    from resdsl.interop.importer import Choices

    network = resdsl.load(path)
    plain = all(blk.shortcut.kind == "none" for *_, blk in network.blocks())
    facts = {}
    if path.parent.name == "byobnet":  # the stem's pool has no weights: a module tree says it
        facts = {"stem_pool": "max" if any(x.op == "pool" for x in network.stem.layers) else ""}
    imported = infer(
        Source(path.name, _shapes(network), facts=facts),
        network.name,
        _input(network),
        Choices(plain=plain),
    )
    again = analyze_text(imported.text, "imported.res")
    assert again.ok, again.diagnostics
    # Weights cannot tell a plain block from a residual one without a projection: --plain says.
    # (RegNetZ's transition blocks have none in a residual network: their tensors say so.)
    assert [b.shortcut.kind == "none" for *_, b in again.network.blocks()] == [
        b.shortcut.kind == "none" for *_, b in network.blocks()
    ]
    anti_aliased = any(path.stem.startswith(prefix) for prefix in AA)
    _same_network(again.network, network, macs=not anti_aliased and path.stem not in AVD_FIRST)
    if anti_aliased:
        assert "no anti-aliasing (it has no weights)" in imported.text.replace("\n# ", " ")
    if path.parent.name == "resnest":
        said = "`avd: on`, `avd_first: off` in ResNeSt's blocks"
        assert any(words.startswith(said) for words in imported.assumed), imported.assumed
    assert imported.text.startswith(f"# Imported by resdsl {resdsl.__version__} from ")


@pytest.mark.parametrize("fuse", ["add", "scale"])
def test_global_context_comes_back_from_its_tensors(fuse):
    """Global context under resnet.py's names (`se.conv_attn`, `se.mlp_add.fc1` or
    `se.mlp_scale.fc1`): its fusion from the MLP's name, its width by timm's rule."""
    text = (ROOT / "tests/parity/keras_specs/gc_small.res").read_text()
    network = analyze_text(text.replace("gc(fuse: scale)", f"gc(fuse: {fuse})"), "gc.res").network
    imported = infer(Source("gc.pt", _shapes(network)), network.name, _input(network))
    again = analyze_text(imported.text, "imported.res")
    assert again.ok, again.diagnostics
    _same_network(again.network, network)
    expected = "attention gc(fuse: scale)\n" if fuse == "scale" else "attention gc\n"
    assert expected in imported.text, imported.text


@pytest.mark.parametrize("name", TORCHVISION_BUILDERS)
def test_torchvision_models_import_to_the_library_specs(name):
    pytest.importorskip("torchvision")
    expected = resdsl.load(ROOT / "specs" / f"{name}.res")
    imported = infer(read(f"torchvision:{name}"), name)
    _same_network(analyze_text(imported.text, "i.res").network, expected)


@pytest.mark.parametrize("name", byobnet_family.covered())
def test_timm_byobnet_resnets_import_to_the_library_specs(name):
    """timm's byobnet layout (`naming byobnet`): the stem, edge blocks, bottlenecks and their
    second 3x3, group sizes, attention after the 3x3, the 1x1 before the pool from the names
    and shapes; the stem's pool, the strides and the activation from the module tree."""
    expected = resdsl.load(ROOT / "specs" / "byobnet" / f"{name}.res")
    imported = infer(read(f"timm:{name}"), name)
    network = analyze_text(imported.text, "i.res").network
    _same_network(network, expected)
    assert network.conventions.activation == expected.conventions.activation
    assert imported.assumed == []


@pytest.mark.parametrize("name", ["legacy_seresnet18", "legacy_seresnet50", "legacy_senet154"])
def test_timm_legacy_senets_import_to_the_library_specs(name):
    """timm's legacy SENet layout (`naming senet`), read as resnet.py's where the tables differ:
    the library's network, its convolutions striding where timm's do (the ungrouped
    bottlenecks' first 1x1, from the module tree) and the basic blocks' activation before
    squeeze-excitation."""
    expected = resdsl.load(ROOT / "specs" / "legacy_senet" / f"{name}.res")
    network = analyze_text(infer(read(f"timm:{name}"), name).text, "i.res").network
    _same_network(network, expected)
    strides = [[c.stride for c in b.convs] for *_, b in network.blocks()]
    assert strides == [[c.stride for c in b.convs] for *_, b in expected.blocks()]
    assert [b.branch[-2].op for *_, b in network.blocks()] == [
        b.branch[-2].op for *_, b in expected.blocks()
    ]


def test_a_byobnet_checkpoint_imports_and_gives_timms_outputs(tmp_path):
    """A state dict file of timm's gcresnet33ts: `resdsl import` writes a spec (what the
    weights cannot say assumed in its header) whose model loads it strictly and computes what
    timm's does."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from torch_helpers import randomise_norms

    from resdsl.interop.weights import build_generated

    torch.manual_seed(0)
    reference = timm.create_model("gcresnet33ts", pretrained=False).eval()
    randomise_norms(reference)
    checkpoint = tmp_path / "gcresnet33ts.pth"
    torch.save(reference.state_dict(), checkpoint)
    status, text, stderr = in_process("import", checkpoint)
    assert status == 0, stderr
    assert "# Assumed, as the weights do not say: a stem without a pool" in text
    assert "naming     byobnet" in text and "attention  gc(after: 3x3)" in text
    model = build_generated(resdsl.load(text), "torch").build_model().eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert (actual - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_byobnet_tensors_no_block_describes_name_the_tensor():
    shapes = _shapes(resdsl.load(ROOT / "specs" / "byobnet" / "resnet61q.res"))
    shapes["stages.1.0.conv2b_kxk.conv.weight"] = (128, 8, 3, 3)
    with pytest.raises(ImportFailed, match=r"`stages\.1\.0\.conv2b_kxk\.conv\.weight`"):
        infer(Source("x.pt", shapes), "x")
    del shapes["stages.0.0.conv2_1x1.conv.weight"]
    with pytest.raises(ImportFailed, match=re.escape("neither `conv2_1x1.conv.weight` (an edge")):
        infer(Source("x.pt", shapes), "x")


def _timm_names() -> list[str]:
    timm = pytest.importorskip("timm")
    return [n for n in timm.list_models(module="resnet") if not n.endswith("_pruned")]


def test_the_timm_registry_is_what_the_library_covers():
    assert sorted(_timm_names()) == sorted(p.stem for p in TIMM_SPECS)


@pytest.mark.parametrize("path", TIMM_SPECS, ids=lambda p: p.stem)
def test_timm_models_import_to_the_library_specs(path):
    """With the module tree, anti-aliasing, strides and the input size come from timm."""
    pytest.importorskip("timm")
    expected = resdsl.load(path)
    imported = infer(read(f"timm:{path.stem}"), path.stem, _input(expected))
    _same_network(analyze_text(imported.text, "i.res").network, expected)


def test_torchvision_dilation_comes_from_the_module_tree():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from resdsl.interop.import_sources import _module_facts

    with torch.device("meta"):
        model = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if "num_batches" not in k}
    source = Source("dilated", shapes, facts=_module_facts(model))
    network = analyze_text(infer(source, "dilated").text, "d.res").network
    expected = resdsl.load(ROOT / "tests/support/torch_specs/resnet50_dilated.res")
    _same_network(network, expected)
    assert [s.dilation for s in network.stages] == [1, 1, 2, 4]


# --------------------------------------------------------------------------- files


def _model(path):
    torch = pytest.importorskip("torch")
    from resdsl.interop.weights import build_generated

    network = resdsl.load(path)
    model = build_generated(network, "torch").build_model().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return network, model


@pytest.mark.parametrize("wrap", ["plain", "ddp", "checkpoint", "safetensors"])
def test_a_saved_state_dict_imports_and_loads_strictly(tmp_path, wrap):
    torch = pytest.importorskip("torch")
    from resdsl.interop.weights import build_generated

    network, model = _model(ROOT / "specs/timm/seresnet18.res")
    state = model.state_dict()
    file = tmp_path / ("r.safetensors" if wrap == "safetensors" else "r.pt")
    if wrap == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    elif wrap == "ddp":
        torch.save({f"module.{k}": v for k, v in state.items()}, file)
    elif wrap == "checkpoint":
        torch.save({"state_dict": state, "epoch": 3}, file)
    else:
        torch.save(state, file)
    run = subprocess.run(
        [PYTHON, "-m", "resdsl", "import", str(file), "--name", "r", "--input", "3x224x224"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    imported = resdsl.load(run.stdout)
    _same_network(imported, network)
    rebuilt = build_generated(imported, "torch").build_model().eval()
    loaded = torch.load(file, weights_only=True) if wrap != "safetensors" else None
    rebuilt.load_state_dict(state if loaded is None or wrap != "plain" else loaded, strict=True)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize(
    "spec",
    [
        "specs/keras/resnet50.res",
        "specs/keras/resnet50v2.res",
        pytest.param("specs/keras/resnet101.res", marks=CONFORMANCE),
        pytest.param("specs/keras/resnet152.res", marks=CONFORMANCE),
        pytest.param("specs/keras/resnet101v2.res", marks=CONFORMANCE),
        pytest.param("specs/keras/resnet152v2.res", marks=CONFORMANCE),
        "specs/cifar/resnet20.res",
    ],
)
def test_keras_weights_files_import(tmp_path, spec):
    pytest.importorskip("keras")
    from resdsl.interop.weights import build_generated

    network = resdsl.load(ROOT / spec)
    model = build_generated(network, "keras").build_model()
    model.save_weights(str(tmp_path / "k.weights.h5"))
    model.save(str(tmp_path / "k.keras"))
    for file in ("k.weights.h5", "k.keras"):
        imported = infer(read(str(tmp_path / file)), network.name, _input(network))
        again = analyze_text(imported.text, "i.res").network
        _same_network(again, network, names=network.stages[0].name == "conv2")


# A timm ResNet-50 through import, port-weights and Keras: `make conformance`; each step has its
# quick test in `make test` (the library's imports, test_keras_weights_files_import, and
# tests/property/test_weights_files.py's command lines).
@pytest.mark.conformance
def test_timm_checkpoint_to_keras_end_to_end(tmp_path):
    """As a user would: a timm state dict file, `resdsl import`, `resdsl port-weights`, and
    the Keras model's logits are timm's."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    np = pytest.importorskip("numpy")
    pytest.importorskip("keras")
    from resdsl.interop.weights import build_generated, to_keras_images

    model = timm.create_model("resnet26d", pretrained=False).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(
                    torch.randn(module.num_features, generator=generator) * 0.1
                )
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    checkpoint = tmp_path / "resnet26d.pth"
    torch.save(model.state_dict(), checkpoint)
    spec = tmp_path / "resnet26d.res"
    commands = [
        ["import", str(checkpoint), "-o", str(spec)],
        ["port-weights", str(spec), "--from", "torch", str(checkpoint), "--to", "keras",
         str(tmp_path / "r.weights.h5")],
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for command in commands:
        run = subprocess.run(
            [PYTHON, "-m", "resdsl", *command], capture_output=True, text=True, env=env
        )
        assert run.returncode == 0, run.stderr
    keras_model = build_generated(resdsl.load(spec), "keras").build_model(input_shape=(67, 51, 3))
    keras_model.load_weights(str(tmp_path / "r.weights.h5"))
    x = torch.randn(2, 3, 67, 51, generator=generator)
    with torch.no_grad():
        expected = model(x).numpy()
    got = np.asarray(keras_model(to_keras_images(x), training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


# --------------------------------------------------------------------------- SKNet

SKNETS = ("skresnet18", "skresnet34", "skresnet50", "skresnet50d", "skresnext50_32x4d")


def _randomise_norms(model, seed: int = 0) -> None:
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)


@pytest.mark.parametrize("name", SKNETS)
def test_timm_sknet_checkpoints_import_and_load_strictly(tmp_path, name):
    """A timm SKNet's state dict file imports (`sk_basic` or `sk_bottleneck`: paths, split,
    groups and the attention's rule from the shapes) to a spec with timm's parameters and
    state-dict layout, the library's network, whose model loads timm's state dict strictly;
    skresnet18's gives timm's outputs."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from resdsl.interop.weights import build_generated

    reference = timm.create_model(name, pretrained=False).eval()
    state = reference.state_dict()
    checkpoint = tmp_path / f"{name}.pth"
    torch.save(state, checkpoint)
    status, text, stderr = in_process("import", checkpoint)
    assert status == 0, stderr
    imported = resdsl.load(text)
    expected = {k: tuple(v.shape) for k, v in state.items() if "num_batches" not in k}
    assert list(_shapes(imported).items()) == list(expected.items())
    assert imported.params == sum(p.numel() for p in reference.parameters())
    _same_network(imported, resdsl.load(ROOT / "specs" / "sknet" / f"{name}.res"))
    generated = build_generated(imported, "torch")
    if name != "skresnet18":  # keys and shapes only: no weights to make
        with torch.device("meta"):
            model = generated.build_model()
        model.load_state_dict(state, strict=True, assign=True)
        return
    model = generated.build_model().eval()
    _randomise_norms(reference)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        expected_out = reference(x)
        torch.testing.assert_close(model(x), expected_out, rtol=1e-5, atol=1e-5)


def test_timm_sknet_dilation_and_split_come_from_the_module_tree():
    """A dilated SKNet (output_stride 8): the module tree says each stage's dilation (a
    ConvNormAct's, a selective kernel's first path's) and whether the paths split their input,
    which the weights leave open (a split in g groups has the shapes of the whole input in 2g):
    the import assumes nothing of it and computes timm's outputs."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from resdsl.interop.import_sources import _module_facts
    from resdsl.interop.weights import build_generated

    reference = timm.create_model("skresnet18", output_stride=8).eval()
    state = reference.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items() if "num_batches" not in k}
    imported = infer(Source("dilated", shapes, facts=_module_facts(reference)), "dilated")
    network = analyze_text(imported.text, "d.res").network
    assert [s.dilation for s in network.stages] == [1, 1, 2, 4]
    model = build_generated(network, "torch").build_model().eval()
    _randomise_norms(reference, seed=1)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)
    # From a file, a bottleneck's choice between the two is assumed and said; timm's module
    # tree settles it.
    grouped = resdsl.load(ROOT / "specs/sknet/skresnext50_32x4d.res")
    said = infer(Source("k.pt", _shapes(grouped)), "k").text.replace("\n# ", " ")
    assert "`split: off`, `groups: 32` (`split: on, groups: 16` has the same weights)" in said
    told = infer(read("timm:skresnext50_32x4d"), "k").text
    assert "split: off" in told and "has the same weights" not in told


# --------------------------------------------------------------------------- ResNeSt

RESNESTS = (
    "resnest14d", "resnest26d", "resnest50d", "resnest50d_1s4x24d", "resnest50d_4s2x40d",
    "resnest101e", "resnest200e", "resnest269e",
)  # fmt: skip


def test_the_timm_resnest_registry_is_what_the_library_covers():
    timm = pytest.importorskip("timm")
    assert sorted(timm.list_models(module="resnest")) == sorted(RESNESTS)
    assert sorted(p.stem for p in (ROOT / "specs/resnest").glob("*.res")) == sorted(RESNESTS)


@pytest.mark.parametrize("name", RESNESTS)
def test_timm_resnest_checkpoints_import_and_load_strictly(tmp_path, name):
    """A checkpoint of timm's ResNeSt state dict imports (`resnest`: radix, groups, group
    width and the attention's rule from the shapes; the average pool after split attention
    assumed, as no weights say where it is) to a spec with timm's parameters and state-dict
    layout, whose model loads timm's state dict strictly. Built on the meta device, saved as
    tensors of timm's shapes over one element's storage: no weights to make; resnest14d's
    model, built with weights, gives timm's outputs."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from resdsl.interop.weights import build_generated

    with torch.device("meta"):
        reference = timm.create_model(name, pretrained=False)
    state = reference.state_dict()
    checkpoint = tmp_path / f"{name}.pth"
    torch.save(
        {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in state.items()}, checkpoint
    )
    status, text, stderr = in_process("import", checkpoint)
    assert status == 0, stderr
    assert "`avd: on`, `avd_first: off` in ResNeSt's blocks" in text.replace("\n# ", " ")
    imported = resdsl.load(text)
    expected = {k: tuple(v.shape) for k, v in state.items() if "num_batches" not in k}
    assert list(_shapes(imported).items()) == list(expected.items())
    assert imported.params == sum(p.numel() for p in reference.parameters())
    library = resdsl.load(ROOT / "specs" / "resnest" / f"{name}.res")
    _same_network(imported, library, macs=name not in AVD_FIRST)
    generated = build_generated(imported, "torch")
    with torch.device("meta"):
        model = generated.build_model()
    model.load_state_dict(state, strict=True, assign=True)
    if name != "resnest14d":
        return
    reference = timm.create_model(name, pretrained=False).eval()
    model = generated.build_model().eval()
    _randomise_norms(reference, seed=2)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_timm_resnest_avd_comes_from_the_module_tree():
    """Where the average pool strides has no weights: timm's module tree says (its blocks'
    `avd_first` and `avd_last`), and the import assumes nothing of it."""
    pytest.importorskip("timm")
    for name, words in (("resnest50d_4s2x40d", "avd_first: on"), ("resnest50d", None)):
        imported = infer(read(f"timm:{name}"), name)
        assert not imported.assumed, imported.assumed
        if words:
            assert words in imported.text
        network = analyze_text(imported.text, "i.res").network
        _same_network(network, resdsl.load(ROOT / "specs" / "resnest" / f"{name}.res"))


def test_resnest_tensors_no_block_describes_name_the_tensor(tmp_path):
    """A ResNeSt checkpoint whose split attention's 3x3 does not read the share its groups and
    paths give, or whose attention widths no reduction and divisor give, is refused in one
    line naming the tensor (status 1), not a traceback."""
    torch = pytest.importorskip("torch")
    network = resdsl.load(ROOT / "specs/resnest/resnest14d.res")
    conv = "layer2.0.conv2.conv.weight"
    shapes = _shapes(network) | {conv: (256, 32, 3, 3)}  # 2 paths in 1 group read 64 each
    checkpoint = tmp_path / "odd.pt"
    torch.save({k: torch.zeros(v) for k, v in shapes.items()}, checkpoint)
    status, _, stderr = in_process("import", checkpoint)
    assert status == 1, stderr
    assert stderr.startswith(f"error: cannot import `{checkpoint}`: `{conv}` (256, 32, 3, 3): ")
    assert "read 64 of its 128 channels per group, not 32" in stderr, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    fc1 = "layer3.0.conv2.fc1.weight"
    odd = _shapes(network) | {fc1: (136, 256, 1, 1)}
    with pytest.raises(ImportFailed, match=re.escape(f"`{fc1}`: split attention widths")):
        infer(Source("odd", odd), "odd")


# --------------------------------------------------------------------------- bad inputs


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _import(*args: str, cwd=None):
    return subprocess.run(
        [PYTHON, "-m", "resdsl", "import", *args], capture_output=True, text=True, cwd=cwd
    )


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_unreadable_files_exit_2_with_one_line_naming_them(tmp_path):
    """Bad input the user must fix (docs/commands.md, exit status): status 2 and one line that
    names the file and says what it is; nothing in the file runs, and none of PyTorch's paragraphs
    (weights_only=False, "file an issue") reach the user."""
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    truncated = tmp_path / "truncated.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, truncated)
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    noise = random.Random(0).randbytes(4096)  # fixed: starts with no known signature
    files = {
        "empty.pt": (b"", "the file is empty"),
        "noise.pt": (noise, "a file of another kind"),
        "pickle.pt": (b"\x80" + noise, "torch.load(weights_only=True) cannot read"),
        "evil.pt": (pickle.dumps({"conv1.weight": _Evil(marker)}), "cannot read it"),
        "evil2.pt": (pickle.dumps(_Evil(marker), protocol=2), "a pickled `posix.system`"),
        "truncated.pt": (truncated.read_bytes()[:200], "truncated or damaged"),
        "list.pt": (listed.read_bytes(), "holds a list, not a state dict"),
        "image.pt": (_png(), "a PNG image, not a PyTorch state dict"),
        "image.weights.h5": (_png(), "a PNG image, not a Keras weights file"),
        "image.safetensors": (_png(), "not a safetensors file"),
        "notes.pth": (b"network r {\n}\n", "a text file"),
    }
    for name, (data, words) in files.items():
        file = tmp_path / name
        file.write_bytes(data)
        status, _, stderr = in_process("import", file)
        assert status == 2, (name, stderr)
        assert stderr.startswith(f"error: cannot read `{file}`: "), (name, stderr)
        assert words in stderr and stderr.count("\n") == 1, (name, stderr)
        assert "issue" not in stderr and "weights_only=False" not in stderr, (name, stderr)
    assert not marker.exists()
    status, _, stderr = in_process("import", tmp_path / "missing.pt")
    assert status == 2 and "no such file" in stderr


def test_a_pickled_whole_model_is_named_and_nothing_in_it_runs(tmp_path):
    """`torch.save(model, PATH)` writes the module, not its weights: said so (read from the
    pickle's opcodes, never unpickled), with the line that saves a state dict; status 2."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    marker = tmp_path / "ran"
    whole = torchvision.models.resnet18(weights=None)
    tricked = torch.nn.Sequential(torch.nn.Linear(2, 2))
    tricked.hook = _Evil(marker)  # unpickling it would run `touch`
    saves = {
        "r18full.pt": (whole, {}, "torchvision.models.resnet.ResNet"),
        "r18legacy.pt": (whole, {"_use_new_zipfile_serialization": False}, "ResNet"),
        "tricked.pt": (tricked, {}, "torch.nn.modules.container.Sequential"),
    }
    for name, (model, options, cls) in saves.items():
        file = tmp_path / name
        torch.save(model, file, **options)
        status, _, stderr = in_process("import", file)
        assert status == 2, (name, stderr)
        assert stderr.startswith(f"error: cannot read `{file}`: a pickled whole model (`"), stderr
        assert cls in stderr and "nn.Module" in stderr and stderr.count("\n") == 1, stderr
        assert "torch.save(model.state_dict(), PATH)" in stderr, stderr
        assert "not a PyTorch state dict" not in stderr, stderr
    assert not marker.exists()


def test_weights_of_another_network_exit_1_naming_the_tensor(tmp_path):
    """A readable file of a network resdsl does not describe is a problem with the network,
    status 1, as a spec with errors is."""
    torch = pytest.importorskip("torch")
    vgg = tmp_path / "vgg.pt"
    torch.save(
        {"features.0.weight": torch.zeros(64, 3, 3, 3), "classifier.0.weight": torch.zeros(10, 64)},
        vgg,
    )
    run = _import(str(vgg))  # as a user runs it: a process of its own
    assert run.returncode == 1 and "`features.0.weight` (64, 3, 3, 3)" in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_inconsistent_shapes_name_the_tensor():
    network = resdsl.load(ROOT / "specs/resnet18.res")
    shapes = _shapes(network)
    shapes["layer2.0.bn1.weight"] = (7,)
    with pytest.raises(ImportFailed, match=r"`layer2\.0\.bn1\.weight`"):
        infer(Source("bad", shapes), "bad")


def test_weights_without_projections_import_as_residual_unless_plain():
    """A plain net's tensors are its option-A counterpart's: the import says it assumed a
    residual network, `--plain` writes `shortcut none`, and refuses weights with projections."""
    from resdsl.interop.importer import Choices

    plain = resdsl.load(ROOT / "specs/cifar/plain20.res")
    source = Source("plain20.pt", _shapes(plain))
    residual = infer(source, "r")
    assert "`import --plain` writes `shortcut none`" in residual.text.replace("\n# ", " ")
    assert "shortcut A" in residual.text
    written = infer(source, "p", choices=Choices(plain=True)).text
    assert "shortcut none" in written and analyze_text(written, "p.res").ok
    projected = Source("r18.pt", _shapes(resdsl.load(ROOT / "specs/resnet18.res")))
    with pytest.raises(ImportFailed, match="--plain: stage `layer2` has projection shortcuts"):
        infer(projected, "p", choices=Choices(plain=True))


def test_options_say_what_weights_cannot():
    from resdsl.interop.importer import Choices

    expected = resdsl.load(ROOT / "tests/support/torch_specs/resnet50_dilated.res")
    source = Source("dilated.pt", _shapes(expected))
    plain = analyze_text(infer(source, "d").text, "d.res").network
    assert [s.dilation for s in plain.stages] == [1, 1, 1, 1]  # the convention, as assumed
    choices = Choices(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
    imported = infer(source, "d", choices=choices)
    assert "set them with --strides" not in imported.text
    _same_network(analyze_text(imported.text, "d.res").network, expected)
    # Dilations alone: a stage whose dilation grows does not stride as well (the network
    # saved, not one that strides and dilates, with a waiver to make it check).
    imported = infer(source, "d", choices=Choices(dilations=(1, 1, 2, 4)))
    assert "waive" not in imported.text
    assert "layer3, layer4 dilate in place of their strides" in imported.text
    _same_network(analyze_text(imported.text, "d.res").network, expected)
    keras_v1 = resdsl.load(ROOT / "specs/keras/resnet50.res")
    torch_style = infer(Source("k", _shapes(keras_v1)), "k", choices=Choices(stride_on="3x3"))
    assert "stride_on: 3x3" in torch_style.text
    with pytest.raises(ImportFailed, match="2 strides given for 4 stages"):
        infer(source, "d", choices=Choices(strides=(1, 2)))


def test_a_misspelt_library_model_gets_the_nearest_name():
    """Issue 30: `timm:NAME` and `torchvision:NAME` name the registry's closest model."""
    done = _import("timm:resnet5d")
    assert done.returncode == 2 and "did you mean `resnet50d`?" in done.stderr
    done = _import("torchvision:resnet5")
    assert done.returncode == 1 and "did you mean `resnet50`?" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_sknet_tensors_no_block_describes_name_the_tensor(tmp_path):
    """An SK checkpoint whose attention widths no reduction and divisor give, or whose paths
    are not 3x3s, is refused in one line naming the tensor (status 1), not a traceback."""
    torch = pytest.importorskip("torch")
    network = resdsl.load(ROOT / "specs/sknet/skresnet18.res")
    shapes = _shapes(network)
    attn = "layer2.1.conv1.attn"
    shapes |= {
        f"{attn}.fc_reduce.weight": (13, 128, 1, 1),
        f"{attn}.bn.weight": (13,), f"{attn}.bn.bias": (13,),
        f"{attn}.bn.running_mean": (13,), f"{attn}.bn.running_var": (13,),
        f"{attn}.fc_select.weight": (256, 13, 1, 1),
    }  # fmt: skip
    checkpoint = tmp_path / "odd.pt"
    torch.save({k: torch.zeros(v) for k, v in shapes.items()}, checkpoint)
    status, _, stderr = in_process("import", checkpoint)
    assert status == 1, stderr
    start = f"error: cannot import `{checkpoint}`: `{attn}.fc_reduce.weight`: "
    assert stderr.startswith(start), stderr
    assert "widths in its stage (16 of 128, 13 of 128) that no reduction" in stderr, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    path = "layer1.0.conv1.paths.{}.conv.weight"
    for i, words in ((0, "expected a 3x3 convolution"), (1, "expected path 0's (64, 32, 3, 3)")):
        five = _shapes(network) | {path.format(i): (64, 32, 5, 5)}
        with pytest.raises(ImportFailed, match=re.escape(f"`{path.format(i)}`")) as failed:
            infer(Source("five", five), "five")
        assert words in str(failed.value)
