"""The Keras backend against timm's ResNet family: with a timm model's state dict (random
weights, norms with realistic statistics) loaded through `resdsl.interop.weights`, the generated
Keras model gives timm's logits, on Keras' TensorFlow backend and on its torch backend, and gives
the same tensors back (Keras to a PyTorch state dict).

`make test` runs one network per feature (ResNet-D, tiered stems, squeeze-excitation, ECA, blur
and average-pool anti-aliasing, group norm, ResNet-RS's stem, timm's test network, SENet-154's
features at a small size, a dilated network, Res2Net's split paths); `make conformance` runs
every network of timm's `resnet` and `res2net` modules, read from the installed timm, in both
Keras backends.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import byobnet_family
import pytest
from torch_helpers import comparison_size, conformance_marks, trained_norms

# torchvision (through triton) segfaults when imported after TensorFlow in one process; the
# Keras tests load TensorFlow, so take torchvision first wherever these tests run.
with contextlib.suppress(ImportError):
    import torchvision  # noqa: F401

import resdsl
from resdsl.interop import weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

ROOT = Path(__file__).resolve().parents[2]
TIMM_SPECS = ROOT / "specs" / "timm"
HERE = Path(__file__).parent
KERAS_SPECS = HERE / "keras_specs"
PYTHON = sys.executable

# Odd and non-square, so that every stride rounds and height and width cannot be swapped.
SIZE = (67, 51)
# timm's own networks with average-pool anti-aliasing refuse (67, 51): their 2x2 pool rounds
# down where the shortcut's pool rounds up, and the two no longer add. These odd sizes work.
AVERAGE_AA_SIZE = (129, 97)

# The specs of tests/parity/keras_specs and the arguments of timm's ResNet that build each network.
CUSTOM = {
    # SENet-154's features: grouped bottlenecks whose first convolution is half as wide,
    # squeeze-excitation, the deep stem, 3x3 projections where the shape changes.
    "senet_small": {
        "block": "Bottleneck",
        "layers": (1, 2, 1, 1),
        "channels": (16, 32, 64, 128),
        "cardinality": 4,
        "base_width": 16,
        "stem_type": "deep",
        "stem_width": 16,
        "down_kernel_size": 3,
        "block_reduce_first": 2,
        "block_args": {"attn_layer": "se"},
        "num_classes": 10,
    },
    # Global context attention that gates the channels (timm's `gc`) ends each branch.
    "gc_small": {
        "block": "Bottleneck",
        "layers": (1, 1, 1, 1),
        "channels": (16, 32, 64, 128),
        "block_args": {"attn_layer": "gc"},
        "num_classes": 10,
    },
    # Output stride 8: the last two stages dilate, each first block by the stage before's.
    "dilated_small": {
        "block": "Bottleneck",
        "layers": (1, 2, 2, 2),
        "channels": (16, 32, 64, 128),
        "output_stride": 8,
        "num_classes": 10,
    },
}

# One network per feature, in `make test`.
REPRESENTATIVE = [
    "resnet50d",  # ResNet-D: average-pool shortcuts, the stride-1 projection after an identity
    "resnet10t",  # the tiered deep stem
    "seresnet18",  # squeeze-excitation (a reduced width rounded up to 8)
    "ecaresnet26t",  # efficient channel attention, its kernel from the channels
    "resnetblur18",  # blur pools in the blocks and after the stem's stride-1 max pool
    "resnetaa34d",  # average-pool anti-aliasing
    "resnet50_gn",  # group norm
    "resnetrs50",  # a strided convolution for the stem's pool, squeeze-excitation by 4
    "test_resnet",  # basic and bottleneck stages mixed, widths of timm's choosing
    "senet_small",
    "dilated_small",
    "res2next50",  # Res2Net's split paths (a composite layer), grouped, cascading
    "skresnet18",  # selective kernels: split paths merged by attention
    "skresnext50_32x4d",  # selective kernels on the whole input, grouped
    "resnest14d",  # split attention: paths of one grouped 3x3, the stride by an average pool
    "resnest50d_4s2x40d",  # four paths in two groups: the weights ordered by group
    "resnet33ts",  # byobnet: a tiered stem striding in its last 3x3, SiLU, a 1x1 before the pool
    "seresnext26ts",  # byobnet: groups of 32 channels, squeeze-excitation after the 3x3
    "gcresnet33ts",  # byobnet: global context attention added after the 3x3
    "gc_small",  # global context attention gating the channels at the end of the branch
    "bat_resnext26ts",  # byobnet: bilinear attention (a custom layer's einsum), at 256x256
    "legacy_seresnet18",  # legacy SENet: Caffe's rounding-up stem pool, the legacy names
    "regnety_002",  # RegNet: Keras 2's names, squeeze-excitation of the block's input
    "regnetv_040",  # RegNetV: pre-activation, the identity adding the first norm's output
    "regnetz_005",  # RegNetZ: no shortcut where the shape changes, SiLU in squeeze-excitation
    "regnet_y_400mf",  # torchvision's RegNet: its names (`trunk_output`, `f.a.0`), `proj`
    "resnetv2_50",  # ResNetV2: -inf-padded stem pool, a 1x1-convolution classifier as a Dense
    "resnetv2_50x1_bit",  # BiT: weight-standardized convolutions (StandardizedConv2D)
    "resnetv2_50d_evos",  # EvoNorm-S0 (a custom layer; no activation after it)
    "resnetv2_50d_frn",  # Filter Response Normalization with TLU (a custom layer)
]
# Keras on PyTorch in `make test`: the custom blur layer, ECA's 1-d convolution, `ops.split`,
# the selective kernel's and split attention's `ops.stack` and softmax across paths.
TORCH_BACKEND = [
    "resnetblur18", "ecaresnet26t", "res2next50", "skresnet18", "resnest14d", "seresnext26ts",
    "regnetz_005", "resnetv2_50x1_bit", "resnetv2_50d_evos",
]  # fmt: skip
PRUNED = (
    "timm builds its pruned networks with a different width for every layer, read from a "
    "file of its own; no spec describes them"
)


# timm's modules and the folder of their specs.
FAMILIES = {
    "resnet": TIMM_SPECS,
    "res2net": ROOT / "specs" / "res2net",
    "sknet": ROOT / "specs" / "sknet",
    "resnest": ROOT / "specs" / "resnest",
    "byobnet": ROOT / "specs" / "byobnet",
    "senet": ROOT / "specs" / "legacy_senet",
    "regnet": ROOT / "specs" / "regnet",
    "resnetv2": ROOT / "specs" / "resnetv2",
}
# Networks of those modules the language does not describe yet, and why (none today).
NOT_YET: dict[str, str] = {}


def torchvision_regnets() -> list[str]:
    """torchvision's RegNet builders, as the installed torchvision registers them."""
    tv = pytest.importorskip("torchvision")
    return [name for name in tv.models.list_models() if name.startswith("regnet_")]


TORCHVISION_SPECS = ROOT / "specs" / "torchvision_regnet"


def _members(module: str) -> list[str]:
    """The family's networks of one of timm's modules (of byobnet's, its ResNets)."""
    if module == "byobnet":
        return byobnet_family.covered()
    return [name for name in timm.list_models(module=module) if name not in NOT_YET]


def registry() -> list[str]:
    """timm's ResNet family (its `resnet` module's, Res2Net's, SKNet's, ResNeSt's, byobnet's
    ResNets and the legacy SENets) as the installed timm registers it."""
    return [name for module in FAMILIES for name in _members(module)]


def spec_path(name: str) -> Path:
    if name in CUSTOM:
        return KERAS_SPECS / f"{name}.res"
    if name in torchvision_regnets():
        return TORCHVISION_SPECS / f"{name}.res"
    for module, folder in FAMILIES.items():
        if name in _members(module):
            return folder / f"{name}.res"
    raise KeyError(name)


def reference(name: str):
    """timm's model of `name` (torchvision's, for its RegNets), randomly initialised, in eval
    mode."""
    if name in torchvision_regnets():
        import torchvision as tv

        return tv.models.get_model(name).eval()
    if name in CUSTOM:
        from timm.models import resnet

        arguments = dict(CUSTOM[name])
        arguments["block"] = getattr(resnet, arguments["block"])
        return resnet.ResNet(**arguments).eval()
    return timm.create_model(name, pretrained=False).eval()


def input_size(network) -> tuple[int, int]:
    """SIZE; a larger odd size for average-pool anti-aliasing; the spec's own where bilinear
    attention needs each map's sides to be multiples of its block size."""
    if comparison_size(network) != (67, 51):
        return comparison_size(network)
    average = any(block.anti_alias == "avg" for *_, block in network.blocks())
    return AVERAGE_AA_SIZE if average else SIZE


def compare(name: str) -> dict:
    """timm's model and the generated Keras model of `name`, with timm's weights: the largest
    difference of their logits relative to the largest logit, whether Keras gives every tensor
    back, and the Keras model's parameter count against the IR's. Runs on whichever Keras
    backend is loaded (a subprocess runs it on Keras' torch backend)."""
    import keras
    import numpy as np

    network = resdsl.load(str(spec_path(name)))
    torch.manual_seed(0)
    model = reference(name)
    height, width = input_size(network)
    trained_norms(model, (height, width))
    state = model.state_dict()
    keras_model = weights.build_generated(network, "keras").build_model(
        input_shape=(height, width, network.input.channels)
    )
    pairs = weights.layer_pairs(network)
    weights.state_dict_to_keras(state, keras_model, pairs)
    x = torch.randn(
        2, network.input.channels, height, width, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        expected = model(x).numpy()
    got = keras.ops.convert_to_numpy(keras_model(weights.to_keras_images(x), training=False))
    error = float(np.abs(expected - got).max() / np.abs(expected).max())
    noise = None
    if error > 1e-4:
        # A deep random network can be so ill-conditioned that float32 itself misses the bar
        # (timm's resnest269e: its float32 logits are 9e-4 from its float64 ones). Then Keras
        # is measured against timm in float64, and may miss it by as much as timm's float32.
        import copy

        with torch.no_grad():
            exact = copy.deepcopy(model).double()(x.double()).numpy()
        scale = np.abs(exact).max()
        noise = float(np.abs(expected - exact).max() / scale)
        error = float(np.abs(got - exact).max() / scale)
    # Back, into a state dict of zeros: every tensor timm has must come from Keras.
    # (on the meta device: no copy of RegNetY-256GF's 5 GB of weights; a tensor Keras does not
    # give back stays there, and compares unequal)
    blank = {k: torch.empty_like(v, device="meta") for k, v in state.items()}
    back = weights.keras_to_state_dict(keras_model, blank, pairs)
    same = all(
        not back[k].is_meta and torch.equal(back[k], v)
        for k, v in state.items()
        if "num_batches" not in k
    )
    return {
        "error": error,
        "float32_noise": noise,  # timm's own float32 error, where Keras' exceeds 1e-4
        "shape": list(got.shape),
        "round_trip": same,
        "params": keras_model.count_params() == network.params + network.norm_stats,
    }


def check(name: str, result: dict) -> None:
    network = resdsl.load(str(spec_path(name)))
    bar = max(1e-4, 2 * (result["float32_noise"] or 0.0))
    assert result["error"] <= bar, (name, result["error"], result["float32_noise"])
    assert result["shape"] == [2, network.classes], name
    assert result["round_trip"], f"{name}: Keras gives back other tensors than timm's"
    assert result["params"], f"{name}: the Keras model's parameters are not the IR's"


# --------------------------------------------------------------------------- the registry


def test_every_network_of_the_registry_has_a_spec():
    names = registry()
    missing = [n for n in names if not n.endswith("_pruned") and not spec_path(n).exists()]
    assert not missing
    # And the representative ones are timm's, or built from timm's ResNet.
    assert set(REPRESENTATIVE) - set(CUSTOM) <= set(names) | set(torchvision_regnets())


def _by_name(names: list[str], fast: set[str]) -> list:
    return [
        pytest.param(
            name, marks=pytest.mark.skip(reason=PRUNED) if name.endswith("_pruned") else ()
        )
        if name in fast or name.endswith("_pruned")
        else pytest.param(name, marks=conformance_marks(spec_path(name)))
        for name in names
    ]


EVERY = sorted({*registry(), *CUSTOM, *torchvision_regnets()})


# --------------------------------------------------------------------------- Keras on TensorFlow


@pytest.mark.parametrize("name", _by_name(EVERY, set(REPRESENTATIVE)))
def test_keras_gives_timms_logits(name):
    check(name, compare(name))


def test_blur_pool_serialises_and_holds_no_weights():
    """The generated module's custom layer survives `get_config`, and has no weights for the
    port to miss."""
    import keras
    import numpy as np

    network = resdsl.load(str(TIMM_SPECS / "resnetblur18.res"))
    model = weights.build_generated(network, "keras").build_model(input_shape=(*SIZE, 3))
    blurs = [layer for layer in model.layers if type(layer).__name__ == "BlurPool2D"]
    assert [layer.name for layer in blurs] == [
        "pool1_aa",
        "layer2_block1_aa",
        "layer3_block1_aa",
        "layer4_block1_aa",
    ]
    assert all(not layer.weights for layer in blurs)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((1, *SIZE, 3)).astype("float32")
    assert np.array_equal(clone(x, training=False), model(x, training=False))
    # The binomial filter: [1, 2, 1] / 4 in each direction, applied as timm does.
    layer = blurs[0]
    assert layer.taps == [0.25, 0.5, 0.25]
    assert (layer.size, layer.strides, layer.padding) == (3, 2, [1, 1])


# --------------------------------------------------------------------------- Keras on PyTorch

SCRIPT = r"""
import json, sys
import keras
assert keras.backend.backend() == "torch"
sys.path[:0] = sys.argv[1:3]  # this file's folder, and support/ for the helpers it imports
import test_timm_keras
print(json.dumps({name: test_timm_keras.compare(name) for name in sys.argv[3:]}))
"""


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(TORCH_BACKEND, id="representative"),
        pytest.param(
            [n for n in EVERY if not n.endswith("_pruned")],
            id="every",
            marks=pytest.mark.conformance,
        ),
    ],
)
def test_keras_on_torch_gives_timms_logits(names):
    """The same comparison with Keras running on PyTorch: a subprocess, as Keras fixes its
    backend at import."""
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [PYTHON, "-c", SCRIPT, str(HERE), str(HERE.parent / "support"), *names],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(names)
    for name in names:
        check(name, results[name])


def test_batch_and_group_norms_do_not_mix():
    """A batch norm's state dict does not load into a group norm (its statistics would be
    dropped without a word), nor the other way."""
    group_norm = resdsl.load(str(TIMM_SPECS / "resnet50_gn.res"))
    keras_model = weights.build_generated(group_norm, "keras").build_model(input_shape=(*SIZE, 3))
    pairs = weights.layer_pairs(group_norm)
    batch_norm_state = timm.create_model("resnet50", pretrained=False).state_dict()
    with pytest.raises(weights.PortError, match="batch norm"):
        weights.state_dict_to_keras(batch_norm_state, keras_model, pairs)
    with pytest.raises(weights.PortError, match="batch norm"):
        weights.keras_to_state_dict(keras_model, batch_norm_state, pairs)
