"""Writing files so that a failure or a kill never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import tempfile

# A temporary file's name: `.{target}.{pid}.{random}.resdsl-tmp`, beside the target. The pid
# lets a later write to the same target remove what a killed writer left (and only that: a
# live writer's file is kept).
_SUFFIX = ".resdsl-tmp"


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over
    `path`: readers see the old file or the new one, never a mix.

    A symlink is written through: its target is replaced and the link stays. Anything that
    is not a regular file (a FIFO, a device such as /dev/null, a socket) is refused with an
    OSError rather than replaced by a file. The new file has the usual mode of a new file
    (0666 less the umask), never the mode of what was there.
    """
    path = os.path.realpath(os.fspath(path))
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(0, "not a regular file; resdsl replaces only regular files", path)
    folder = os.path.dirname(path) or "."
    name = os.path.basename(path)
    _remove_stale_temporaries(folder, name)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Remove temporary files of earlier writes to `name` whose writer is no longer running."""
    pattern = os.path.join(glob.escape(folder), f".{glob.escape(name)}.*{_SUFFIX}")
    for leftover in glob.glob(pattern):
        pid = os.path.basename(leftover)[len(name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(leftover)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to someone else
        return True
    return True
