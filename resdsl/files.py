"""Writing files so that a failure or a kill never leaves a half-written one behind.

One mechanism serves every file resdsl writes, and training checkpoints (a file or, for Keras, a
folder): the new version is written inside a temporary folder beside its target, named
`.{target}.{pid}.{random}.resdsl-tmp`, flushed to disk, then renamed over the target. Readers see
the old version or the new one, never a mix. The pid lets a later write to the same target
remove what a killed writer left (and only that: a live writer's folder is kept). A folder
rather than a file, because some writers insist on choosing the name they write (Keras wants
`*.weights.h5`) or make temporaries of their own: whatever they leave goes with the folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import stat
from collections.abc import Iterator

_SUFFIX = ".resdsl-tmp"


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` as the file at `path` (see :func:`atomic_path`).

    A symlink is written through: its target is replaced and the link stays. Anything that
    is not a regular file (a FIFO, a device such as /dev/null, a socket) is refused with an
    OSError rather than replaced by a file.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as temporary, open(temporary, "xb") as handle:
        handle.write(payload)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, previous: str | None = None) -> Iterator[str]:
    """A path for the caller to write the new `path` at (a file, or a folder it creates);
    when the block ends without an error, everything written there is flushed to disk and
    renamed over `path`. An error or a kill leaves `path` as it was.

    `previous`: the version at `path` is first renamed to this name beside it (a folder
    there is replaced), so that one complete version exists at every moment. Every file
    and folder written gets the usual mode of a new one (0666, or 0777 for a folder, less the
    umask), never the mode of what was there nor the private one some writers create with.
    """
    path = os.path.realpath(os.fspath(path))
    mode = os.stat(path).st_mode if os.path.exists(path) else None
    # A folder is replaced only where the caller keeps it as `previous` (a Keras checkpoint).
    if mode is not None and not (stat.S_ISREG(mode) or (previous and stat.S_ISDIR(mode))):
        raise OSError(0, "not a regular file; resdsl replaces only regular files", path)
    folder, name = os.path.split(path)
    remove_stale_temporaries(folder, name)
    temporary = _make_temporary(folder, name)
    try:
        target = os.path.join(temporary, name)
        yield target
        _settle(target)
        if previous is not None and os.path.lexists(path):
            kept = os.path.join(folder, previous)
            if os.path.isdir(kept) and not os.path.islink(kept):
                shutil.rmtree(kept)
            os.replace(path, kept)
        os.replace(target, path)
        _fsync(folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _make_temporary(folder: str, name: str) -> str:
    """A new folder `.{name}.{pid}.{random}.resdsl-tmp` in `folder` (mkdir: exclusive)."""
    while True:
        temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}{_SUFFIX}")
        try:
            os.mkdir(temporary, 0o700)  # private while being written; the result is not
            return temporary
        except FileExistsError:
            continue


def _settle(target: str) -> None:
    """Give what was written at `target` the modes of new files and folders, and flush it."""
    file_mode, folder_mode = new_modes()
    if os.path.isdir(target):
        for root, folders, files in os.walk(target):
            for file in files:
                _settle_file(os.path.join(root, file), file_mode)
            for child in folders:
                os.chmod(os.path.join(root, child), folder_mode)
            _fsync(root)
        os.chmod(target, folder_mode)
    else:
        _settle_file(target, file_mode)


def _settle_file(path: str, mode: int) -> None:
    os.chmod(path, mode)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(folder: str) -> None:
    """Flush a folder's entries (the renames in it), where the system allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def new_modes() -> tuple[int, int]:
    """(file, folder) modes that `open` and `mkdir` give new ones: 0666 and 0777 less the
    umask. Read from /proc where it says: setting the umask to read it back changes it for
    every thread of the process meanwhile."""
    mask = None
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        mask = next((int(line.split()[1], 8) for line in status if line.startswith("Umask:")), None)
    if mask is None:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask, 0o777 & ~mask


def remove_stale_temporaries(folder: str, name: str) -> None:
    """Remove temporaries of earlier writes to `name` whose writer is no longer running."""
    pattern = os.path.join(glob.escape(folder), f".{glob.escape(name)}.*{_SUFFIX}")
    for leftover in glob.glob(pattern):
        pid = os.path.basename(leftover)[len(name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not running(int(pid)):
            if os.path.isdir(leftover) and not os.path.islink(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(leftover)


def running(pid: int) -> bool:
    """Whether a process `pid` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to someone else
        return True
    return True
