"""Results files: tidy CSVs appended atomically under a file lock (tables: :mod:`ganbench.tables`).

Every write rewrites the whole file to a temporary file in the same directory, fsyncs it and
renames it over the old one (:mod:`ganbench.files`), so a reader (or a kill at any moment) sees
either the old or the new file, never half a row. A lock file serialises concurrent
``ganbench run`` processes, so each one's rows land, whatever the interleaving.

``runs.csv`` carries its format in a ``format_version`` column (:data:`RESULTS_FORMAT`). A
``runs.csv`` of another format (or none: written before the column existed, or not a results
table at all) is never appended to or overwritten; :func:`check_runs_format` says how to proceed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from ganbench.errors import GanbenchError, describe
from ganbench.files import atomic_write_bytes, file_lock

RUNS = "runs.csv"
CURVES = "curves.csv"
SUMMARY = "summary.csv"

RESULTS_FORMAT = 1  # the runs.csv layout; bump on a change older readers or writers would break
FINISHED = ("ok", "diverged")  # statuses of a cell that needs no rerun; "error" rows are retried
# Hex hashes can look like numbers ("123456789012", "1234e5678901"): always read them as text.
TEXT_COLUMNS = {"run_id": str, "config_hash": str, "setup": str}


# columns that count things: written as whole numbers ("50", never "50.0") whatever rows
# (with an empty value, which makes pandas read the column as floats) came before
COUNT_COLUMNS = frozenset(
    {
        "seed", "trial", "rung", "step", "steps", "steps_done", "resumed_from_step", "d_steps",
        "step_budget", "budget", "budget_steps", "threads", "n_critic", "batch_size", "pack",
        "parallel_cells", "diverged_at", "log_every", "eval_every", "fid_samples",
        "eval_samples", "kid_subsets", "kid_subset_size", "format_version", "k", "draws",
        "resamples", "n_runs", "n_ok", "n_diverged", "n_error", "classes_covered",
        "modes_covered", "halving_pick", "halving_pick_full_rank", "full_pick",
    }
)  # fmt: skip


def whole_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its float :data:`COUNT_COLUMNS` that hold only whole numbers (and empty
    cells) as nullable integers, so they are written without ".0"."""
    fixed = {}
    for column in COUNT_COLUMNS.intersection(frame.columns):
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            finite = values.dropna()
            if np.isfinite(finite).all() and (finite == finite.round()).all():
                fixed[column] = values.astype("Int64")
    return frame.assign(**fixed) if fixed else frame


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_bytes(path, whole_counts(frame).to_csv(index=False).encode())


def read_csv(path: Path) -> pd.DataFrame:
    if not (path.exists() and path.stat().st_size):
        return pd.DataFrame()
    return pd.read_csv(path, dtype=TEXT_COLUMNS)


def lock(out: Path) -> FileLock:
    """The lock that serialises writers of one results directory (``.ganbench.lock``)."""
    return file_lock(out / ".ganbench")


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append ``rows`` to the CSV at ``path`` (new columns allowed); never drops earlier rows.

    The caller holds :func:`lock` for the directory.
    """
    new = whole_counts(pd.DataFrame(list(rows)))
    if new.empty:
        return
    old = read_text_csv(path)  # as text: earlier rows are written back exactly as they were
    frame = new if old.empty else pd.concat([old, new], ignore_index=True, sort=False)
    write_csv(path, frame)


def read_text_csv(path: Path) -> pd.DataFrame:
    """The CSV at ``path`` with every cell as the text it holds ("" for empty), so a rewrite
    changes no earlier value (``30`` stays ``30``, never ``30.0``)."""
    if not (path.exists() and path.stat().st_size):
        return pd.DataFrame()
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def check_runs_format(out: Path) -> None:
    """Raise a one-line :class:`GanbenchError` unless ``out/runs.csv`` is absent, empty, or of
    :data:`RESULTS_FORMAT` in every row."""
    path = out / RUNS
    how = f"use another --out, or move {path} away to start a new one"
    try:
        runs = read_csv(path)
    except Exception as exc:  # not CSV at all, unreadable, ...
        raise GanbenchError(
            f"{path} is not a ganbench results table ({describe(exc)}); {how}"
        ) from None
    if runs.empty and (not len(runs.columns) or "format_version" in runs):
        return  # empty, or ganbench's header without rows: nothing to be incompatible with
    if "format_version" not in runs:
        found = "none (no format_version column)"
    elif runs["format_version"].isna().any() and runs["format_version"].notna().any():
        lines = [i + 2 for i in runs.index[runs["format_version"].isna()]]  # 1: the header
        raise GanbenchError(
            f"{path} has {len(lines)} incomplete row(s), cut short (line(s) "
            f"{', '.join(map(str, lines[:5]))}: no format_version); {how}"
        )
    else:
        versions = sorted(set(runs["format_version"].astype(str)))
        if versions == [str(RESULTS_FORMAT)]:
            return
        found = ", ".join(versions)
    raise GanbenchError(
        f"{path} was written by an incompatible ganbench: results format {found}, this version "
        f"writes {RESULTS_FORMAT}; {how}"
    )


def cell_lock(out: Path, config_hash: str) -> FileLock:
    """The lock a process holds while it trains cell ``config_hash`` in ``out``, so two runs on
    one results directory never train the same cell at once."""
    return file_lock(out / ".locks" / config_hash)  # ignored by git, like .ganbench.lock


def check_results_files(out: Path) -> None:
    """Before any training (and before ``report``): runs.csv is of this format
    (:func:`check_runs_format`) and curves.csv parses; else a one-line :class:`GanbenchError`.
    (summary.csv and comparisons.csv are derived: rebuilt when unreadable.)"""
    check_runs_format(out)
    path = out / CURVES
    try:
        read_csv(path)
    except Exception as exc:
        raise GanbenchError(
            f"{path} is not a ganbench curves table ({describe(exc)}); use another --out, or "
            f"move {path} away"
        ) from None


def read_derived_csv(path: Path) -> pd.DataFrame:
    """A derived table (summary.csv): empty when unreadable, so it is rebuilt, not fatal."""
    try:
        return read_csv(path)
    except Exception:  # noqa: BLE001 - damaged or foreign: rebuilt from runs.csv and curves.csv
        return pd.DataFrame()


def finished_run(out: Path, config_hash: str) -> str | None:
    """The ``run_id`` of the latest ``ok``/``diverged`` row of cell ``config_hash``, or None."""
    with lock(out):
        runs = read_csv(out / RUNS)
    if runs.empty or "config_hash" not in runs:
        return None
    done = runs[(runs["config_hash"] == config_hash) & runs["status"].isin(FINISHED)]
    return None if done.empty else str(done["run_id"].iloc[-1])


def remove_stale_temp_files(out: Path) -> None:
    """Remove temp files of CSV writes that were killed. Call with :func:`lock` held: writers
    hold it while their temp file exists, so any temp file seen then is an orphan."""
    for name in (RUNS, CURVES, SUMMARY):
        for partial in out.glob(f".{name}.*.tmp"):
            partial.unlink(missing_ok=True)


def record_cell(out: Path, row: dict[str, Any], curves: list[dict[str, Any]]) -> None:
    """Append one cell's results: its curves first, then its ``runs.csv`` row.

    The row is the commit mark of a cell (a rerun skips cells that have one), so it is written
    last: a kill between the two files leaves curves without a row, which a rerun redoes under a
    new ``run_id``, never a row without its curves; a row that cannot be written takes its
    curves back out. Refuses (one-line error) to touch a
    ``runs.csv`` of another format, even one that appeared while this run was training.
    """
    with lock(out):
        check_runs_format(out)
        remove_stale_temp_files(out)
        append_rows(out / CURVES, curves)
        try:
            append_rows(out / RUNS, [{**row, "format_version": RESULTS_FORMAT}])
        except BaseException:
            if curves:  # no curves without a row: take this run's back out, as far as we can
                with contextlib.suppress(Exception):
                    kept = read_text_csv(out / CURVES)
                    write_csv(out / CURVES, kept[kept["run_id"] != str(row["run_id"])])
            raise
