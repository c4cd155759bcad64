"""Files written safely: atomic writes, one permission policy, inter-process locks, the cache.

An atomic write goes to a temp file in the target's folder, is fsynced and renamed over the
target, so a reader (or a kill at any moment) sees the old file or the whole new one, never a
part. Every such file gets the mode a file the user creates gets (:func:`ordinary_file_mode`),
so a shared cache or results folder stays readable by others.

Temp files are named after their target, so code that cleans up after killed writes can find
them: ``.<name>.<random>.tmp`` (:func:`atomic_write_bytes`) and ``.<stem>.<random><suffix>``
(:func:`atomic_write_with`, :func:`atomic_save`: the writer sees the target's suffix).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock


def cache_dir() -> Path:
    """ganbench's cache folder: ``$GANBENCH_CACHE`` if set (and not empty), else
    ``~/.cache/ganbench``; read at call time."""
    env = os.environ.get("GANBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ganbench"


def ordinary_file_mode() -> int:
    """The mode of a file the user creates (0666 less the umask: 0644 under umask 022). Every
    atomic write gets it: mkstemp's temp files are 0600, which a rename would keep."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; not possible everywhere, so best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace(tmp: str, path: Path) -> None:
    os.chmod(tmp, ordinary_file_mode())
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_with(path: Path, write: Callable[[Path], Any]) -> None:
    """Let ``write(tmp_path)`` produce the file (e.g. a PNG), then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically (:func:`atomic_write_with`)."""
    import torch

    atomic_write_with(path, lambda tmp: torch.save(obj, tmp))


def file_lock(path: Path) -> FileLock:
    """The inter-process lock on ``path`` (a file or a folder's name): the lock file
    ``<path>.lock`` beside it, its folder created. Use ``with file_lock(p):``, or acquire it with
    a timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{path}.lock")
