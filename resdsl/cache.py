"""A private, per-user cache folder for what one resdsl process can reuse from another (the
backends' compiled templates).

What is cached there is loaded as code, so a folder is used only when nobody else can write
to it: it lies under `$XDG_CACHE_HOME` (or `~/.cache`), belongs to the current user, is a real
folder (not a link) and is writable by no group or other user. When no such folder can be had
(a read-only home, a foreign owner, no POSIX user ids), callers get None and simply do the work
again: the cache costs nothing when it is missing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def user_cache_dir(name: str) -> Path | None:
    """The private folder `<cache home>/resdsl/<name>`, created if need be; None when there
    is no safe one."""
    if not hasattr(os, "getuid"):
        return None
    home = os.environ.get("XDG_CACHE_HOME", "")
    try:
        base = Path(home) if os.path.isabs(home) else Path.home() / ".cache"
        folder = base / "resdsl"
        base.mkdir(parents=True, exist_ok=True)
        for path in (folder, folder / name):
            path.mkdir(mode=0o700, exist_ok=True)
            if not _is_private(path):  # nothing is made inside a folder that is not private
                return None
    except (OSError, RuntimeError):  # RuntimeError: no home directory to be found
        return None
    return folder / name


def _is_private(path: Path) -> bool:
    info = path.lstat()
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
