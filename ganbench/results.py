"""Results files: tidy CSVs appended atomically under a file lock, and the summary table.

Every write rewrites the whole file to a temporary file in the same directory, fsyncs it and
renames it over the old one, so a reader (or a kill at any moment) sees either the old or the new
file, never half a row. A lock file serialises concurrent ``ganbench run`` processes.
"""

from __future__ import annotations

import math
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

GROUP = ["loss", "generator", "discriminator", "dataset", "steps", "setup"]


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


THROUGHPUT = ("train_images_per_s",)  # summarised for every run, after the evaluator's metrics


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The metric names listed in ``frame``'s ``metrics`` column (space-separated, as the runner
    records each evaluator's metrics), in order of first appearance."""
    names: list[str] = []
    if "metrics" in frame:
        for entry in frame["metrics"].dropna():
            names += [n for n in str(entry).split() if n not in names]
    return names


def summarize(runs: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (loss, generator, discriminator, dataset, steps, setup): seeds, status counts, and the
    mean and std over the ok runs of every metric (``<metric>_mean``, ``<metric>_std``).

    The metrics are those the evaluators produced (the ``metrics`` column of ``runs``), then the
    training throughput. ``reference`` rows (the real-data floor, with the evaluator's raw keys
    and a ``metrics`` column) are appended with ``loss = "(real data)"`` and each metric in its
    ``<metric>_mean`` column.
    """
    if runs.empty:
        return pd.DataFrame()
    metrics = metric_columns(runs)
    metrics += [m for m in THROUGHPUT if m not in metrics]
    rows = []
    for key, group in runs.groupby(GROUP, sort=False, dropna=False):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = dict(zip(GROUP, key, strict=True))
        row["n_runs"] = len(group)
        row["n_ok"] = len(ok)
        row["seeds"] = " ".join(str(s) for s in sorted(group["seed"].unique()))
        for metric in metrics:
            if metric in ok and ok[metric].notna().any():
                values = ok[metric].astype(float)
                row[f"{metric}_mean"] = values.mean()
                row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if "fid_mean" in table:
        table = table.sort_values("fid_mean", na_position="last", kind="stable")
    if reference is not None and not reference.empty:  # the real-data floor stays last
        floor = reference.rename(columns={m: f"{m}_mean" for m in metric_columns(reference)})
        table = pd.concat(
            [table, floor.drop(columns="metrics", errors="ignore")],
            ignore_index=True,
            sort=False,
        )
    return table.reset_index(drop=True)
