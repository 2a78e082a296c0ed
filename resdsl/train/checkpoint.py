"""Checkpoints that survive kills, and the per-epoch metrics log.

A torch checkpoint is one file, OUT/checkpoint.pt, written as every file resdsl writes is
(:func:`resdsl.files.atomic_path`: a temporary beside it, flushed, renamed over it) after the
old one has become OUT/checkpoint.prev.pt: at every moment at least one complete checkpoint
exists. Everything in it is a tensor, a number, a string or a list/dict of those, so it loads
with `torch.load(weights_only=True)`.

A keras checkpoint is a folder (model weights in the Keras `.weights.h5` format, optimizer
variables in an `.npz` without pickles, trainer state in `trainer.json`) swapped in the same
way: OUT/checkpoint/ and OUT/checkpoint.prev/.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import shutil
from collections.abc import Iterator

import numpy as np

from resdsl.files import atomic_path, atomic_write
from resdsl.train.common import TrainError

TORCH_FILE, TORCH_PREV = "checkpoint.pt", "checkpoint.prev.pt"
KERAS_DIR, KERAS_PREV = "checkpoint", "checkpoint.prev"
METRICS = "metrics.jsonl"


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


def _unwritable(out: str, error: BaseException) -> TrainError:
    reason = getattr(error, "strerror", None) or str(error).strip().splitlines()[0]
    return TrainError(
        f"cannot write a checkpoint in `{out}` ({reason}); the previous checkpoint is intact"
    )


# What a failed write raises: OSError from the file system, RuntimeError from torch.save (its
# zip writer reports a full disk as "PytorchStreamWriter failed writing file ...").
_WRITE_ERRORS = (OSError, RuntimeError)


@contextlib.contextmanager
def _writing(out: str, name: str, previous: str | None = None) -> Iterator[str]:
    """:func:`resdsl.files.atomic_path` for OUT/NAME: a failed write (a full disk) leaves the
    files as they were and raises TrainError."""
    _remove_legacy_temporaries(out)
    try:
        with atomic_path(os.path.join(out, name), previous=previous) as temporary:
            yield temporary
    except _WRITE_ERRORS as error:
        raise _unwritable(out, error) from None


def _remove_legacy_temporaries(out: str) -> None:
    """Remove `.checkpoint.*.tmp`, the temporaries of earlier resdsl versions (named without
    their writer's pid). Only the run that holds a run folder writes checkpoints there (see
    `common.claim_folder`), so none of them can be a live writer's."""
    for leftover in glob.glob(os.path.join(glob.escape(out), ".checkpoint.*.tmp")):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(leftover)


# --- torch ------------------------------------------------------------------------------------


def save_torch(out: str, state: dict) -> None:
    """Write `state` as OUT/checkpoint.pt, keeping the previous one as checkpoint.prev.pt. A
    failed write (a full disk) leaves both as they were and raises TrainError."""
    import torch

    with _writing(out, TORCH_FILE, previous=TORCH_PREV) as temporary:
        torch.save(state, temporary)


BEST_TORCH, BEST_KERAS = "best.pt", "best.weights.h5"


def save_best_torch(out: str, state: dict) -> None:
    """OUT/best.pt: the best epoch's model (`model`) and data record (`data`), written
    atomically; `eval`, `predict`, `export --weights` and `train --init` read it."""
    import torch

    with _writing(out, BEST_TORCH) as temporary:
        torch.save(state, temporary)


def load_best_torch(out: str) -> dict | None:
    """OUT/best.pt as :func:`save_best_torch` wrote it, or None where there is none."""
    import torch

    path = os.path.join(out, BEST_TORCH)
    if not os.path.exists(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainError(f"`{path}` is damaged or truncated ({reason})") from None


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
    with _writing(out, KERAS_DIR, previous=KERAS_PREV) as temporary:
        os.mkdir(temporary)
        write(temporary)


def save_best_keras(model, out: str, data_kept: dict | None = None) -> None:
    """OUT/best.weights.h5 (the data record kept in the file, for `eval` and `predict`)."""
    from resdsl.interop.weights import save_keras_weights

    with _writing(out, BEST_KERAS) as temporary:
        save_keras_weights(model, temporary, data_kept)


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
