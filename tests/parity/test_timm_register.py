"""resdsl.timm: specs registered with timm build, through timm's own create_model, a model that
behaves as timm's model of the same architecture (specs/timm/resnet10t.res against timm's
resnet10t, its weights loaded): forward, forward_features, forward_head, reset_classifier,
features_only, pretrained_cfg; and a generated model trains through timm's optimizer factory,
loader and transforms."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

timm = pytest.importorskip("timm")
torch = pytest.importorskip("torch")
import resdsl  # noqa: E402
import resdsl.timm as resdsl_timm  # noqa: E402

ROOT = Path(__file__).parents[2]
SPEC = ROOT / "specs" / "timm" / "resnet10t.res"
X = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def name() -> str:
    return resdsl_timm.register(SPEC, name="resdsl_test_resnet10t")


@pytest.fixture(scope="module")
def pair(name):
    """(ours, timm's resnet10t), both for 7 classes, ours with timm's weights, in eval mode."""
    ours = timm.create_model(name, num_classes=7).eval()
    theirs = timm.create_model("resnet10t", num_classes=7).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def test_create_model_computes_timm_s_network(pair):
    ours, theirs = pair
    with torch.no_grad():
        torch.testing.assert_close(ours(X), theirs(X))
        features = ours.forward_features(X)
        torch.testing.assert_close(features, theirs.forward_features(X))
        torch.testing.assert_close(ours.forward_head(features), theirs.forward_head(features))
        torch.testing.assert_close(
            ours.forward_head(features, pre_logits=True),
            theirs.forward_head(features, pre_logits=True),
        )
    assert ours.num_features == theirs.num_features and ours.num_classes == 7


def test_the_pretrained_cfg_is_timm_s_where_a_spec_says_it(name, pair):
    ours, theirs = pair
    for key in ("mean", "std", "first_conv", "classifier"):
        assert ours.pretrained_cfg[key] == theirs.pretrained_cfg[key], key
    network = resdsl.load(SPEC)  # timm trained resnet10t at 176 pixels; the spec says its size
    shape = (network.input.channels, network.input.height, network.input.width)
    assert ours.pretrained_cfg["input_size"] == shape
    assert ours.pretrained_cfg["num_classes"] == network.classes
    assert ours.pretrained_cfg["architecture"] == name
    config = timm.data.resolve_data_config({}, model=ours)
    assert config["input_size"] == shape
    assert config["crop_pct"] == resdsl_timm.CROP_PCT  # resdsl's own evaluation crop


def test_reset_classifier_and_get_classifier_as_timm_s(pair):
    ours = timm.create_model("resdsl_test_resnet10t", num_classes=7).eval()
    theirs = timm.create_model("resnet10t", num_classes=7).eval()
    for model in (ours, theirs):
        model.reset_classifier(3)
    assert ours(X).shape == theirs(X).shape == (2, 3)
    assert type(ours.get_classifier()) is type(theirs.get_classifier())
    for model in (ours, theirs):
        model.reset_classifier(0)
    assert ours(X).shape == theirs(X).shape == (2, ours.num_features)
    headless = timm.create_model("resdsl_test_resnet10t", num_classes=0)
    assert headless(X).shape == (2, ours.num_features)


def test_features_only_gives_timm_s_stages(name, pair):
    """timm's resnet10t has the stem as feature 0; resdsl's features are the stages, so its
    out_indices (0, 1, 2, 3) are timm's (1, 2, 3, 4)."""
    _, theirs = pair
    ours = timm.create_model(name, features_only=True, out_indices=(1, 2, 3)).eval()
    reference = timm.create_model("resnet10t", features_only=True, out_indices=(2, 3, 4)).eval()
    weights = {k: v for k, v in theirs.state_dict().items() if not k.startswith("fc.")}
    ours.model.load_state_dict(weights)  # the classifier pruned, as timm prunes its own
    reference.load_state_dict({k: v for k, v in weights.items() if k in reference.state_dict()})
    assert ours.feature_info.channels() == reference.feature_info.channels()
    assert ours.feature_info.reduction() == reference.feature_info.reduction()
    with torch.no_grad():
        for got, expected in zip(ours(X), reference(X), strict=True):
            torch.testing.assert_close(got, expected)
    default = timm.create_model(name, features_only=True)
    assert len(default(X)) == len(resdsl.load(SPEC).stages)


def test_a_name_timm_has_is_not_taken_silently():
    with pytest.raises(ValueError, match=r"timm already has a model `resnet10t`"):
        resdsl_timm.register(SPEC)
    with pytest.raises(ValueError, match="not a timm model name"):
        resdsl_timm.register(SPEC, name="resnet-10t")


def test_the_library_registers_every_spec_under_its_path():
    names = resdsl_timm.register_library()
    specs = sorted((ROOT / "specs").rglob("*.res"))
    assert names == sorted(resdsl_timm.library_name(p, ROOT / "specs") for p in specs)
    assert "resdsl_timm_resnet50d" in names and "resdsl_cifar_resnet20" in names
    assert set(names) <= set(timm.list_models(module=resdsl_timm.MODULE))
    assert timm.is_model("resnet50d")  # timm's own, not overwritten
    model = timm.create_model("resdsl_cifar_resnet20", num_classes=4)
    assert model.pretrained_cfg["input_size"] == (3, 32, 32)
    assert model.pretrained_cfg["crop_pct"] == 1.0  # CIFAR-sized: seen whole


def _image_folder(root: Path) -> Path:
    """Generated images: two classes, dark and light, 16 of each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, base in (("dark", 40), ("light", 200)):
        (root / label).mkdir(parents=True)
        for i in range(16):
            pixels = np.clip(base + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


def test_a_generated_model_trains_through_timm_s_pieces(tmp_path):
    """timm's ImageDataset, create_loader (its training transforms from the model's
    pretrained_cfg), create_optimizer_v2 and its label-smoothing loss train the model: the
    loss on the data falls, and timm's evaluation transform then classifies the images."""
    from timm.data import ImageDataset, create_loader, create_transform, resolve_data_config
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.optim import create_optimizer_v2

    resdsl_timm.register(ROOT / "specs" / "cifar" / "resnet20.res", name="resdsl_test_r20")
    random.seed(0)  # timm's crops draw from Python's generator, the order from torch's
    torch.manual_seed(0)
    model = timm.create_model("resdsl_test_r20", num_classes=2)
    config = resolve_data_config({}, model=model)
    folder = _image_folder(tmp_path / "images")
    loader = create_loader(
        ImageDataset(str(folder)),
        input_size=config["input_size"],
        batch_size=8,
        is_training=True,
        no_aug=False,
        hflip=0.5,
        mean=config["mean"],
        std=config["std"],
        num_workers=0,
        use_prefetcher=False,
    )
    optimizer = create_optimizer_v2(model, "adamw", lr=0.001, weight_decay=1e-4)
    criterion = LabelSmoothingCrossEntropy(smoothing=0.1)
    evaluation = ImageDataset(str(folder), transform=create_transform(**config))
    images = torch.stack([evaluation[i][0] for i in range(len(evaluation))])
    labels = torch.tensor([evaluation[i][1] for i in range(len(evaluation))])

    def loss_now() -> float:
        model.eval()
        with torch.no_grad():
            return float(criterion(model(images), labels))

    before = loss_now()
    model.train()
    for _ in range(6):
        for x, y in loader:
            optimizer.zero_grad()
            criterion(model(x), y).backward()
            optimizer.step()
    after = loss_now()
    assert after < before
    model.eval()
    with torch.no_grad():
        assert (model(images).argmax(1) == labels).float().mean() >= 0.9


def test_python_m_resdsl_timm_runs_a_script_with_the_library(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, timm\n"
        "model = timm.create_model(sys.argv[1], num_classes=3)\n"
        "print(type(model).__name__, model.pretrained_cfg['input_size'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "resdsl.timm", str(script), "resdsl_cifar_resnet20"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "TimmResNet20 (3, 32, 32)"
    missing = subprocess.run(
        [sys.executable, "-m", "resdsl.timm", str(tmp_path / "nope.py")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: no script")
