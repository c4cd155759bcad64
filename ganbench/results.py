"""Results files: tidy CSVs appended atomically under a file lock (tables: :mod:`ganbench.tables`).

Every write rewrites the whole file to a temporary file in the same directory, fsyncs it and
renames it over the old one, so a reader (or a kill at any moment) sees either the old or the new
file, never half a row. A lock file serialises concurrent ``ganbench run`` processes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

RUNS = "runs.csv"
CURVES = "curves.csv"
SUMMARY = "summary.csv"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False).encode())


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()


def lock(out: Path) -> FileLock:
    """The lock that serialises writers of one results directory."""
    out.mkdir(parents=True, exist_ok=True)
    return FileLock(str(out / ".ganbench.lock"))


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append ``rows`` to the CSV at ``path`` (new columns allowed); never drops earlier rows.

    The caller holds :func:`lock` for the directory.
    """
    new = pd.DataFrame(list(rows))
    if new.empty:
        return
    old = read_csv(path)
    frame = new if old.empty else pd.concat([old, new], ignore_index=True, sort=False)
    write_csv(path, frame)
