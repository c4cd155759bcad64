"""Where the cells of a sweep run: in this process, in a local process pool, or as Ray tasks.

Every launcher runs a cell the same way, :func:`ganbench.execute.execute_cell` in some process:
skip it if ``--out`` has it finished, else train it (or resume it from its checkpoint) and append
its rows with :func:`ganbench.results.record_cell` (file-locked, atomic). So every launcher writes
the same files, and a sweep begun under one launcher can be finished under another: the launcher
is not part of a cell's ``config_hash``; rows name it in the informational columns ``launcher``
and ``parallel_cells`` (how many cells could run at once).

- ``local``, ``--jobs 1`` (the default): one cell after another in this process, progress bars.
- ``local``, ``--jobs N``: N spawned worker processes, each with ``--cpus-per-cell`` torch
  threads (default ``cpu_count // N``).
- ``ray``: one Ray task per cell, reserving ``--cpus-per-cell`` (default 1) CPUs and
  ``--gpus-per-cell`` GPUs, on the cluster at ``--ray-address`` (default: join the local Ray
  instance, or start one). Workers must import the same ganbench and plugins, and on a
  multi-node cluster ``--out`` (and ``--data-dir``) must be on a filesystem every node shares.

A worker process that dies (killed, out of memory, a segfault) is retried :data:`RETRIES` times
(Ray's task retries; a fresh process for the local pool), resuming from the cell's checkpoint;
after that the cell gets an ``error`` row (which a rerun retries) and the other cells go on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ganbench import checkpoints, generator_files, registry
from ganbench import results as R
from ganbench.defaults import cell_threads
from ganbench.errors import CellsBusy, GanbenchError, describe
from ganbench.execute import execute_cell, record_error
from ganbench.plan import Prepared, prepare
from ganbench.spec import Cell, RunSpec
from ganbench.validation import require_ray

RETRIES = 2  # extra attempts for a cell whose worker process died
TRACKER_NOTICE = "ignore:resource_tracker:UserWarning"
PARENT_POLL_S = 0.5  # how often a pool worker checks that the main process is alive
Log = Callable[[str], None]
Todo = list[tuple[str, Cell]]  # (label, cell) of the cells left to run


def run_cells(prep: Prepared, log: Log) -> None:
    """Run every cell of ``prep`` that ``prep.spec.out`` does not have finished, with the
    launcher ``prep.spec.launch`` names."""
    spec, launch = prep.spec, prep.spec.launch
    clear_stale_temp_files(spec.out, log)
    todo: Todo = []
    for i, cell in enumerate(prep.cells, 1):
        trial = f" trial {cell.tags['trial']}" if "trial" in cell.tags else ""
        label = f"[{i}/{len(prep.cells)}] {cell.loss.name}{trial} seed {cell.seed}"
        done = None if spec.fresh else R.finished_run(spec.out, cell.config_hash)
        if done is not None:
            log(f"{label}: finished earlier (run {done}), skipped; --fresh reruns it")
        else:
            todo.append((label, cell))
    if not todo:
        return
    busy: list[str] = []  # labels of cells another process was training
    if launch.launcher == "ray":
        _run_ray(prep, todo, log, busy)
    elif launch.jobs > 1 and len(todo) > 1:
        _run_pool(prep, todo, log, busy)
    else:
        _run_here(prep, todo, log, busy)
    if busy:
        names = ", ".join(label.split("] ", 1)[-1] for label in busy)
        raise CellsBusy(
            f"another process is training {len(busy)} cell(s) of this run on {spec.out} "
            f"({names}); rerun this command when it has finished"
        )


def clear_stale_temp_files(out: Path, log: Log) -> None:
    """Remove the temp files that saves killed mid-write left in ``out``'s checkpoint,
    generator and sample folders (a SIGKILL leaves no moment to remove them), saying so in one
    line. Only those older than :data:`~ganbench.checkpoints.STALE_TEMP_S`: a save in progress
    in another process is younger."""
    found = []
    for folder in (checkpoints.DIRECTORY, generator_files.DIRECTORY, "samples"):
        for path in (out / folder).glob(".*") if (out / folder).is_dir() else ():
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > checkpoints.STALE_TEMP_S:
                    size = path.stat().st_size
                    path.unlink()
                    found.append(size)
    if found:
        log(
            f"removed {len(found)} temp file(s) of an earlier run that was killed while saving "
            f"({sum(found) / 1e6:.1f} MB) from {out}"
        )


def _columns(launcher: str, parallel: int) -> dict[str, Any]:
    return {"launcher": launcher, "parallel_cells": parallel}


# -- local, one at a time, in this process ---------------------------------------------------------


def _run_here(prep: Prepared, todo: Todo, log: Log, busy: list[str]) -> None:
    """One cell after another in this process (each sets its own thread count)."""
    for label, cell in todo:
        if execute_cell(prep, cell, label, log, _columns("local", 1))["status"] == "busy":
            busy.append(label)


# -- what a worker process runs (local pool or Ray) ----------------------------------------------

_prepared: dict[str, Prepared] = {}  # per worker process: the dataset, evaluators, cells


def _worker_spec(prep: Prepared) -> RunSpec:
    """The spec a worker gets: absolute paths (a Ray worker runs in another directory), no
    progress bars (they would interleave)."""
    spec = prep.spec
    return dataclasses.replace(
        spec,
        out=spec.out.resolve(),
        data_dir=spec.data_dir.resolve() if spec.data_dir is not None else None,
        eval=dataclasses.replace(
            spec.eval,
            inception_weights=spec.eval.inception_weights.resolve()
            if spec.eval.inception_weights is not None
            else None,
        ),
        progress=False,
    )


def portable(cell: Cell) -> dict[str, Any]:
    """What a worker process needs to rebuild ``cell``: its fields and the identity the plan
    gave it, the loss by name (a plugin's factory need not pickle; the worker's registry has
    it)."""
    fields = ("seed", "hp", "sources", "tags", "config", "config_hash", "setup")
    return {"loss": cell.loss.name, **{name: getattr(cell, name) for name in fields}}


def execute_in_worker(
    spec: RunSpec, cell: dict[str, Any], label: str, columns: dict[str, Any], threads: int
) -> dict[str, Any]:
    """Run ``cell`` (:func:`portable`) of ``spec`` in this (worker) process and record it."""
    torch.set_num_threads(threads)
    key = repr(spec)
    if key not in _prepared:
        _prepared.clear()
        _prepared[key] = prepare(spec, check=False)
    prep = _prepared[key]

    def log(msg: str) -> None:
        print(msg if msg.startswith(label) else f"{label}: {msg.strip()}", file=sys.stderr)
        sys.stderr.flush()

    started = time.perf_counter()
    rebuilt = Cell(**{**cell, "loss": registry.get_loss(cell["loss"])})
    status = execute_cell(prep, rebuilt, label, log, columns)
    return {**status, "wall_s": time.perf_counter() - started}


def _report(log: Log, label: str, status: dict[str, Any]) -> None:
    took = f" ({status['wall_s']:.0f} s)" if "wall_s" in status else ""
    error = f": {status['error']}" if status.get("error") else ""
    log(f"{label}: {status['status']}{took}{error}")


# -- local process pool ------------------------------------------------------------------------


def _run_pool(prep: Prepared, todo: Todo, log: Log, busy: list[str]) -> None:
    """``--jobs N``: N lanes, each a one-process pool that runs one cell after another. A lane
    whose process dies knows which cell killed it, and retries that cell in a fresh process."""
    jobs = min(prep.spec.launch.jobs, len(todo))
    threads = cell_threads(prep.spec) or 1
    spec, columns = _worker_spec(prep), _columns("local", jobs)
    context = multiprocessing.get_context("spawn")  # no fork of a process with torch threads
    # The resource tracker (started with this process's -W options) reclaims the pool's
    # semaphores when this process dies; after a SIGKILL, which leaves no moment to release them,
    # it would also print a "leaked semaphore" notice about that reclaiming: silenced
    if TRACKER_NOTICE not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_NOTICE)
    queue = list(todo)
    taken = threading.Lock()
    stop = threading.Event()
    pools: list[ProcessPoolExecutor] = []  # every lane's, so an interrupt can stop them all

    def lane() -> None:
        pool: ProcessPoolExecutor | None = None
        try:
            while not stop.is_set():
                with taken:
                    if not queue:
                        return
                    label, cell = queue.pop(0)
                for attempt in range(1, RETRIES + 2):
                    if pool is None:
                        pool = ProcessPoolExecutor(
                            1,
                            mp_context=context,
                            initializer=init_worker,
                            initargs=(os.getpid(),),
                        )
                        pools.append(pool)
                    args = (spec, portable(cell), label, columns, threads)
                    try:
                        status = pool.submit(execute_in_worker, *args).result()
                        break
                    except BrokenProcessPool:
                        pool.shutdown(wait=False)
                        pool = None
                        if stop.is_set():  # stopped by an interrupt: no retry, no row
                            return
                        log(f"{label}: worker process died (attempt {attempt} of {RETRIES + 1})")
                    except Exception as exc:  # the worker could not set up (e.g. a plugin)
                        status = record_error(prep, cell, describe(exc), columns)
                        break
                else:
                    status = record_error(
                        prep, cell, f"worker process died {RETRIES + 1} times", columns
                    )
                if status["status"] == "busy":
                    busy.append(label)
                _report(log, label, status)
        finally:
            if pool is not None:
                pool.shutdown()

    log(f"running {len(todo)} cells, {jobs} at a time, {threads} torch threads each")
    with ThreadPoolExecutor(jobs) as lanes:
        futures = [lanes.submit(lane) for _ in range(jobs)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()  # no new cells, and the running ones stop now: their checkpoints stay
            for pool in list(pools):
                _terminate(pool)
            raise


def init_worker(parent: int) -> None:
    """A pool worker's initializer. tqdm's bars share a threading lock, not its default
    multiprocessing one: a worker stopped by SIGTERM would leave that semaphore behind (the
    resource tracker's "leaked semaphore" warning). And a thread ends the worker once ``parent``
    (the main process) is gone: a SIGKILL of the main process, which leaves it no moment to stop
    its workers, leaves no worker training, appending rows or idling."""
    tqdm.set_lock(threading.RLock())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="ganbench-parent-watch", daemon=True).start()


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool``'s worker processes now (SIGTERM), not after their cells finish."""
    for process in list(getattr(pool, "_processes", {}).values()):  # no public API before 3.14
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


# -- Ray ----------------------------------------------------------------------------------------


def _run_ray(prep: Prepared, todo: Todo, log: Log, busy: list[str]) -> None:
    """One Ray task per cell; Ray retries a task whose worker died (``max_retries``)."""
    require_ray()
    import ray

    launch = prep.spec.launch
    cpus = launch.cpus_per_cell if launch.cpus_per_cell is not None else 1
    # ganbench's settings (cache folder, plugin selection) travel to the workers
    env = {k: v for k, v in os.environ.items() if k.startswith("GANBENCH_")}
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=launch.ray_address, logging_level="warning")
        except Exception as exc:
            where = launch.ray_address or "the local Ray instance"
            raise GanbenchError(f"Cannot start or reach {where}: {describe(exc)}") from None
    try:
        total = ray.cluster_resources()
        fits = total.get("CPU", 0) / cpus
        if launch.gpus_per_cell:
            fits = min(fits, total.get("GPU", 0) / launch.gpus_per_cell)
        columns = _columns("ray", max(1, min(len(todo), math.floor(fits))))
        log(
            f"running {len(todo)} cells on Ray ({total.get('CPU', 0):g} CPUs, "
            f"{total.get('GPU', 0):g} GPUs; {cpus:g} CPUs and {launch.gpus_per_cell:g} GPUs "
            "per cell)"
        )
        task = ray.remote(execute_in_worker).options(
            num_cpus=cpus,
            num_gpus=launch.gpus_per_cell,
            max_retries=RETRIES,
            runtime_env={"env_vars": env},
        )
        spec, threads = _worker_spec(prep), cell_threads(prep.spec) or 1
        refs = {
            task.remote(spec, portable(cell), label, columns, threads): (label, cell)
            for label, cell in todo
        }
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    label, cell = refs[ref]
                    try:
                        status = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # raised in the worker
                        status = record_error(prep, cell, describe(exc.cause or exc), columns)
                    except ray.exceptions.RayError as exc:  # worker or node died, every try
                        message = f"worker died {RETRIES + 1} times ({type(exc).__name__})"
                        status = record_error(prep, cell, message, columns)
                    if status["status"] == "busy":
                        busy.append(label)
                    _report(log, label, status)
        except BaseException:
            for ref in pending:  # interrupted: stop the cells still queued or running
                ray.cancel(ref, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()
