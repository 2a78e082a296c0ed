"""The tooling around specs: summary, diff, graph, highlighting, the generated reference and
catalogue (the docs' pages are tests/system/test_docs.py's), pre-commit hooks, and backends as
plugins."""

from __future__ import annotations

import json
import shutil
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from click.testing import CliRunner

import resdsl
from resdsl.cli.main import main
from resdsl.driver import analyze_text, spec_files
from resdsl.tooling import report

ROOT = Path(__file__).resolve().parents[3]
SPECS = spec_files([str(ROOT / "specs")])


def _id(path: str) -> str:
    return Path(path).relative_to(ROOT / "specs").as_posix()


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# --------------------------------------------------------------------------- summary


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_summary_totals_equal_the_generated_torch_model(path):
    torch = pytest.importorskip("torch")
    from resdsl.cli.export import build_torch_model

    network = resdsl.load(path)
    rows = report.rows(network, blocks=True)
    top = [r for r in rows if r.level != "block"]
    assert sum(r.params for r in top) == network.params
    assert sum(r.macs for r in top) == network.macs
    for stage in network.stages:
        blocks = [r for r in rows if r.level == "block" and r.name.startswith(stage.name + ".")]
        assert len(blocks) == stage.blocks
        assert sum(r.params for r in blocks) == stage.params
    data = json.loads(_invoke("summary", path, "--json").output)
    assert data["totals"]["params"] == network.params

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = build_torch_model(network)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert trainable == network.params
    assert buffers == network.norm_stats


def _empirical_fields(model, network, stages):
    """Receptive field of each stage's output, measured: the extent of input pixels whose
    gradient reaches the centre output pixel. Max pools become average pools of the same
    geometry (a max pool passes gradient to one pixel only); weights are made positive so no
    activation or sum cancels a path."""
    import torch

    for _name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.MaxPool2d):
                setattr(
                    module,
                    child_name,
                    torch.nn.AvgPool2d(child.kernel_size, child.stride, child.padding),
                )
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.01)
    outputs = {}
    for stage in stages:
        getattr(model, stage).register_forward_hook(
            lambda m, i, o, stage=stage: outputs.__setitem__(stage, o)
        )
    fields = {}
    x = torch.ones(
        1, network.input.channels, network.input.height, network.input.width, requires_grad=True
    )
    model(x)
    for stage in stages:
        out = outputs[stage]
        x.grad = None
        out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward(retain_graph=True)
        rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
        fields[stage] = int(rows.max() - rows.min() + 1)
    return fields


@pytest.mark.parametrize(
    ("spec", "stages"),
    [
        ("resnet18.res", ["layer1", "layer2", "layer3"]),
        ("resnet50d.res", ["layer1", "layer2"]),
        ("cifar/resnet20.res", ["layer1", "layer2", "layer3"]),
    ],
)
def test_receptive_field_matches_the_gradient_of_the_torch_model(spec, stages, tmp_path):
    pytest.importorskip("torch")
    from resdsl.cli.export import build_torch_model

    # A larger input so no field is clipped by the image border (resnet50d inherits 224x224,
    # which its layer2's field of about 100 pixels fits).
    text = (ROOT / "specs" / spec).read_text()
    size = "3x512x512" if "cifar" not in spec else "3x160x160"
    text = text.replace("3x224x224", size).replace("3x32x32", size)
    # Analysed as text beside the original, so `extends` resolves; nothing is written.
    result = analyze_text(text, str((ROOT / "specs" / spec).parent / "rf_probe.res"))
    assert result.ok, result.diagnostics
    network = result.network
    model = build_torch_model(network).eval()
    measured = _empirical_fields(model, network, stages)
    computed = {r.name: r.receptive_field for r in report.rows(network) if r.level == "stage"}
    assert {s: computed[s] for s in stages} == measured


def test_summary_text_is_deterministic_and_plain_off_a_terminal():
    first = _invoke("summary", str(ROOT / "specs/resnet50.res"), "--blocks")
    second = _invoke("summary", str(ROOT / "specs/resnet50.res"), "--blocks")
    assert first.exit_code == 0 and first.output == second.output
    assert "\x1b[" not in first.output
    lines = first.output.splitlines()
    assert lines[2].split() == list(report.HEADERS)
    assert any(line.startswith("  layer3.5 ") for line in lines)
    assert f"total: {resdsl.load(ROOT / 'specs/resnet50.res').params:,} parameters" in first.output
    assert all(line == line.rstrip() for line in lines)


def test_summary_activations_are_every_layer_output_and_the_additions():
    torch = pytest.importorskip("torch")
    from resdsl.cli.export import build_torch_model

    network = resdsl.load(ROOT / "specs/resnet50.res")
    with torch.device("meta"):
        model = build_torch_model(network).eval()
    seen = []
    for module in model.modules():
        if not list(module.children()):  # leaf modules: a shared ReLU fires at each use
            module.register_forward_hook(lambda m, i, o: seen.append(o.numel()))
    with torch.device("meta"):
        model(torch.empty(1, 3, 224, 224))
    additions = sum(
        block.out_shape.channels * block.out_shape.height * block.out_shape.width
        for _, _, _, block in network.blocks()
    )
    assert report.activations(network) == sum(seen) + additions
    assert report.activations(network) < sum(seen) * 2  # no layer is counted twice


def test_summary_layers_input_and_batch():
    path = str(ROOT / "specs/timm/seresnet18.res")
    result = _invoke("summary", path, "--layers", "--input", "3x160x160", "--batch", "8")
    assert result.exit_code == 0, result.output
    assert "input 3x160x160" in result.output
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["layer2.0.se", "se"] for line in lines)
    assert any(line.split()[:1] == ["layer2.0.downsample.0"] for line in lines)
    data = json.loads(_invoke("summary", path, "--json", "--layers", "--batch", "8").output)
    layers = [r for r in data["rows"] if r["level"] == "layer"]
    network = resdsl.load(path)
    assert sum(r["params"] for r in layers) == network.params
    assert sum(r["macs"] for r in layers) == network.macs
    one = json.loads(_invoke("summary", path, "--json").output)["activation_bytes"]
    eight = data["activation_bytes"]
    assert (
        eight["forward"] == 8 * one["forward"] and eight["forward_backward"] == 2 * eight["forward"]
    )
    bad = _invoke("summary", path, "--input", "3x160")
    assert bad.exit_code == 2 and "CxHxW" in bad.output
    tiny = _invoke("summary", path, "--input", "3x8x8")
    assert tiny.exit_code == 1 and "E501" in tiny.output


def test_summary_names_groups_dilation_attention_and_anti_aliasing():
    text = report.summary_text(resdsl.load(ROOT / "specs/timm/seresnextaa101d_32x8d.res"))
    assert "x aa(avg) se bottleneck 512 g32 /2; shortcut avgpool+projection" in text
    dilated = resdsl.load(ROOT / "tests/support/torch_specs/features_b.res")
    (index,) = [i for i, stage in enumerate(dilated.stages) if stage.name == "s3"]
    assert " d2" in report.stage_words(dilated, index)


def test_summary_of_a_bad_spec_gives_diagnostics(tmp_path):
    bad = tmp_path / "bad.res"
    bad.write_text("network n {\n  input $\n}\n")
    result = _invoke("summary", str(bad))
    assert result.exit_code == 1
    assert "E011" in result.output


# --------------------------------------------------------------------------- diff


def test_diff_shows_groups():
    a, b = ROOT / "specs/resnet50.res", ROOT / "specs/resnext50_32x4d.res"
    data = json.loads(_invoke("diff", str(a), str(b), "--json").output)
    layer1 = next(s for s in data["stages"] if s["a_name"] == "layer1")
    assert "groups" in layer1["changed"] and (layer1["a"]["groups"], layer1["b"]["groups"]) == (
        1,
        32,
    )
    assert "dilation" in layer1["a"]
    text = _invoke("diff", str(a), str(b)).output
    assert any(line.split()[:3] == ["*groups", "1", "32"] for line in text.splitlines())


def test_diff_exit_code_says_whether_the_networks_differ():
    a, b = str(ROOT / "specs/resnet50.res"), str(ROOT / "specs/resnet50d.res")
    assert _invoke("diff", a, b).exit_code == 0
    assert _invoke("diff", a, b, "--exit-code").exit_code == 1
    assert _invoke("diff", a, b, "--exit-code", "--json").exit_code == 1
    same = _invoke("diff", a, a, "--exit-code")
    assert same.exit_code == 0, same.output


def test_diff_resnet50_against_resnet50d():
    a, b = ROOT / "specs/resnet50.res", ROOT / "specs/resnet50d.res"
    result = _invoke("diff", str(a), str(b))
    assert result.exit_code == 0, result.output
    assert "deep: conv3x3/2 32, conv3x3 32, conv3x3 64" in result.output
    assert "*shortcut" in result.output and "avgpool+projection" in result.output
    assert "stage layer1: no change" in result.output
    data = json.loads(_invoke("diff", str(a), str(b), "--json").output)
    na, nb = resdsl.load(a), resdsl.load(b)
    assert data["totals"]["params"] == {
        "a": na.params,
        "b": nb.params,
        "delta": nb.params - na.params,
    }
    assert data["totals"]["macs"]["delta"] == nb.macs - na.macs
    assert [d["field"] for d in data["network"]] == ["stem"]
    assert [s["changed"] for s in data["stages"]][1] == ["shortcut"]
    same = json.loads(_invoke("diff", str(a), str(a), "--json").output)
    assert same["network"] == [] and all(not s["changed"] for s in same["stages"])


def test_diff_heads_columns_by_name_and_shows_an_added_stage_as_added(tmp_path):
    """Issue 30: the columns are the networks' names (the files' where those agree), and a
    stage one network lacks is shown as added or removed, not as a change from nothing."""
    a, b = str(ROOT / "specs/resnet18.res"), str(ROOT / "specs/resnet34.res")
    text = _invoke("diff", a, b).output
    assert any(line.split()[:3] == ["total", "resnet18", "resnet34"] for line in text.splitlines())
    base = "network small {\n  input 3x32x32\n  classes 10\n  stem cifar\n  block basic\n"
    base += "  stage layer1: 1 x 16\n  stage layer2: 1 x 32 / 2\n"
    (tmp_path / "small.res").write_text(base + "}\n")
    (tmp_path / "wider.res").write_text(base + "  stage layer3: 1 x 64 / 2\n}\n")
    text = _invoke("diff", str(tmp_path / "small.res"), str(tmp_path / "wider.res")).output
    assert "stage layer3: added (only in wider.res)" in text
    assert any(line.split() == ["width", "64"] for line in text.splitlines())
    assert "->" not in text.split("stage layer3")[1].split("total")[0]


def test_diff_pairs_stages_by_position_across_naming_conventions():
    data = json.loads(
        _invoke(
            "diff",
            str(ROOT / "specs/resnet50.res"),
            str(ROOT / "specs/keras/resnet50.res"),
            "--json",
        ).output
    )
    assert [(s["a_name"], s["b_name"]) for s in data["stages"]] == [
        ("layer1", "conv2"),
        ("layer2", "conv3"),
        ("layer3", "conv4"),
        ("layer4", "conv5"),
    ]


# --------------------------------------------------------------------------- graph


def test_graph_dot_text_always_works(tmp_path):
    out = tmp_path / "net.dot"
    result = _invoke("graph", str(ROOT / "specs/resnet50d.res"), "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith('digraph "resnet50d" {') and text.endswith("}\n")
    for word in ("layer4", "avgpool+projection", "2048x7x7", "3x224x224", "1000 classes"):
        assert word in text
    assert "pool_project" not in text  # the IR's names stay out of the labels
    blocks = _invoke("graph", str(ROOT / "specs/cifar/resnet20.res"), "--blocks").output
    assert blocks.count('label="+"') == 9
    assert "pad(subsample, +16)" in blocks and "identity" in blocks
    assert blocks == _invoke("graph", str(ROOT / "specs/cifar/resnet20.res"), "--blocks").output


def test_graph_left_to_right_and_block_types():
    path = str(ROOT / "specs/timm/seresnextaa101d_32x8d.res")
    text = _invoke("graph", path, "--blocks", "--rankdir", "LR").output
    assert "rankdir=LR" in text and "rankdir=TB" not in text
    assert "layer2.0  aa(avg) se bottleneck</B>" in text and "256-&gt;512 g32 /2" in text
    preact = _invoke("graph", str(ROOT / "specs/preact_resnet18.res"), "--blocks").output
    assert "layer1.0  preact_basic</B>" in preact


def test_graph_without_graphviz_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = _invoke("graph", str(ROOT / "specs/resnet18.res"), "-o", str(tmp_path / "n.svg"))
    assert result.exit_code == 2
    assert "Graphviz" in result.output and ".dot" in result.output
    assert not (tmp_path / "n.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_graph_renders_with_graphviz(tmp_path, suffix):
    out = tmp_path / f"net.{suffix}"
    result = _invoke("graph", str(ROOT / "specs/resnet152.res"), "--blocks", "-o", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in data[:1000]


# --------------------------------------------------------------------------- highlighting


def test_pygments_finds_the_lexer_by_entry_point_and_tokenizes_every_spec():
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
    from pygments.token import Error

    from resdsl.tooling.lexer import ResLexer

    assert isinstance(get_lexer_by_name("res"), ResLexer)
    assert isinstance(get_lexer_for_filename("resnet50.res"), ResLexer)
    lexer = ResLexer()
    for path in SPECS:
        text = Path(path).read_text()
        tokens = list(lexer.get_tokens(text))
        assert not [t for t in tokens if t[0] in Error], path
        assert "".join(v for _, v in tokens) == text


def test_word_lists_are_generated_from_the_schema_and_registry():
    """The lexer's and the VS Code grammar's words are what `make words` writes now, and they
    hold every setting and every kind of every table."""
    from resdsl.blocks import RECIPES
    from resdsl.language import schema
    from resdsl.tooling import vocabulary
    from resdsl.tooling.lexer import KINDS, SETTINGS

    assert vocabulary.LEXER_WORDS.read_text("utf-8") == vocabulary.lexer_words(), "make words"
    assert vocabulary.GRAMMAR.read_text("utf-8") == vocabulary.grammar(), "make words"
    assert set(SETTINGS) == set(schema.FIELDS)
    kinds = {
        k
        for setting, table in schema.KIND_TABLES.items()
        for k in (RECIPES.built_in() if setting == "block" else table)
        if k[0].islower()
    }
    assert kinds <= set(KINDS)
    assert {"relu", "hard_sigmoid", "halve_double", "subsample"} <= set(KINDS)  # choices


# --------------------------------------------------------------------------- generated tables


def test_reference_lists_every_setting():
    from resdsl.language import schema
    from resdsl.tooling.catalogue import reference

    ref = reference()
    for key in schema.FIELDS:
        assert f"| `{key}` |" in ref


def test_reference_lists_per_block_type_what_it_takes():
    from resdsl.blocks import RECIPES
    from resdsl.blocks.residual import BOTTLENECK_ONLY
    from resdsl.tooling.catalogue import reference

    rows = {
        line.split(" | ")[1]: line for line in reference().splitlines() if "| `block` |" in line
    }
    for kind, recipe in RECIPES.items():
        for arg in BOTTLENECK_ONLY:
            listed = f"`{arg}` (" in rows[f"`{kind}`"]
            takes = arg in recipe.arguments and arg not in recipe.inapplicable
            assert listed == takes, (kind, arg)


# --------------------------------------------------------------------------- CI integration


def test_pre_commit_hooks_offer_check_and_fmt():
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    for hook, entry in (("resdsl-check", "resdsl check"), ("resdsl-fmt", "resdsl fmt --check")):
        block = text.split(f"\n- id: {hook}\n", 1)[1].split("\n- id:", 1)[0]
        assert f"entry: {entry}" in block
        assert "files: \\.res$" in block


class _EchoBackend:
    """A third party's backend: prints the network's name and parameter count."""

    name = "echo"
    suffix = ".txt"

    def emit(self, network):
        return f"{network.name} {network.params}\n"

    def unsupported(self, network):
        return []


def test_a_backend_plugin_registered_by_entry_point_is_found(monkeypatch):
    from resdsl.codegen import backends as backend

    real = backend.entry_points
    plugin = EntryPoint(name="echo", value=f"{__name__}:_EchoBackend", group=backend.GROUP)

    def entry_points(group=None, **kwargs):
        found = list(real(group=group, **kwargs))
        return [*found, plugin] if group == backend.GROUP else found

    monkeypatch.setattr(backend, "entry_points", entry_points)
    monkeypatch.setitem(sys.modules, __name__, sys.modules[__name__])
    backend.available.cache_clear()
    try:
        result = _invoke("compile", str(ROOT / "specs/resnet18.res"), "--backend", "echo")
        assert result.exit_code == 0, result.output
        assert result.output == f"resnet18 {resdsl.load(ROOT / 'specs/resnet18.res').params}\n"
        listed = _invoke("compile", str(ROOT / "specs/resnet18.res"), "--backend", "nope")
        assert listed.exit_code == 2 and "echo" in listed.output
    finally:
        backend.available.cache_clear()
