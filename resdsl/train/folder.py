"""The run folder: a new one for each run, held by one run at a time, never another's files.

Two runs started together must not share a folder (their epochs would interleave in one
metrics log, one's checkpoints beside the other's run.json). So a new numbered folder is
claimed by creating it (`mkdir` fails for the second of two), and every run holds its folder
for its whole life by an exclusive lock (flock) on OUT/.run.lock, which names its process: a
second run in the same --out, or a `--resume` of a run still going, is refused with that
process's id. The kernel drops the lock when the process ends, however it ends (a kill
included), so a lock file left behind never blocks the next run.

A folder is a run once it holds a checkpoint: before that, nothing in it is lost by starting
over, so a run that failed to start never locks its --out, and a numbered folder that ends
without a checkpoint is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time

from resdsl.files import running
from resdsl.train.common import TrainError

LOCK = ".run.lock"
# What makes a folder an earlier run, which --resume continues and a new run would lose.
EARLIER_RUN = frozenset({"checkpoint.pt", "checkpoint.prev.pt", "checkpoint", "checkpoint.prev"})
# Trained weights and results with no checkpoint beside them (removed by hand): nothing to
# continue, but a new run would write over them.
KEPT_RESULTS = ("best.pt", "best.weights.h5", "result.json")
# What a run writes before its first checkpoint: a run stopped that early (an interrupt while
# loading, a framework failing to start) lost nothing, and a new run may start over it.
STARTED_RUN = frozenset(
    {"run.json", "model.py", "tensorboard", "metrics.jsonl", "curves.png", "curves.svg", LOCK}
)
# A lock held by a process that has not yet written its id (it is about to) is read again.
_ATTEMPTS, _PAUSE_S = 200, 0.01


class Claim:
    """This process's hold on a run folder (nothing, for a process that writes none). With
    `discard`, the folder is removed on release where it holds no checkpoint by then (a new
    numbered folder of a run that never saved one)."""

    def __init__(self, handle=None, discard: str | None = None):
        self._handle = handle
        self._discard = discard

    def release(self) -> None:
        if self._handle is not None:
            if self._discard is not None:
                _remove_if_unstarted(self._discard)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim(out: str, *, discard: bool = False) -> Claim:
    """Hold the existing folder `out` until the process ends or the claim is released (then
    removed, with `discard`, where it holds no checkpoint); a TrainError naming the process
    that holds it already."""
    path = os.path.join(out, LOCK)
    try:
        handle = open(path, "a+b", buffering=0)  # noqa: SIM115 (held for the run's life)
    except OSError as error:
        raise TrainError(f"cannot write `{path}`: {error.strerror or error}") from None
    try:
        _lock(out, handle)
    except BaseException:
        handle.close()
        raise
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n".encode())
    return Claim(handle, discard=out if discard else None)


def refuse_if_running(out: str) -> None:
    """A TrainError naming the process whose run holds `out`; nothing in `out` changes."""
    try:
        handle = open(os.path.join(out, LOCK), "rb")  # noqa: SIM115
    except OSError:  # no lock file: no run holds the folder
        return
    with handle:
        _lock(out, handle)  # released on closing


def _lock(out: str, handle) -> None:
    for _ in range(_ATTEMPTS):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _holder(handle)
            if holder is not None and running(holder):
                raise TrainError(_busy(out, f" (process {holder})")) from None
            time.sleep(_PAUSE_S)
        except OSError as error:  # a file system without locks
            raise TrainError(f"cannot lock `{handle.name}`: {error.strerror or error}") from None
    raise TrainError(_busy(out, ""))


def _busy(out: str, process: str) -> str:
    return (
        f"`{out}` is in use by a running `resdsl train`{process}: wait for it to end (then "
        "--resume continues it), or choose another --out"
    )


def _holder(handle) -> int | None:
    handle.seek(0)
    text = handle.read(32).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def new_run_folder(spec: str, parent: str = "runs") -> tuple[str, Claim]:
    """`runs/NAME-1`, `runs/NAME-2`, ...: the first this process creates, and its claim, which
    removes the folder again where the run ends without a checkpoint."""
    stem = os.path.splitext(os.path.basename(spec))[0] or "run"
    number = 1
    try:
        os.makedirs(parent, exist_ok=True)
        while True:
            out = os.path.join(parent, f"{stem}-{number}")
            try:
                os.mkdir(out)
            except FileExistsError:
                number += 1
                continue
            try:
                return out, claim(out, discard=True)
            except TrainError:
                _remove_if_unstarted(out)
                raise
    except OSError as error:
        raise TrainError(f"cannot create a run folder in `{parent}`: {error.strerror}") from None


def _remove_if_unstarted(out: str) -> None:
    """Remove the folder `out` where it holds nothing but what a run writes before its first
    checkpoint; anything else there (a checkpoint, a file of another's) keeps it all."""
    try:
        names = set(os.listdir(out))
    except OSError:
        return
    if names - STARTED_RUN:
        return
    with contextlib.suppress(OSError):
        for name in sorted(names - {LOCK}):
            path = os.path.join(out, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        if LOCK in names:
            os.unlink(os.path.join(out, LOCK))
        os.rmdir(out)


def check_new_run_folder(out: str, data: str | None) -> None:
    """What :func:`claim_for_new_run` refuses, looked at without creating or changing
    anything: a run holds `out`, it is the data's folder, or it holds an earlier run or other
    files."""
    refuse_data_folder(out, data)
    if os.path.isdir(out):
        refuse_if_running(out)
        _refuse_contents(out)


def claim_for_new_run(out: str, data: str | None) -> Claim:
    """Create (where needed) and hold `out` for a new run; refused, with nothing in it
    changed, where a run holds it, where it is the data's folder, or where it holds anything
    but a run stopped before its first checkpoint."""
    check_new_run_folder(out, data)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise TrainError(f"cannot create `{out}`: {error.strerror or error}") from None
    held = claim(out)
    try:
        _refuse_contents(out)  # again: a run may have written there since the look above
    except TrainError:
        held.release()
        raise
    return held


def _refuse_contents(out: str) -> None:
    names = set(os.listdir(out))
    if names & EARLIER_RUN:
        raise TrainError(
            f"`{out}` holds an earlier run: continue it with --resume, or choose another --out "
            "(without --out, every run gets a new numbered folder under runs/)"
        )
    kept = [name for name in KEPT_RESULTS if name in names]
    if kept:
        raise TrainError(
            f"`{out}` holds `{kept[0]}` of an earlier run but no checkpoint to continue it "
            "from: move it away to start a new run there, or choose another --out"
        )
    foreign = sorted(names - STARTED_RUN)
    if foreign:
        shown = ", ".join(f"`{n}`" for n in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise TrainError(
            f"`{out}` is not empty and holds no resdsl run ({shown}): a new run needs an empty "
            "or new folder; choose another --out"
        )


def refuse_data_folder(out: str, data: str | None) -> None:
    """A run folder that is the data folder or inside it would mix the run's files with the
    images (and, in a folder of class folders, become a class of its own)."""
    if data is None or not os.path.isdir(data):
        return
    run, images = os.path.realpath(out), os.path.realpath(data)
    if run == images:
        raise TrainError(
            f"`{out}` is the data folder: a run writes its checkpoints and logs in a folder of "
            "its own; choose another --out"
        )
    if os.path.commonpath([run, images]) == images:
        raise TrainError(
            f"`{out}` is inside the data folder `{data}`: the run's files would be read as "
            "data; choose an --out outside it"
        )
