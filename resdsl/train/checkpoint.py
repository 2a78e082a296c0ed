"""Checkpoints that survive kills, and the per-epoch metrics log.

A torch checkpoint is one file, OUT/checkpoint.pt, written to a temporary file, fsynced and
renamed over the old one after the old one has become OUT/checkpoint.prev.pt: at every
moment at least one complete checkpoint exists. Everything in it is a tensor, a number, a
string or a list/dict of those, so it loads with `torch.load(weights_only=True)`.

A keras checkpoint is a folder (model weights in the Keras `.weights.h5` format, optimizer
variables in an `.npz` without pickles, trainer state in `trainer.json`) swapped in the same
way: OUT/checkpoint/ and OUT/checkpoint.prev/.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile

import numpy as np

from .common import TrainError

TORCH_FILE, TORCH_PREV = "checkpoint.pt", "checkpoint.prev.pt"
KERAS_DIR, KERAS_PREV = "checkpoint", "checkpoint.prev"
METRICS = "metrics.jsonl"


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- RNG states as plain data ----------------------------------------------------------------


def python_rng() -> list:
    version, state, gauss = random.getstate()
    return [version, list(state), gauss]


def set_python_rng(value) -> None:
    version, state, gauss = value
    random.setstate((int(version), tuple(int(s) for s in state), gauss))


def numpy_rng() -> list:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def set_numpy_rng(value) -> None:
    kind, keys, pos, has_gauss, cached = value
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


# --- what a checkpoint holds -----------------------------------------------------------------
# A file that loads (with weights_only, or as JSON) can still lack a field or hold the wrong
# type where one is expected: each is checked before anything is used, so such a file is a
# clear error (exit 2) rather than a traceback halfway through resuming.

_NUMBERS = (int, float)
TORCH_FIELDS = {
    "format": int, "epoch": int, "step": int, "partial": list, "model": dict,
    "optimizer": dict, "scheduler": dict, "rng": dict,
}  # fmt: skip
KERAS_FIELDS = {"format": int, "epoch": int, "step": int, "partial": list, "rng": dict}
RNG_FIELDS = {"python": list, "numpy": list}


def check_fields(state, fields: dict[str, type]) -> None:
    """Raise ValueError naming the first field of `fields` that `state` lacks or mistypes."""
    if not isinstance(state, dict) or state.get("format") != 1:
        raise ValueError("not a resdsl checkpoint")
    for key, kind in fields.items():
        if key not in state:
            raise ValueError(f"no `{key}` field")
        value = state[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ValueError(f"`{key}` is a {type(value).__name__}, not a {kind.__name__}")
    if state["epoch"] < 0 or state["step"] < 0:
        raise ValueError("a negative epoch or step")
    if len(state["partial"]) != 3 or not all(isinstance(v, _NUMBERS) for v in state["partial"]):
        raise ValueError("`partial` is not three numbers")
    for key, kind in RNG_FIELDS.items():
        if not isinstance(state["rng"].get(key), kind):
            raise ValueError(f"`rng.{key}` is missing or not a {kind.__name__}")


def _unwritable(out: str, error: OSError) -> TrainError:
    return TrainError(
        f"cannot write a checkpoint in `{out}` ({error.strerror or error}); the previous "
        "checkpoint is intact"
    )


# --- torch ------------------------------------------------------------------------------------


def save_torch(out: str, state: dict) -> None:
    """Write `state` as OUT/checkpoint.pt, keeping the previous one as checkpoint.prev.pt. A
    failed write (a full disk) leaves both as they were and raises TrainError."""
    import torch

    path, prev = os.path.join(out, TORCH_FILE), os.path.join(out, TORCH_PREV)
    try:
        fd, temporary = tempfile.mkstemp(prefix=".checkpoint.", suffix=".tmp", dir=out)
    except OSError as error:
        raise _unwritable(out, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            os.replace(path, prev)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _unwritable(out, error) from None
        raise
    _fsync_dir(out)


BEST_TORCH, BEST_KERAS = "best.pt", "best.weights.h5"


def save_best_torch(out: str, state: dict) -> None:
    """OUT/best.pt: the best epoch's model (`model`) and data record (`data`), written
    atomically; `eval`, `predict`, `export --weights` and `train --init` read it."""
    import io

    import torch

    from resdsl.files import atomic_write

    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write(os.path.join(out, BEST_TORCH), buffer.getvalue())
    except OSError as error:
        raise _unwritable(out, error) from None


def load_torch(out: str, map_location="cpu") -> dict | None:
    """The latest checkpoint in `out`, or None when there is none; a damaged one is an error
    that says where the previous good one is."""
    import torch

    path, prev = os.path.join(out, TORCH_FILE), os.path.join(out, TORCH_PREV)
    if not os.path.exists(path):
        if not os.path.exists(prev):
            return None
        path = prev  # killed between the two renames: the previous one is the latest
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
        check_fields(state, TORCH_FIELDS)
        if not isinstance(state["rng"].get("torch"), torch.Tensor):
            raise ValueError("`rng.torch` is missing or not a tensor")
    except Exception as error:
        hint = ""
        if path != prev and os.path.exists(prev):
            hint = (
                f"; the previous checkpoint `{prev}` is intact: move it over `{path}` "
                "to resume from it"
            )
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainError(f"checkpoint `{path}` is damaged or truncated ({reason}){hint}") from None
    return state


# --- keras ------------------------------------------------------------------------------------


def save_folder(out: str, write) -> None:
    """Let `write(folder)` fill a fresh temporary folder, then swap it in as OUT/checkpoint,
    keeping the previous one as OUT/checkpoint.prev."""
    path, prev = os.path.join(out, KERAS_DIR), os.path.join(out, KERAS_PREV)
    try:
        temporary = tempfile.mkdtemp(prefix=".checkpoint.", suffix=".tmp", dir=out)
    except OSError as error:
        raise _unwritable(out, error) from None
    try:
        write(temporary)
        for name in os.listdir(temporary):
            fd = os.open(os.path.join(temporary, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(temporary)
        if os.path.isdir(path):
            if os.path.isdir(prev):
                shutil.rmtree(prev)
            os.replace(path, prev)
        os.replace(temporary, path)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, OSError):
            raise _unwritable(out, error) from None
        raise
    _fsync_dir(out)


def latest_folder(out: str) -> str | None:
    path, prev = os.path.join(out, KERAS_DIR), os.path.join(out, KERAS_PREV)
    if os.path.isdir(path):
        return path
    if os.path.isdir(prev):
        return prev
    return None


def damaged(path: str, error: BaseException, prev: str) -> TrainError:
    hint = ""
    if os.path.abspath(path) != os.path.abspath(prev) and os.path.exists(prev):
        hint = (
            f"; the previous checkpoint `{prev}` is intact: move it over `{path}` to resume from it"
        )
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return TrainError(f"checkpoint `{path}` is damaged or truncated ({reason}){hint}")


# --- metrics log ------------------------------------------------------------------------------


def truncate_metrics(out: str, epochs_done: int) -> None:
    """Drop lines of epochs after `epochs_done` (and any torn line) so that a resumed run
    logs each epoch exactly once."""
    path = os.path.join(out, METRICS)
    if not os.path.exists(path):
        return
    keep = [json.dumps(r) + "\n" for r in read_metrics(out) if r.get("epoch", 0) <= epochs_done]
    from resdsl.files import atomic_write

    atomic_write(path, "".join(keep))


def read_metrics(out: str) -> list[dict]:
    """OUT/metrics.jsonl's records, in order; a torn or foreign line is skipped."""
    records = []
    try:
        with open(os.path.join(out, METRICS), encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError:
        return []
    return records


def append_metrics(out: str, record: dict) -> None:
    path = os.path.join(out, METRICS)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def reset_metrics(out: str) -> None:
    path = os.path.join(out, METRICS)
    if os.path.exists(path):
        os.unlink(path)
