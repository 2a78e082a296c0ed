"""Weights files from elsewhere (issue 23, "Weights files"): whatever a `.pt`, `.safetensors`,
`.weights.h5` or `.keras` file holds, `import`, `eval`, `predict`, `export` and `port-weights`
either use it or refuse it in one line naming the file, exit 2: never a traceback, a hang, a
silent wrong answer or an allocation the spec does not call for.

Every case runs through the command line in one worker process (this file run as a script),
which imports the frameworks once and then bounds its own address space (RLIMIT_AS) to what
it uses plus 1.5 GiB, and measures each case's peak resident memory: a case that sizes a model
by a file, or extracts a bomb, fails there instead of taking the machine. The deterministic
cases below run in `make test`; the randomized sweep (`test_random_weights_files`) draws a few
files there and hundreds under `make fuzz` (RESDSL_FUZZ=1).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import random
import shutil
import socket
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from train_helpers import shared_folder, tiny_spec

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"
FUZZ = bool(os.environ.get("RESDSL_FUZZ"))
DRAWN = 600 if FUZZ else 6  # files the randomized sweep draws
HEADROOM = 1536 << 20  # the address space a case may add to the worker's, in bytes
RSS_LIMIT_MB = 400  # the resident memory a case may add (the tiny spec's model is 0.3 MB)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A CIFAR-style ResNet-8 of 10 classes (digits' count), with projection shortcuts.
SPEC = tiny_spec("3x16x16", 10, shortcut="B")


# --------------------------------------------------------------------------- the worker


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _worker(cases_file: str, results_file: str) -> None:
    """Run every case of `cases_file` (argument lists of `resdsl`) in this process, in a bounded
    address space, and write (status, stderr, peak added resident MB) for each."""
    import resource

    import torch  # noqa: F401 - imported before the bound, as the commands will need them
    from click.testing import CliRunner

    from resdsl.cli.main import main
    from resdsl.tf_startup import import_quietly

    import_quietly("keras")
    limit = _vm_kib("VmSize") * 1024 + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with open(results_file, "w") as results:  # a line per case, so a crash names its case
        for args in json.loads(Path(cases_file).read_text()):
            results.write(json.dumps(_run_case(main, CliRunner, args)) + "\n")
            results.flush()


def _run_case(main, runner, args: list[str]) -> dict:
    """`resdsl ARGS` in this process: its status, standard error (with the exception, where
    one escaped: a traceback) and the resident memory it added at its peak, in MB."""
    with contextlib.suppress(OSError):  # resets VmHWM, the peak resident size
        Path("/proc/self/clear_refs").write_text("5")
    before = _vm_kib("VmRSS")
    result = runner().invoke(main, args)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"Traceback: {type(result.exception).__name__}: {result.exception}"
    added = (_vm_kib("VmHWM") - before) / 1024
    return {"status": result.exit_code, "stderr": stderr, "rss_mb": added}


def run_all(cases: list[list[str]], folder: Path) -> list[dict]:
    """Each case's outcome, from one worker process."""
    cases_file, results_file = folder / "cases.json", folder / "results.json"
    cases_file.write_text(json.dumps([[str(a) for a in case] for case in cases]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    # this file, run as a script, imports train_helpers from support/
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, __file__, str(cases_file), str(results_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    results = [json.loads(line) for line in results_file.read_text().splitlines()]
    crashed = cases[len(results)] if len(results) < len(cases) else None
    assert done.returncode == 0, (done.returncode, crashed, done.stderr[-3000:])
    return results


def weights_file(args: list[str]) -> str:
    """The weights file a command line reads."""
    if args[0] == "import":
        return str(args[1])
    if args[0] == "port-weights":
        return str(args[args.index("--from") + 2])
    return str(args[args.index("--weights") + 1])


def refused(outcome: dict, *words: str, status: int = 2) -> None:
    """One line, `error: ...` naming the weights file, exit `status`, with `words` in it;
    within the memory bound."""
    stderr = outcome["stderr"]
    assert outcome["status"] == status, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert f"`{weights_file(outcome['args'])}`" in stderr, stderr
    assert all(word in stderr for word in words), (words, stderr)
    assert outcome["rss_mb"] < RSS_LIMIT_MB, outcome


# --------------------------------------------------------------------------- crafted files


class Files:
    """The tiny spec, its weights in every format, and crafted variants, in one folder."""

    def __init__(self, folder: Path) -> None:
        import numpy as np
        import torch
        from PIL import Image

        import resdsl
        from resdsl.interop import weights

        self.folder = folder
        self.spec = folder / "tiny.res"
        self.spec.write_text(SPEC)
        network = resdsl.load(str(self.spec))
        torch.manual_seed(0)
        self.state = weights.build_generated(network, "torch").build_model().state_dict()
        keras_model = weights.build_generated(network, "keras").build_model()
        self.h5 = folder / "tiny.weights.h5"
        keras_model.save_weights(str(self.h5))
        self.keras = folder / "tiny.keras"
        keras_model.save(str(self.keras))
        self.image = folder / "image.png"
        Image.fromarray(np.full((16, 16, 3), 128, dtype=np.uint8)).save(self.image)

    def path(self, name: str) -> Path:
        return self.folder / name

    def torch_file(self, name: str, state, **options) -> Path:
        import torch

        torch.save(state, self.path(name), **options)
        return self.path(name)

    def edited(self, name: str, **changes):
        """A copy of the state dict with `changes` (None removes a tensor)."""
        state = dict(self.state)
        for key, value in changes.items():
            if value is None:
                state.pop(key)
            else:
                state[key] = value
        return state

    @contextlib.contextmanager
    def h5_copy(self, name: str):
        """A copy of the Keras weights, open for editing."""
        import h5py

        target = self.path(name)
        shutil.copy(self.h5, target)
        with h5py.File(target, "a") as handle:
            yield handle

    def archive(self, name: str, member: bytes, method: int = zipfile.ZIP_STORED) -> Path:
        """A `.keras` archive with the Keras one's other members and `member` as its weights."""
        target = self.path(name)
        with zipfile.ZipFile(self.keras) as source, zipfile.ZipFile(target, "w") as out:
            for info in source.infolist():
                if info.filename != "model.weights.h5":
                    out.writestr(info, source.read(info))
            out.writestr(zipfile.ZipInfo("model.weights.h5"), member, compress_type=method)
        return target

    def commands(self, file: Path, framework: str = "torch") -> dict[str, list]:
        """The command lines that read `file` as trained weights, by name."""
        spec, out = self.spec, self.folder / "out"
        other = "keras" if framework == "torch" else "torch"
        suffix = ".weights.h5" if other == "keras" else ".pt"
        return {
            "import": ["import", file],
            "export": ["export", spec, "--weights", file, "-o", f"{out}.onnx"],
            "eval": ["eval", spec, "--weights", file, "--data", "digits"],
            "predict": ["predict", spec, self.image, "--weights", file, "--data", "digits"],
            "port-weights": [
                "port-weights", spec, "--from", framework, file, "--to", other, f"{out}{suffix}"
            ],
        }  # fmt: skip


def _zip_method(path: Path, method: int, flags: int = 0) -> None:
    """Rewrite a zip's `model.weights.h5` headers (local and central) to say `method` and
    `flags`, leaving the bytes: an encrypted or deflate64 member Python's zipfile did not
    write."""
    data = bytearray(path.read_bytes())
    name = b"model.weights.h5"
    for signature, at_flags in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            offset = 30 if signature == b"PK\x03\x04" else 46
            if data[start + offset : start + offset + len(name)] == name:
                old = struct.unpack("<H", data[start + at_flags : start + at_flags + 2])[0]
                data[start + at_flags : start + at_flags + 4] = struct.pack(
                    "<HH", old | flags, method
                )
            start += 4
    path.write_bytes(bytes(data))


class _Marker:
    pass


def _legacy_lie(path: Path, numel: int) -> Path:
    """A legacy-format torch.save file whose one storage declares `numel` floats and holds 4."""
    import collections

    import torch
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    marker = _Marker()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is marker:
                return ("storage", torch.FloatStorage, "0", "cpu", numel, None)
            return None

    class Tensor:
        def __reduce__(self):
            rebuild = torch._utils._rebuild_tensor_v2
            return (rebuild, (marker, 0, (numel,), (1,), False, collections.OrderedDict()))

    buffer = io.BytesIO()
    sizes = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    for value in (MAGIC_NUMBER, PROTOCOL_VERSION, sizes):
        pickle.dump(value, buffer, protocol=2)
    Pickler(buffer, protocol=2).dump(collections.OrderedDict({"fc.weight": Tensor()}))
    pickle.dump(["0"], buffer, protocol=2)
    buffer.write(struct.pack("<q", 4) + bytes(16))
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Files:
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    return Files(tmp_path_factory.mktemp("weights"))


# The commands a crafted Keras file goes through: `import` reads it alone, `export` against the
# spec (as eval, predict and port-weights do, through the same reader).
READERS = ("import", "export")


# Cases: (name, command line, what the one line says) per finding, run in one worker.
def _cases(f: Files) -> dict[str, tuple[list, tuple[str, ...], int]]:
    import h5py
    import numpy as np
    import torch

    cases: dict[str, tuple[list, tuple[str, ...], int]] = {}

    def add(name: str, args: list, *words: str, status: int = 2) -> None:
        cases[name] = (args, words, status)

    # ---- sizes come from the spec, not the file
    stride0 = f.torch_file(
        "stride0.pt",
        f.edited(
            "",
            **{
                "fc.weight": torch.zeros(1, 64).expand(5_000_000, 64),
                "fc.bias": torch.zeros(1).expand(5_000_000),
            },
        ),
    )
    for command in ("export", "port-weights", "predict"):
        add(f"stride0-{command}", f.commands(stride0)[command], "declares 5,000,000 classes")
    meta = f.torch_file(
        "meta.pt", f.edited("", **{"fc.weight": torch.empty(400_000, 64, device="meta")})
    )
    add("meta-export", f.commands(meta)["export"], "`fc.weight` is a meta tensor")
    huge = f.torch_file("huge.pt", {"fc.weight": torch.empty(2**40, 64, device="meta")})
    add("meta-huge-eval", f.commands(huge)["eval"], "meta tensor")
    add("meta-huge-import", f.commands(huge)["import"], "meta tensor")
    lie = _legacy_lie(f.path("legacy_lie.pt"), 2**33)
    add("legacy-storage-lie", f.commands(lie)["export"], "declare 34,359,738,368 bytes")
    add("legacy-storage-lie-import", f.commands(lie)["import"], "declare 34,359,738,368 bytes")
    short = f.path("short_record.pt")
    whole = f.torch_file("whole.pt", f.state)
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(short, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            out.writestr(info, data[:8] if info.filename.endswith("/data/0") else data)
    add("zip-record-short", f.commands(short)["export"], "storage `0` declares", "holds 8")
    with f.h5_copy("wide.weights.h5") as handle:
        vars_ = handle["layers/dense/vars"]
        del vars_["0"], vars_["1"]
        vars_.create_dataset("0", shape=(64, 5_000_000), dtype="f4", chunks=(64, 4096))
        vars_.create_dataset("1", shape=(5_000_000,), dtype="f4", chunks=(4096,))
    wide = f.path("wide.weights.h5")
    add("h5-wide-port", f.commands(wide, "keras")["port-weights"], "declares 5,000,000 classes")
    add("h5-wide-eval", f.commands(wide, "keras")["eval"], "declares 5,000,000 classes")

    # ---- crafted Keras files
    def h5_case(name: str, edit, words: str, fit: str | None = None, commands=READERS):
        """A crafted copy of the Keras weights through `commands`: `import` says `words`, the
        others (which compare the file with the spec's layout) `fit`, or `words`."""
        with f.h5_copy(f"{name}.weights.h5") as handle:
            edit(handle, handle["layers/conv2d/vars"])
        lines = f.commands(f.path(f"{name}.weights.h5"), "keras")
        for command in commands:
            said = words if command == "import" or fit is None else fit
            add(f"h5-{name}-{command}", lines[command], said)

    def replace(vars_, value=None, **options):
        del vars_["0"]
        if value is not None:
            vars_["0"] = value
        else:
            vars_.create_dataset("0", **options)

    h5_case("scalar", lambda h, v: replace(v, data=np.float32(1)), "holds ()", "is ()")
    h5_case("vector", lambda h, v: replace(v, data=np.zeros(16, "f4")), "holds (16,)", "(16,)")
    h5_case(
        "group-for-dataset",
        lambda h, v: (v.__delitem__("0"), v.create_group("0")),
        "`layers/conv2d/vars/0` is not where Keras keeps",
    )

    def dataset_for_group(handle, variables):
        del handle["layers/conv2d/vars"]
        handle["layers/conv2d"].create_dataset("vars", data=np.zeros(3, "f4"))

    h5_case(
        "dataset-for-group",
        dataset_for_group,
        "`layers/conv2d/vars` is not where Keras keeps",
    )
    h5_case(
        "dangling-soft-link", lambda h, v: replace(v, h5py.SoftLink("/nowhere")), "is a soft link"
    )
    h5_case(
        "missing-external-link",
        lambda h, v: replace(v, h5py.ExternalLink("missing.h5", "/x")),
        "is an external link",
    )
    h5_case(
        "passwd-external-link",
        lambda h, v: replace(v, h5py.ExternalLink("/etc/passwd", "/")),
        "is an external link",
        commands=(*READERS, "port-weights", "eval"),
    )
    h5_case(
        "soft-link-loop",
        lambda h, v: replace(v, h5py.SoftLink("/layers/conv2d/vars/0")),
        "is a soft link",
    )
    h5_case(
        "hard-link-cycle",
        lambda h, v: v.__setitem__("loop", h["layers"]),
        "linked from more than one place",
        commands=(*READERS, "predict"),
    )
    h5_case("null-dataspace", lambda h, v: replace(v, data=h5py.Empty("f4")), "no dataspace")
    h5_case(
        "string-dtype",
        lambda h, v: replace(v, data=np.array([b"x" * 8] * 16)),
        "not floating-point",
    )
    compound = np.zeros(4, dtype=[("a", "f4"), ("b", "i4")])
    h5_case("compound-dtype", lambda h, v: replace(v, data=compound), "not floating-point")
    h5_case(
        "int-dtype",
        lambda h, v: replace(v, data=np.zeros((3, 3, 3, 16), "i4")),
        "not floating-point",
    )
    h5_case(
        "external-storage",
        lambda h, v: replace(
            v, shape=(3, 3, 3, 16), dtype="f4", external=[("/etc/passwd", 0, 1728)]
        ),
        "keeps its data in other files",
    )

    def virtual(h, v):
        layout = h5py.VirtualLayout(shape=(3, 3, 3, 16), dtype="f4")
        layout[...] = h5py.VirtualSource("other.h5", "data", shape=(3, 3, 3, 16))
        del v["0"]
        v.create_virtual_dataset("0", layout)

    h5_case("virtual", virtual, "keeps its data in other files")
    h5_case(
        "record-not-text",
        lambda h, v: h.attrs.__setitem__("resdsl_data", 5),
        "`resdsl_data` attribute is not text",
        commands=("export", "predict"),
    )
    h5_case(
        "nan",
        lambda h, v: v["0"].__setitem__((0, 0, 0, 0), np.nan),
        "holds NaN",
        commands=("export", "port-weights"),
    )

    # ---- crafted .keras archives
    member = f.h5.read_bytes()
    encrypted = f.archive("encrypted.keras", member)
    _zip_method(encrypted, zipfile.ZIP_STORED, flags=0x1)
    add("keras-encrypted", ["import", encrypted], "encrypted")
    deflate64 = f.archive("deflate64.keras", member)
    _zip_method(deflate64, 9)
    add("keras-deflate64", ["import", deflate64], "method 9")
    for method, name in ((zipfile.ZIP_DEFLATED, "zlib"), (zipfile.ZIP_LZMA, "lzma")):
        damaged = f.archive(f"{name}.keras", member, method)
        data = bytearray(damaged.read_bytes())
        at = data.find(b"model.weights.h5") + len("model.weights.h5") + 200
        data[at : at + 64] = bytes(64)
        damaged.write_bytes(bytes(data))
        add(f"keras-corrupt-{name}", ["import", damaged], "damaged")
    nested = f.archive("nested.keras", zip_bytes({"inner.txt": b"hello"}))
    add("keras-nested-zip", ["import", nested], "`model.weights.h5` is a zip archive")
    # A deflated member that declares a gigabyte (Keras' own loader would read it whole).
    bomb = f.archive("bomb.keras", zlib.compress(bytes(1 << 20)), zipfile.ZIP_STORED)
    _zip_sizes(bomb, compressed=len(zlib.compress(bytes(1 << 20))), size=1 << 30)
    _zip_method(bomb, zipfile.ZIP_DEFLATED)
    add("keras-bomb", ["import", bomb], "decompression bomb")

    # ---- state dicts with odd contents
    add(
        "int-key",
        f.commands(f.torch_file("int_key.pt", {**f.state, 3: torch.zeros(1)}))["export"],
        "a key 3",
    )
    tuple_key = f.torch_file("tuple_key.pt", {**f.state, ("fc", "x"): torch.zeros(1)})
    for command in ("import", "predict", "export"):
        add(f"tuple-key-{command}", f.commands(tuple_key)[command], "a key ('fc', 'x')")
    record = f.torch_file("record.pt", {"model": f.state, "data": {"mean": "x", "std": [1, 1, 1]}})
    add("record-wrong-type", f.commands(record)["predict"], "`mean` is 'x'")
    nan = f.torch_file("nan.pt", f.edited("", **{"fc.weight": torch.full((10, 64), float("nan"))}))
    add("nan-predict", f.commands(nan)["predict"], "`fc.weight` holds NaN")
    inf = f.torch_file("inf.pt", f.edited("", **{"conv1.weight": f.state["conv1.weight"] / 0}))
    add("inf-export", f.commands(inf)["export"], "`conv1.weight` holds NaN or infinite")
    for dtype in (torch.complex64, torch.int8, torch.bool):
        name = str(dtype).removeprefix("torch.")
        odd = f.torch_file(
            f"{name}.pt", f.edited("", **{"fc.weight": f.state["fc.weight"].to(dtype)})
        )
        add(f"dtype-{name}", f.commands(odd)["export"], f"`fc.weight` holds {name} values")
    sparse = f.torch_file(
        "sparse.pt", f.edited("", **{"fc.weight": f.state["fc.weight"].to_sparse()})
    )
    add("sparse", f.commands(sparse)["export"], "`fc.weight` is sparse")

    # ---- names from files reach the terminal escaped
    title = f.torch_file(
        "title.pt",
        {**f.edited("", **{"fc.bias": None}), "fc.bias\x1b]0;pwned\x07": f.state["fc.bias"]},
    )
    add("escape-in-name", f.commands(title)["export"], "fc.bias␛]0;pwned␇")
    forged = f.torch_file(
        "forged.pt",
        {**f.edited("", **{"fc.bias": None}), "fc.bias\nerror: forged": f.state["fc.bias"]},
    )
    add("newline-in-name", f.commands(forged)["port-weights"], "fc.bias␊error: forged")
    from safetensors.numpy import save_file

    save_file(
        {"conv1.weight\x1b[2J": np.zeros((4, 3, 3, 3), "f4")}, str(f.path("title.safetensors"))
    )
    # readable, but no ResNet: `import`'s status for a network it cannot describe
    title = f.path("title.safetensors")
    add("escape-in-safetensors", ["import", title], "conv1.weight␛[2J", status=1)

    # ---- the tiny spec's own weights, in every format, through every command
    legacy = f.torch_file("legacy.pt", f.state, _use_new_zipfile_serialization=False)
    good = f.torch_file("good.pt", f.state)
    for label, file, framework in (
        ("pt", good, "torch"),
        ("legacy", legacy, "torch"),
        ("h5", f.h5, "keras"),
    ):
        for command, args in f.commands(file, framework).items():
            add(f"good-{label}-{command}", args, status=0)
    add("good-keras-import", ["import", f.keras], status=0)
    if not FUZZ:  # `make fuzz` draws its own, many more
        for index, args in enumerate(_drawn(f, DRAWN)):
            add(f"drawn-{index}", args, status=-1)
    return cases


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _zip_sizes(path: Path, compressed: int, size: int) -> None:
    """Rewrite `model.weights.h5`'s declared sizes (local and central headers)."""
    data = bytearray(path.read_bytes())
    name = b"model.weights.h5"
    for signature, at, offset in ((b"PK\x03\x04", 18, 30), (b"PK\x01\x02", 20, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + offset : start + offset + len(name)] == name:
                data[start + at : start + at + 8] = struct.pack("<II", compressed, size)
            start += 4
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    """Every case's outcome, run once for the session whichever worker asks first (the files
    and the runs take half a minute), read by each test from the JSON it left."""

    pytest.importorskip("torch")
    pytest.importorskip("keras")

    def make(folder: Path) -> None:
        (folder / "weights").mkdir()
        cases = _cases(Files(folder / "weights"))
        (folder / "run").mkdir()
        results = run_all([args for args, _, _ in cases.values()], folder / "run")
        outcome = {
            name: {**result, "args": [str(a) for a in args], "words": words, "expected": status}
            for (name, (args, words, status)), result in zip(cases.items(), results, strict=True)
        }
        (folder / "outcomes.json").write_text(json.dumps(outcome))

    folder = shared_folder(tmp_path_factory, "weights-files", make)
    return json.loads((folder / "outcomes.json").read_text())


def _check(outcomes: dict, prefix: str) -> None:
    chosen = {name: o for name, o in outcomes.items() if name.startswith(prefix)}
    assert chosen, prefix
    for outcome in chosen.values():
        refused(outcome, *outcome["words"], status=outcome["expected"])


# --------------------------------------------------------------------------- the findings


def test_sizes_are_checked_against_the_spec_before_a_model_is_built(outcomes):
    """A file's declared classes and shapes are compared with the spec's before a model is
    built or data read: a stride-0 (5,000,000, 64) classifier, a Keras kernel declaring 5
    million classes, a meta tensor of 2^40 rows, storages that declare more than the file."""
    for prefix in ("stride0", "meta", "legacy-storage-lie", "zip-record-short", "h5-wide"):
        _check(outcomes, prefix)


@pytest.mark.parametrize(
    "case",
    [
        "scalar", "vector", "group-for-dataset", "dataset-for-group", "dangling-soft-link",
        "missing-external-link", "passwd-external-link", "soft-link-loop", "hard-link-cycle",
        "null-dataspace", "string-dtype", "compound-dtype", "int-dtype", "external-storage",
        "virtual", "record-not-text", "nan",
    ],
)  # fmt: skip
def test_crafted_keras_weights_are_one_line_errors(outcomes, case):
    _check(outcomes, f"h5-{case}-")


def test_crafted_keras_archives_are_one_line_errors_read_within_a_bound(outcomes):
    """Encrypted, deflate64, damaged zlib and LZMA members, a nested zip (named as one, not as
    "torch"), a member that declares a gigabyte: refused before anything is extracted."""
    _check(outcomes, "keras-")


def test_state_dicts_with_odd_contents_are_refused_naming_the_tensor(outcomes):
    for prefix in ("int-key", "tuple-key", "record-wrong-type", "nan-", "inf-", "dtype-", "sparse"):
        _check(outcomes, prefix)


def test_names_from_files_reach_the_terminal_escaped(outcomes):
    _check(outcomes, "escape-")
    _check(outcomes, "newline-")
    for name in ("escape-in-name", "newline-in-name", "escape-in-safetensors"):
        assert "\x1b" not in outcomes[name]["stderr"] and "\x07" not in outcomes[name]["stderr"]


def test_good_files_still_work_and_integer_step_counters_are_kept(files, outcomes):
    """The tiny spec's own weights, in every format, through every command: batch norm's
    int64 `num_batches_tracked` is no reason to refuse; a legacy-format file loads too; a
    `.keras` archive imports from its stored member."""
    import torch

    assert files.state["bn1.num_batches_tracked"].dtype == torch.int64
    good = {name: outcome for name, outcome in outcomes.items() if name.startswith("good-")}
    assert len(good) == 16
    for name, outcome in good.items():
        assert outcome["status"] == 0, (name, outcome["stderr"])
        assert "Traceback" not in outcome["stderr"], (name, outcome["stderr"])
        assert outcome["rss_mb"] < RSS_LIMIT_MB, (name, outcome)


def test_timm_names_outside_the_registry_never_reach_the_network(monkeypatch):
    """`timm:hf-hub:owner/name` (or `local-dir:`) asks timm for a configuration from the Hub:
    refused before timm is asked, exit 2."""
    pytest.importorskip("timm")
    from train_helpers import in_process

    attempts = []

    def connect(self, address, *args):
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for source in ("timm:hf-hub:owner/name", "timm:local-dir:/etc"):
        status, stdout, stderr = in_process("import", source)
        assert status == 2 and stdout == "", stderr
        assert "is not a model of timm's registry" in stderr and stderr.count("\n") == 1, stderr
    assert attempts == []
    status, stdout, _ = in_process("import", "timm:resnet18")
    assert status == 0 and "network resnet18" in stdout


def test_an_import_path_with_a_newline_stays_in_the_header_comment():
    import resdsl
    from resdsl.driver import analyze_text
    from resdsl.interop.import_sources import Source
    from resdsl.interop.importer import infer
    from resdsl.interop.weights import state_dict_shapes

    network = resdsl.load(SPEC)
    shapes = {k: v for k, v in state_dict_shapes(network).items() if "num_batches" not in k}
    imported = infer(Source("runs/a\nnetwork x {\n.pt", shapes), "tiny", (3, 16, 16))
    result = analyze_text(imported.text, "tiny.res")
    assert result.ok, result.diagnostics
    assert imported.text.splitlines()[0].startswith("# Imported by resdsl")


# --------------------------------------------------------------------------- the sweep


RECORDS = [
    None,
    {"mean": [0.5] * 3, "std": [0.2] * 3, "classes": list("abcdefghij")},
    {"mean": 1},
    {"mean": [0.5] * 3, "std": [0.0] * 3},
    {"mean": [0.5] * 3, "std": [0.2] * 3, "classes": ["a\x1b[2J"] * 3},
]


def _mutations(f: Files, rng: random.Random, index: int) -> tuple[Path, str]:
    """One randomly crafted weights file and the framework it claims to be."""
    kind = rng.choice(["pt", "pt-legacy", "pt-bytes", "h5", "h5-bytes", "keras", "safetensors"])
    path = f.path(f"drawn{index}")
    if kind.startswith("pt"):
        import torch

        state = _drawn_state(f, rng)
        data = rng.choice([state, {"model": state, "data": rng.choice(RECORDS)}])
        file = path.with_suffix(".pt")
        torch.save(data, file, _use_new_zipfile_serialization=kind != "pt-legacy")
        if kind == "pt-bytes":
            _flip(file, rng)
        return file, "torch"
    if kind.startswith("h5"):
        file = path.with_suffix(".weights.h5")
        with f.h5_copy(file.name) as handle:
            for _ in range(rng.randint(1, 3)):
                _edit_h5(handle, rng)
        if kind == "h5-bytes":
            _flip(file, rng)
        return file, "keras"
    if kind == "keras":
        member = bytearray(f.h5.read_bytes())
        if rng.random() < 0.5:
            _flip_bytes(member, rng)
        methods = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
        file = f.archive(f"drawn{index}.keras", bytes(member), rng.choice(methods))
        if rng.random() < 0.5:
            _flip(file, rng)
        return file, "keras"
    import torch
    from safetensors.numpy import save_file

    file = path.with_suffix(".safetensors")
    tensors = {
        k: v.contiguous().numpy()
        for k, v in _drawn_state(f, rng).items()
        if isinstance(v, torch.Tensor) and not v.is_meta and v.numel() < 1_000_000
    }
    save_file(tensors, str(file))
    _flip(file, rng)
    return file, "torch"


def _drawn_state(f: Files, rng: random.Random) -> dict:
    """The tiny spec's state dict with one to three tensors replaced (other shapes, dtypes,
    expanded or meta), renamed (control characters), replaced by non-tensors, or removed."""
    import torch

    state = dict(f.state)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(state))
        shape = tuple(rng.choice([0, 1, 3, 10, 64, 2**20]) for _ in range(rng.randint(0, 4)))
        dtype = rng.choice([torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool])
        numel = 1
        for n in shape:
            numel *= n
        choice = rng.random()
        if choice < 0.3:
            small = numel < 1_000_000
            state[key] = torch.zeros(shape, dtype=dtype, device="cpu" if small else "meta")
        elif choice < 0.5:
            state[key] = torch.zeros(1, dtype=dtype).expand(shape) if shape else torch.zeros(())
        elif choice < 0.6:
            state[key + rng.choice(["\x1b[1m", "\n", ""])] = state.pop(key)
        elif choice < 0.7:
            state[key] = rng.choice([1, "x", None, [1, 2], {"a": torch.zeros(1)}])
        else:
            state.pop(key)
    return state


def _edit_h5(handle, rng: random.Random) -> None:
    """One edit of a Keras weights file: a dataset of another shape or dtype, a soft or
    external link, a second hard link, a data record, a removal."""
    import h5py

    names: list[str] = []
    handle.visit(names.append)
    if not names:
        return
    target = rng.choice(names)
    parent, _, leaf = target.rpartition("/")
    group = handle[parent] if parent else handle
    choice = rng.random()
    with contextlib.suppress(KeyError, ValueError, OSError, TypeError, RuntimeError):
        if choice < 0.3 and isinstance(group.get(leaf), h5py.Dataset):
            del group[leaf]
            sizes = [1, 3, 16, 64, 10, 5_000_000]
            shape = tuple(rng.choice(sizes) for _ in range(rng.randint(0, 4)))
            dtype = rng.choice(["f4", "f2", "i4"])
            group.create_dataset(leaf, shape=shape, dtype=dtype, chunks=True if shape else None)
        elif choice < 0.45:
            del group[leaf]
            links = [h5py.SoftLink("/" + rng.choice(names)), h5py.ExternalLink("/etc/passwd", "/")]
            group[leaf] = rng.choice(links)
        elif choice < 0.55:
            group[leaf + "_again"] = handle[rng.choice(names)]
        elif choice < 0.65:
            text = rng.choice(["{", json.dumps(RECORDS[1]), json.dumps(RECORDS[3]), "[1]"])
            handle.attrs["resdsl_data"] = text
        else:
            del group[leaf]


def _flip(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    _flip_bytes(data, rng)
    path.write_bytes(bytes(data[: rng.choice([len(data), len(data), rng.randrange(1, len(data))])]))


def _flip_bytes(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        data[at] = rng.randrange(256)


def _drawn(f: Files, count: int) -> list[list[str]]:
    """`count` command lines, each reading a file drawn by :func:`_mutations`."""
    rng = random.Random(int(os.environ.get("RESDSL_FUZZ_SEED", "23")))
    cases = []
    for index in range(count):
        file, framework = _mutations(f, rng, index)
        commands = f.commands(file, framework)
        cases.append([str(a) for a in commands[rng.choice(sorted(commands))]])
    return cases


def test_random_weights_files_work_or_fail_in_one_line(files, outcomes, tmp_path):
    """Drawn files (state dicts of odd shapes, dtypes, names and values; Keras files with
    links, aliases, new shapes and records; flipped and truncated bytes of every format)
    through every command: each works (exit 0; `import` may also say the file is no ResNet,
    exit 1) or is one line naming the file, exit 2, within the memory bound."""
    if FUZZ:
        cases = _drawn(files, DRAWN)
        drawn = [{**o, "args": c} for o, c in zip(run_all(cases, tmp_path), cases, strict=True)]
    else:
        drawn = [o for name, o in outcomes.items() if name.startswith("drawn-")]
    assert len(drawn) == DRAWN
    for outcome in drawn:
        case, stderr = outcome["args"], outcome["stderr"]
        assert "Traceback" not in stderr, (case, stderr)
        assert outcome["rss_mb"] < RSS_LIMIT_MB, (case, outcome)
        if outcome["status"] == 0:
            continue
        lines = [line for line in stderr.splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, stderr)
        # the weights file is named, or the data whose classes are not the weights'
        assert f"`{weights_file(case)}`" in stderr or "`digits`" in stderr, (case, stderr)
        allowed = {2} | ({1} if case[0] == "import" and "cannot import" in stderr else set())
        assert outcome["status"] in allowed, (case, stderr)
        assert "memory" not in stderr and "allocate" not in stderr, (case, stderr)


if __name__ == "__main__":
    _worker(*sys.argv[1:3])
