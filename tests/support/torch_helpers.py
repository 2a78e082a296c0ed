"""Helpers for the torch backend's tests: compile a spec and import the generated module."""

from __future__ import annotations

import functools
import hashlib
import tempfile
from pathlib import Path

import resdsl
from resdsl.codegen.generated import import_file

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
ALL_SPECS = sorted(set(SPECS.rglob("*.res")) - set((SPECS / "timm").glob("*.res")))
_MODULES = Path(tempfile.mkdtemp(prefix="resdsl-torch-"))


def spec_id(path: Path) -> str:
    return path.relative_to(SPECS).with_suffix("").as_posix()


@functools.cache
def compiled(path_or_text: str) -> str:
    return resdsl.compile(path_or_text, backend="torch")


@functools.cache
def import_code(code: str):
    """Import generated code from a real file, as a user would (torch.compile reads sources);
    the same code is imported once."""
    path = _MODULES / f"resdsl_gen_{hashlib.sha256(code.encode()).hexdigest()[:16]}.py"
    path.write_text(code)
    return import_file(path)


def generated(path_or_text: str | Path):
    """The generated module of a spec file or text."""
    return import_code(compiled(str(path_or_text)))


def randomise_norms(model) -> None:
    """Give `model`'s norms realistic random scales, offsets and (batch norm) running
    statistics, so that a comparison with another model covers them: a fresh model's are ones
    and zeros. Draws from torch's global generator; seed it first."""
    import torch

    randomise_zero_weights(model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            _randomise_fused(module, torch.rand)


def _randomise_fused(module, rand) -> None:
    """A norm that holds its nonlinearity (timm's EvoNorm2dS0: `v`; FilterResponseNormTlu2d:
    `tau`) away from its defaults, its scale and shift too; `rand(shape)` draws uniformly."""
    v, tau = getattr(module, "v", None), getattr(module, "tau", None)
    if (v is None and tau is None) or not hasattr(module, "weight"):
        return
    n = module.weight.shape[0]
    module.weight.copy_(0.5 + rand(n))
    module.bias.copy_(0.2 * rand(n) - 0.1)
    if v is not None:
        v.copy_(0.5 + rand(n))
    if tau is not None:
        tau.copy_(0.2 * rand(n) - 0.1)


def randomise_zero_weights(model, generator=None) -> None:
    """Give convolutions and linear layers that a fresh model starts at zero (timm zeroes
    global context's last 1x1, `mlp_add.fc2`) PyTorch's default random weights, so that a
    comparison covers the layers before them: with a zero weight, only its bias counts."""
    import math

    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not module.weight.any():
                bound = 1 / math.sqrt(module.weight[0].numel())
                uniform = torch.rand(module.weight.shape, generator=generator)
                module.weight.copy_((2 * uniform - 1) * bound)


def _last_norm(block):
    """A block's last norm: bn3 or bn2, ConvNormAct's conv3.bn or conv2.bn, or (timm's
    pre-activation RegNet blocks, whose branch ends with a convolution) norm3 or norm2."""
    import torch

    kinds = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    for name in ("bn3", "bn2", "conv3", "conv2", "norm3", "norm2"):
        module = getattr(block, name, None)
        module = getattr(module, "bn", module)
        fused = hasattr(module, "v") or hasattr(module, "tau")  # EvoNorm-S0, FRN
        if isinstance(module, kinds) or fused:
            return module
    raise AttributeError(f"{type(block).__name__} has no last norm")


def trained_norms(model, size: tuple[int, int]) -> None:
    """Norms away from their identity defaults, as after training: random scales and shifts
    (timm starts each branch's last norm at zero; here its scale is small, as trained
    networks' are), and batch norms' statistics those of a training-mode pass over random
    images. Statistics that do not fit the activations, or large scales at the end of every
    branch, make the deep networks so ill-conditioned that timm's own float32 logits differ
    from float64's by more than the tolerance (ResNet-200-D: 8e-4); these keep every network
    of the registry well conditioned, where `randomise_norms`' leave the deepest networks'
    float32 logits tens of percent apart between two correct implementations."""
    import torch

    generator = torch.Generator().manual_seed(0)
    randomise_zero_weights(model, generator)
    kinds = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    norms = [module for module in model.modules() if isinstance(module, kinds)]
    # Each residual branch's last norm (timm's `zero_init_last` blocks: bn3, or bn2 in basic
    # blocks; SKNet's conv3.bn or conv2.bn) keeps a small scale, as trained networks' do.
    # timm's legacy SENet blocks (`se_module`) have no `zero_init_last` but the same last norm.
    blocks = [m for m in model.modules() if hasattr(m, "zero_init_last") or hasattr(m, "se_module")]
    last = {id(_last_norm(block)) for block in blocks}
    with torch.no_grad():
        for module in model.modules():
            _randomise_fused(module, lambda n: torch.rand(n, generator=generator))
            if id(module) in last and not isinstance(module, kinds):  # a fused norm's scale
                module.weight.mul_(0.2)
        for norm in norms:
            n = norm.weight.shape[0]
            scale = torch.rand(n, generator=generator)
            norm.weight.copy_(0.1 + 0.2 * scale if id(norm) in last else 0.5 + scale)
            norm.bias.copy_(torch.rand(n, generator=generator) - 0.5)
            if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
                norm.momentum = None  # the running statistics: this batch's
                norm.reset_running_stats()
        model.train()(torch.randn(4, 3, *size, generator=generator))
        model.eval()


def ruff_problems(path) -> str:
    """What `ruff check` with the project's config finds in `path` ("" where nothing)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(root / "pyproject.toml"),
         str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    return "" if done.returncode == 0 else done.stdout


def generated_torch(source: str, folder, name: str, base=None):
    """The PyTorch module compiled from `source` (a spec's path or text; `base` resolves a
    text's `extends`), written to `folder` and imported: (module, its file)."""
    import resdsl
    from resdsl.codegen.generated import import_source

    code = resdsl.compile(source, backend="torch", base=base)
    path = folder / f"{name}.py"
    path.write_text(code)
    return import_source(code, f"generated_{name}", str(path)), path


def comparison_size(network) -> tuple[int, int]:
    """The input size at which a network is compared with its reference: odd and not square,
    unless bilinear attention needs every map's sides to be multiples of its block size (then
    the spec's own)."""
    from resdsl.ir import flatten

    layers = [x for *_, block in network.blocks() for x in flatten(block.layers)]
    if any(x.op == "bat" for x in layers):
        return network.input.height, network.input.width
    return 67, 51


def assert_same_outputs(reference, ours, size: tuple[int, int] = (67, 51)) -> None:
    """The reference (its norms' statistics randomised) and our model with its weights loaded
    strictly give the same outputs at an input of `size` (by default odd, not square), in eval
    and training mode (channel dropout drawing the same masks: the generator is reseeded
    before each model runs)."""
    import torch

    randomise_norms(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, *size)
    outputs = {}
    for mode in ("eval", "train"):
        getattr(reference, mode)(), getattr(ours, mode)()
        with torch.no_grad():
            torch.manual_seed(1)
            expected = reference(x)
            torch.manual_seed(1)
            outputs[mode] = (expected, ours(x))
    far = [m for m, (e, a) in outputs.items() if (a - e).abs().max() > 1e-5 * e.abs().max()]
    if not far:
        return
    # Where the reference's own float32 outputs are that far from its float64 ones (a deep ReLU
    # network with random weights), ours may be twice as far from float64. The reference
    # becomes float64 in place: a copy would hold a fourth model's weights (BiT-152x4's 3.7 GB).
    reference.double()
    for mode in far:
        expected, actual = outputs[mode]
        getattr(reference, mode)()
        with torch.no_grad():
            torch.manual_seed(1)
            exact = reference(x.double())
        noise = (expected.double() - exact).abs().max()
        bar = max(1e-5 * expected.abs().max(), 2 * noise)
        assert (actual.double() - exact).abs().max() <= bar, mode


def assert_same_layout_as_timm(spec: Path, name: str, folder) -> None:
    """The generated PyTorch model of `spec` against timm's `name`, both on the meta device:
    state-dict keys in timm's order and shapes, the parameter count (the IR's too), the IR's
    multiply-accumulates against PyTorch's FLOP counter (half its FLOPs) at the spec's input
    size, and ruff-clean code."""
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import resdsl

    module, path = generated_torch(str(spec), folder, name)
    network = resdsl.load(spec)
    i = network.input
    with torch.device("meta"):
        ours, reference = module.build_model(), timm.create_model(name, pretrained=False)
        with FlopCounterMode(display=False) as counter:
            reference.eval()(torch.empty(1, i.channels, i.height, i.width))
    shapes = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert shapes == [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count == network.params
    assert counter.get_total_flops() // 2 == network.macs
    assert ruff_problems(path) == ""


def assert_same_outputs_as_timm(spec: Path, name: str, folder) -> None:
    """timm's `name` (seeded, its norms' statistics randomised) and the generated model of
    `spec` with its weights: the same outputs (see :func:`assert_same_outputs`)."""
    import timm
    import torch

    import resdsl

    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False)
    module, _ = generated_torch(str(spec), folder, name)
    size = comparison_size(resdsl.load(spec))
    assert_same_outputs(reference, module.build_model(), size)


def assert_imports_to_spec(source: str, spec: Path, assumed: tuple[str, ...] = ()) -> None:
    """`resdsl import SOURCE` (`timm:NAME`, `torchvision:NAME`) gives `spec`'s network: its
    parameters and MACs, its stem's and blocks' layers (PyTorch names and types); it assumes
    only what `assumed` begins (the input size a library does not record)."""
    import resdsl
    from resdsl.driver import analyze_text
    from resdsl.interop.import_sources import read
    from resdsl.interop.importer import infer

    imported = infer(read(source), spec.stem)
    assert [words.split(" (")[0] for words in imported.assumed] == list(assumed)
    network = analyze_text(imported.text, "i.res").network
    expected = resdsl.load(spec)
    assert (network.params, network.macs) == (expected.params, expected.macs)
    assert _named_layers(network) == _named_layers(expected)


def _named_layers(network) -> list[tuple[str, str]]:
    """The stem's and every block's layers, by PyTorch name and type."""
    layers = [(x.torch, x.op) for x in network.stem.layers]
    return layers + [(x.torch, x.op) for *_, block in network.blocks() for x in block.layers]


# Over this many parameters a comparison holds several copies of gigabytes of weights (the
# reference, ours, a state dict, Keras'): `make conformance` runs those one at a time.
HEAVY_PARAMS = 500_000_000


def conformance_marks(spec: Path | None) -> list:
    """A conformance test's marks: `conformance`, and `heavy` for a network over
    HEAVY_PARAMS parameters."""
    import pytest

    import resdsl

    marks = [pytest.mark.conformance]
    if spec is not None and resdsl.load(spec).params > HEAVY_PARAMS:
        marks.append(pytest.mark.heavy)
    return marks


def by_cost(names, representative, folder: Path | None = None) -> list:
    """`names` as test parameters: the `representative` ones in `make test`, the others under
    `make conformance` (`heavy` too where their spec, in `folder`, is)."""
    import pytest

    return [
        pytest.param(name, id=name)
        if name in representative
        else pytest.param(
            name,
            marks=conformance_marks(folder / f"{name}.res" if folder else None),
            id=name,
        )
        for name in names
    ]
