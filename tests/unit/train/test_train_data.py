"""Training on real data: image folders streamed from disk by both trainers, images of every
mode, the augmentation recipes (checked against torchvision's transforms), weight averaging
(against PyTorch's AveragedModel), TensorBoard logs, and the errors for bad folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from train_helpers import (
    ENV,
    ROOT,
    read_metrics,
    same_run,
    shared_folder,
    tiny_spec,
    train,
    without_tensorflow,
)

from resdsl.train import transforms
from resdsl.train.common import TrainError

TINY = tiny_spec("3x16x16", 3)
MODES = ("RGB", "L", "RGBA", "P", "I;16", "CMYK")


def _train(*args: str) -> subprocess.CompletedProcess:
    return train(*args)


def _image(shade: int, size: tuple[int, int], mode: str, rng):
    """An image of about `shade` grey level with some noise, saved in `mode`."""
    from PIL import Image

    width, height = size
    pixels = np.clip(shade + rng.integers(-20, 21, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if mode == "I;16":
        wide = (np.asarray(image.convert("L")).astype(np.uint16) * 257).astype(np.uint16)
        return Image.fromarray(wide)  # mode I;16
    return image.convert(mode)


def _folder(root: Path, per_class: int = 12, test_per_class: int = 4) -> Path:
    """Three classes of light, mid and dark images of mixed sizes and modes (PNG; CMYK as
    JPEG), in train/ and test/."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for label, shade in (("dark", 40), ("mid", 128), ("light", 215)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                mode = MODES[i % len(MODES)]
                image = _image(shade, (18 + i % 7, 16 + i % 5), mode, rng)
                image.save(folder / f"{i}.{'jpg' if mode == 'CMYK' else 'png'}")
    return root


# The spec, the image folder and the streamed runs are made once for the session, whichever
# test worker asks first (train_helpers.shared_folder): a run records its spec and data, and
# the tests that resume or evaluate one give the same.


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    write = lambda folder: (folder / "resnet8.res").write_text(TINY)  # noqa: E731
    return str(shared_folder(tmp_path_factory, "streamed-spec", write) / "resnet8.res")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return shared_folder(tmp_path_factory, "images", _folder)


# --- reading images ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_images_of_every_mode_are_read_as_grey_levels(tmp_path, mode):
    """A mid-grey image in any mode reads as mid-grey, in one channel or three: 16-bit grey is
    scaled to 8 bits (not clipped at 255), palette and alpha are resolved."""
    from PIL import Image

    pixels = np.full((6, 5), 128, np.uint8)
    image = Image.fromarray(pixels).convert("RGB")
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        image = image.convert(mode)
    path = tmp_path / f"grey.{'jpg' if mode == 'CMYK' else 'png'}"
    image.save(path, **({"transparency": 0} if mode == "P" else {}))
    for channels in (1, 3):
        array = transforms.to_array(transforms.read_image(str(path), channels), channels)
        assert array.shape == (channels, 6, 5)
        assert np.abs(array.astype(int) - 128).max() <= 2, (mode, channels, array.ravel()[:4])


def test_an_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(transforms.UnreadableImage, match=r"cannot read image `.*bad\.png`"):
        transforms.read_image(str(bad), 3)
    with pytest.raises(transforms.UnreadableImage, match="no such file"):
        transforms.read_image(str(tmp_path / "missing.png"), 3)


def test_a_decompression_bomb_is_refused_unread(tmp_path):
    """A small PNG that claims 200 million pixels is refused before they are allocated."""
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (14_200, 14_200)).save(bomb)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(transforms.UnreadableImage, match=r"`.*bomb\.png`.*decompression bomb"):
        transforms.read_image(str(bomb), 3)


# --- augmentation --------------------------------------------------------------------------------


def test_the_imagenet_evaluation_view_is_torchvisions():
    """Resize(floor(size / 0.875)) then CenterCrop(size), pixel for pixel."""
    import torchvision.transforms.v2 as T
    from PIL import Image

    rng = np.random.default_rng(0)
    for width, height in ((300, 200), (200, 300), (257, 256), (50, 41)):
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for size in (224, 32):
            reference = T.Compose([T.Resize(int(size / 0.875)), T.CenterCrop(size)])(image)
            ours = transforms.eval_view(image, (size, size), "imagenet")
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))


def test_random_resized_crops_keep_to_the_recipes_ranges():
    """Areas from 8% to 100% and aspect ratios from 3/4 to 4/3 (up to rounding to whole
    pixels), inside the image, and the same crop for the same seed."""
    areas, ratios = [], []
    for seed in range(500):
        box = transforms.random_crop_box(320, 240, np.random.default_rng(seed))
        left, top, right, bottom = box
        assert 0 <= left < right <= 320 and 0 <= top < bottom <= 240
        w, h = right - left, bottom - top
        areas.append(w * h / (320 * 240))
        ratios.append(w / h)
        assert box == transforms.random_crop_box(320, 240, np.random.default_rng(seed))
    assert min(areas) >= 0.075 and max(areas) <= 1.0
    assert min(ratios) >= 3 / 4 - 0.02 and max(ratios) <= 4 / 3 + 0.02
    assert min(areas) < 0.15 and max(areas) > 0.9  # the whole range is used
    # An image too thin for any crop of the ratio range gets the central crop of the nearest.
    fallback = transforms.random_crop_box(400, 10, np.random.default_rng(0))
    assert fallback[3] - fallback[1] == 10 and fallback[2] - fallback[0] == round(10 * 4 / 3)


def test_each_image_gets_the_same_view_in_a_resumed_run(folder):
    """The PyTorch loader's views depend on (seed, epoch, index) only: the same in a run
    resumed mid-epoch as in an unbroken one, different in the next epoch."""
    from resdsl.train import data
    from resdsl.train.torch_batches import SplitImages

    loaded = data.load(str(folder), (3, 16, 16), "imagenet")
    images = SplitImages(loaded.train, (3, 16, 16), "imagenet", training=True, seed=7)
    first, label = images[(5, 0)]
    assert first.shape == (3, 16, 16) and first.dtype.is_floating_point is False
    again, _ = SplitImages(loaded.train, (3, 16, 16), "imagenet", training=True, seed=7)[(5, 0)]
    assert (first == again).all() and label == loaded.train.labels[5]
    later, _ = images[(5, 1)]
    assert not (first == later).all()
    plain = SplitImages(loaded.train, (3, 16, 16), "imagenet", training=False, seed=7)
    assert (plain[(5, 0)][0] == plain[(5, 3)][0]).all()  # evaluation is not random


def test_the_tf_pipeline_sees_images_as_the_torch_loader_does(folder):
    """Keras's tf.data evaluation views match the PyTorch loader's within resampling noise,
    and a training epoch is the same batches each time it is made."""
    from resdsl.train import data
    from resdsl.train.presets import PRESETS, override
    from resdsl.train.tf_data import Pipelines
    from resdsl.train.torch_batches import SplitImages

    for augment in ("imagenet", "none"):
        recipe = override(PRESETS["default"], augment=augment)
        loaded = data.load(str(folder), (3, 16, 16), augment)
        pipelines = Pipelines(loaded, (3, 16, 16), recipe, seed=0)
        x, y = next(iter(pipelines.test(batch=len(loaded.test))))
        mean, std = np.asarray(loaded.mean), np.asarray(loaded.std)
        tf_pixels = (np.asarray(x) * std + mean) * 255.0
        torch_view = SplitImages(loaded.test, (3, 16, 16), augment, training=False, seed=0)
        torch_pixels = np.stack(
            [torch_view[(i, 0)][0].numpy().transpose(1, 2, 0) for i in range(len(loaded.test))]
        )
        assert np.asarray(y).tolist() == loaded.test.labels.tolist()
        assert np.abs(tf_pixels - torch_pixels).mean() < 3.0, augment
        order = np.random.default_rng(1).permutation(len(loaded.train))
        epoch = [np.asarray(b[0]) for b in pipelines.train(2, order, 8)]
        repeat = [np.asarray(b[0]) for b in pipelines.train(2, order, 8)]
        assert all(np.array_equal(a, b) for a, b in zip(epoch, repeat, strict=True))


def test_the_pydataset_input_sees_images_as_the_torch_loader_does(folder):
    """Keras's input without TensorFlow reads and crops each image with the same code and
    the same seeds as the PyTorch loader: the same pixels, for evaluation and for ImageNet
    training views."""
    from resdsl.train import data
    from resdsl.train.keras_data import Pipelines
    from resdsl.train.presets import PRESETS, override
    from resdsl.train.torch_batches import SplitImages

    recipe = override(PRESETS["default"], augment="imagenet")
    loaded = data.load(str(folder), (3, 16, 16), "imagenet")
    pipelines = Pipelines(loaded, (3, 16, 16), recipe, seed=3)
    mean, std = np.asarray(loaded.mean), np.asarray(loaded.std)
    for training, split in ((False, loaded.test), (True, loaded.train)):
        torch_view = SplitImages(split, (3, 16, 16), "imagenet", training=training, seed=3)
        for index in (0, 5):
            ours = pipelines.view(split, index, 2, training=training) * std + mean
            reference = torch_view[(index, 2)][0].numpy().transpose(1, 2, 0) / 255.0
            np.testing.assert_allclose(ours, reference, atol=1e-6)
    x, y = pipelines.train(2, np.arange(len(loaded.train)), 8)[1]
    assert x.shape == (8, 16, 16, 3) and y.tolist() == loaded.train.labels[8:16].tolist()


# --- weight averaging ---------------------------------------------------------------------------


def test_keras_weight_average_matches_torch_averaged_model():
    """The Keras trainer's average, given the same weights after each step, holds what
    PyTorch's AveragedModel (the PyTorch trainer's) holds."""
    import keras
    import torch

    from resdsl.train.keras_trainer import WeightAverage
    from resdsl.train.torch_trainer import make_ema

    linear = torch.nn.Linear(3, 2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    average = WeightAverage(keras, model, 0.8)
    ema = make_ema(torch, linear, 0.8)
    rng = np.random.default_rng(0)
    for _ in range(4):
        w, b = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=2).astype(np.float32)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        model.layers[0].set_weights([w.T, b])
        ema.update_parameters(linear)
        average.update()
    expected_w = ema.module.weight.detach().numpy()
    np.testing.assert_allclose(np.asarray(average.averages[0]), expected_w.T, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(average.averages[1]), ema.module.bias.detach().numpy(), rtol=1e-6
    )
    with average.swapped():
        np.testing.assert_allclose(model.layers[0].get_weights()[0], expected_w.T, rtol=1e-6)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], w.T)  # swapped back


# --- end to end ----------------------------------------------------------------------------------


def _scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


# "keras-on-torch": Keras on its torch backend, with TensorFlow made impossible to import: the
# PyDataset input (resdsl/train/keras_data.py) instead of tf.data.
NO_TENSORFLOW = {"KERAS_BACKEND": "torch"}


def _streamed_args(folder: Path, backend: str) -> list[str]:
    """Random crops and flips from disk, weight averaging, a loader worker (PyTorch)."""
    args = ["--data", str(folder), "--epochs", "3", "--batch-size", "12", "--lr", "0.05"]
    args += ["--augment", "imagenet", "--ema", "0.5"]
    args += ["--backend", "torch" if backend == "torch" else "keras"]
    return args + (["--workers", "1"] if backend == "torch" else [])


def _streamed_env(backend: str, blocker: dict) -> dict:
    if backend != "keras-on-torch":
        return {}
    return {**NO_TENSORFLOW, **blocker}


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory) -> dict:
    """Environment variables under which `tensorflow` refuses to import."""
    return without_tensorflow(tmp_path_factory.mktemp("no-tensorflow"))


@pytest.fixture(scope="module")
def streamed_run(tiny, folder, tmp_path_factory, no_tensorflow):
    """backend -> (the finished process, its run folder) of an unbroken streamed run, made
    once per backend for the session: the end-to-end and the resume tests both read it."""

    def run(backend: str):
        def make(shared: Path) -> None:
            args = (tiny, *_streamed_args(folder, backend), "--out", str(shared / "run"))
            done = train(*args, extra_env=_streamed_env(backend, no_tensorflow))
            for name, text in (("stdout.txt", done.stdout), ("stderr.txt", done.stderr)):
                (shared / name).write_text(text)
            (shared / "status.txt").write_text(str(done.returncode))

        shared = shared_folder(tmp_path_factory, f"streamed-{backend}", make)
        output = [(shared / name).read_text() for name in ("stdout.txt", "stderr.txt")]
        status = int((shared / "status.txt").read_text())
        return subprocess.CompletedProcess([], status, *output), shared / "run"

    return run


# Keras on torch streams through the same Keras trainer; its run is under `make conformance`.
@pytest.mark.parametrize(
    "backend", ["torch", "keras", pytest.param("keras-on-torch", marks=pytest.mark.conformance)]
)
def test_a_streamed_folder_trains_with_imagenet_augmentation_and_averaging(
    tiny, folder, streamed_run, backend
):
    """Both trainers on an image folder of mixed modes (Keras also on its torch backend,
    without TensorFlow): the files are read as needed, the averaged weights are evaluated and
    kept, TensorBoard has every epoch."""
    done, out = streamed_run(backend)
    assert done.returncode == 0, done.stderr
    assert "33 train / 3 held-out val / 12 test (read from disk as needed)" in done.stdout
    assert "random resized crops and flips" in done.stdout and "EMA 0.5" in done.stdout
    result = json.loads((out / "result.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scalars = _scalars(out)
    assert [step for step, _ in scalars["accuracy/val"]] == [3, 6, 9]
    assert [v for _, v in scalars["accuracy/val"]] == pytest.approx([m["val_acc"] for m in metrics])
    assert {"loss/train", "loss/val", "accuracy/train", "learning_rate"} <= set(scalars)
    assert result["test_acc"] >= 0.5  # three easy classes
    if backend == "torch":
        import torch

        state = torch.load(out / "checkpoint.pt", weights_only=True)
        averaged = {k.removeprefix("module."): v for k, v in state["ema"].items()}
        raw = state["model"]
        assert any(not torch.equal(averaged[k], raw[k]) for k in raw)
        # `resdsl eval` on the best weights reproduces the best epoch: averaged weights.
        check = subprocess.run(
            [sys.executable, "-m", "resdsl", "eval", tiny, "--weights", str(out / "best.pt"),
             "--data", str(folder), "--json"],
            capture_output=True, text=True, env={**os.environ, **ENV}, cwd=ROOT,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout)["top1"] == pytest.approx(result["test_acc"])
    else:
        assert (out / "checkpoint" / "average.npz").exists()


@pytest.mark.parametrize(
    "backend",
    [
        "torch",
        pytest.param("keras", marks=pytest.mark.conformance),
        pytest.param("keras-on-torch", marks=pytest.mark.conformance),
    ],
)
def test_a_streamed_run_stopped_and_resumed_matches_an_unbroken_one(
    tiny, folder, streamed_run, no_tensorflow, tmp_path, backend
):
    """A streamed run stopped by Ctrl-C (in the middle of its second epoch, unless the machine
    is too busy for the timing) and resumed ends with the same metrics, epoch by epoch, as one
    that ran through. (Keras under `make
    conformance`; `make test` resumes Keras runs on digits.)"""
    unbroken, unbroken_out = streamed_run(backend)
    assert unbroken.returncode == 0, unbroken.stderr
    args = _streamed_args(folder, backend)
    out = tmp_path / "stopped"
    # 3 steps of at least 1 s an epoch: the signal lands in the second epoch's second step,
    # and a busy machine has seconds of slack before the run would end unstopped.
    process = subprocess.Popen(
        [sys.executable, "-m", "resdsl", "train", tiny, *args, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={
            **os.environ,
            **ENV,
            **_streamed_env(backend, no_tensorflow),
            "RESDSL_TRAIN_STEP_SLEEP": "1.0",
        },
    )  # fmt: skip
    checkpoint = out / ("checkpoint.pt" if backend == "torch" else "checkpoint")
    while not ((out / "metrics.jsonl").exists() and checkpoint.exists()):
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    time.sleep(1.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate()
    assert process.returncode == 130, stderr
    assert "interrupted: checkpoint saved" in stdout
    done = train(
        tiny, *args, "--out", str(out), "--resume", extra_env=_streamed_env(backend, no_tensorflow)
    )
    assert done.returncode == 0, done.stderr
    assert "resuming from epoch" in done.stdout
    same_run(read_metrics(out), read_metrics(unbroken_out))


def test_resume_keeps_the_recorded_recipe_and_refuses_another(tiny, folder, streamed_run, tmp_path):
    """`--resume` without the recipe's options takes them from run.json (batch, lr,
    augmentation, averaging: the checkpoint's averaged weights are loaded, not dropped); one
    given with another value is an error naming each, before anything changes."""
    import shutil

    done, unbroken = streamed_run("torch")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "run"
    shutil.copytree(unbroken, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    bad = train(tiny, "--epochs", "4", "--lr", "0.5", "--batch-size", "12", "--out", str(out),
                "--resume")  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "--epochs 3 recorded, --epochs 4 given" in bad.stderr
    assert "--lr 0.05 recorded, --lr 0.5 given" in bad.stderr
    assert "batch-size" not in bad.stderr and "another --out" in bad.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    again = train(tiny, "--out", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert "resuming with the recorded recipe" in again.stdout
    assert "--augment imagenet" in again.stdout and "--ema 0.5" in again.stdout
    assert "batch 12" in again.stdout and "lr 0.05" in again.stdout
    assert "random resized crops and flips" in again.stdout and "EMA 0.5" in again.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["test_acc"] == pytest.approx(json.loads(before["result.json"])["test_acc"])


# --- bad folders ---------------------------------------------------------------------------------


def _tiny_images(root: Path, layout: dict[str, list[str]], count: int = 2) -> Path:
    """`root/SPLIT/CLASS/i.png` for each split and its classes (split "" for the flat layout)."""
    from PIL import Image

    for split, classes in layout.items():
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.new("L", (8, 8), 40 * i).save(root / split / name / f"{i}.png")
    return root


def test_folder_layouts_say_which_split_is_evaluated(tmp_path):
    """train/ alone is held out from (not a class called `train`); with test/ and val/ both,
    val/ chooses and test/ reports; val/ alone has no test split, and the note says so; a
    class only in the evaluation split is an error."""
    from resdsl.train import data

    alone = data.load_folder(str(_tiny_images(tmp_path / "a", {"train": ["x", "y"]}, 10)))
    assert alone.classes == ["x", "y"] and alone.test_name == "held-out"
    assert len(alone.train) == 18 and len(alone.test) == 2
    assert "no test/ or val/ beside it: 10% of each class is held out" in alone.note
    mixed = _tiny_images(tmp_path / "m", {"train": ["x"], "extra": ["x"]})
    with pytest.raises(TrainError, match=r"has `train/` but neither `test/` nor `val/`"):
        data.load_folder(str(mixed))
    both = _tiny_images(tmp_path / "b", {"train": ["x", "y"], "val": ["x"], "test": ["y"]})
    found = data.load_folder(str(both))
    assert found.test_name == "test" and list(found.test.labels) == [1, 1]
    assert list(found.val.labels) == [0, 0] and found.note is None
    val = data.load_folder(str(_tiny_images(tmp_path / "v", {"train": ["x"], "val": ["x"]})))
    assert val.test is None and len(val.val) == 2
    assert (
        val.note == f"`{tmp_path / 'v' / 'val'}` chooses the best epoch and is what the run "
        f"reports: there is no `{tmp_path / 'v' / 'test'}`"
    )
    extra = _tiny_images(tmp_path / "e", {"train": ["x", "y"], "val": ["x", "fish", "y"]})
    with pytest.raises(TrainError, match=r"class folder `.*val/fish` has no counterpart in"):
        data.load_folder(str(extra))


def test_eval_checks_the_recorded_classes_and_names_the_split(tiny, folder, streamed_run, tmp_path):
    """Weights trained on dark/light/mid: a folder of other classes (or more of them) is an
    error listing both; the same classes are evaluated on the split named, without a top-k
    (three classes: top-3 would be 100%), and the split that was not used is named."""
    import shutil

    from train_helpers import in_process

    done, out = streamed_run("torch")
    assert done.returncode == 0, done.stderr
    weights = str(out / "best.pt")
    other = _tiny_images(tmp_path / "other", {"train": ["a", "b", "c"], "test": ["a", "b", "c"]})
    status, _, stderr = in_process("eval", tiny, "--weights", weights, "--data", other)
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "the weights' 3 are dark, light, mid; the data's 3 are a, b, c" in stderr
    more = _tiny_images(tmp_path / "more", {"train": ["blue"], "test": ["blue"]})
    for split in ("train", "test"):
        shutil.copytree(folder / split, more / split, dirs_exist_ok=True)
    status, _, stderr = in_process("eval", tiny, "--weights", weights, "--data", more)
    assert status == 2 and "the data's 4 are blue, dark, light, mid" in stderr, stderr
    same = tmp_path / "same"
    shutil.copytree(folder / "train", same / "train")
    shutil.copytree(folder / "test", same / "val")
    status, stdout, stderr = in_process("eval", tiny, "--weights", weights, "--data", same)
    assert status == 0, stderr
    assert "folder val split, 12 images: top-1 " in stdout
    assert "top-" not in stdout.split("top-1")[1]  # top-3 of three classes says nothing
    shutil.copytree(folder / "test", same / "test")
    status, stdout, stderr = in_process(
        "eval", tiny, "--weights", weights, "--data", same, "--json"
    )
    assert status == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["split"] == "test" and [k for k in metrics if k.startswith("top")] == ["top1"]


def test_an_empty_class_folder_is_a_clear_error(tiny, tmp_path):
    root = _folder(tmp_path / "images", per_class=2, test_per_class=1)
    (root / "train" / "empty").mkdir()
    done = _train(tiny, "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the class folder" in done.stderr and "empty` has no images" in done.stderr


def test_a_corrupt_image_is_named_from_a_loader_worker(folder, tmp_path):
    """An image that cannot be decoded in a DataLoader worker process reaches the trainer as
    one line naming the file, not the worker's traceback."""
    import torch

    from resdsl.train import data
    from resdsl.train.torch_batches import SplitImages, TestBatches, loader_of

    loaded = data.load(str(folder), (3, 16, 16))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    loaded.test.files[2] = str(bad)
    images = SplitImages(loaded.test, (3, 16, 16), "none", training=False, seed=0)
    batches = loader_of(torch, images, TestBatches(len(images), 4, 1, 0), 1, False)
    with pytest.raises(TrainError) as caught:
        list(batches)
    assert str(caught.value).startswith(f"cannot read image `{bad}`")
    assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_corrupt_image_stops_keras_with_its_name_and_keeps_the_run(tmp_path):
    """tf.data does not say which file failed; the trainer finds it and saves first."""
    from resdsl.train import data
    from resdsl.train.keras_trainer import _unreadable

    root = _folder(tmp_path / "images", per_class=2, test_per_class=1)
    loaded = data.load(str(root), (3, 16, 16))
    bad = Path(loaded.train.files[1])
    bad.write_bytes(b"corrupt")
    saved = []

    class Tracker:
        step = 3

    error = _unreadable(
        loaded.train, Tracker(), lambda *a: saved.append(a), 1, ValueError("decode failed")
    )
    assert saved == [(1, 3, [0.0, 0.0, 0.0])]
    assert str(error).startswith(f"cannot read image `{bad}`")
    assert "checkpoint saved at epoch 2, step 3" in str(error)


def test_a_corrupt_image_in_a_folder_is_an_error_before_training(tiny, tmp_path):
    root = _folder(tmp_path / "images", per_class=2, test_per_class=1)
    bad = root / "train" / "mid" / "0.png"
    bad.write_bytes(b"corrupt")
    done = _train(tiny, "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot read image `{bad}`" in done.stderr


# --- fine-tuning from a torchvision checkpoint ---------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        "torch",
        pytest.param("keras", marks=pytest.mark.conformance),
        pytest.param("keras-on-torch", marks=pytest.mark.conformance),
    ],
)
def test_fine_tuning_from_a_torchvision_state_dict(folder, no_tensorflow, tmp_path, backend):
    """`--init` with a file saved from torchvision's resnet18: every tensor but the
    classifier carries over (checked after a step at a negligible learning rate), and the
    1000-class classifier is replaced by one for the folder's 3 classes. (Keras, which ports
    the same file, under `make conformance`; `make test` fine-tunes Keras from a checkpoint.)"""
    import shutil

    import torch
    import torchvision

    for name in ("resnet18.res", "resnet34.res"):
        shutil.copy(ROOT / "specs" / name, tmp_path / name)
    spec = tmp_path / "r18_64.res"
    spec.write_text('network r18_64 extends "resnet18.res" {\n  input 3x64x64\n}\n')
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().state_dict()
    torch.save(reference, tmp_path / "resnet18.pt")
    out = tmp_path / "run"
    done = train(
        str(spec), "--backend", backend.removesuffix("-on-torch"), "--data", str(folder), "--init",
        str(tmp_path / "resnet18.pt"), "--epochs", "1", "--batch-size", "12", "--lr", "1e-12",
        "--augment", "none", "--weight-decay", "0", "--out", str(out),
        extra_env=_streamed_env(backend, no_tensorflow),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the classifier (3 classes) starts fresh" in done.stdout
    if backend == "torch":
        trained = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
        assert tuple(trained["fc.weight"].shape) == (3, 512)
        for key in ("conv1.weight", "layer3.1.conv2.weight", "layer4.0.downsample.0.weight"):
            torch.testing.assert_close(trained[key], reference[key], rtol=0, atol=1e-6)
