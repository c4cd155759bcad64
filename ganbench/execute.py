"""Executing cells: train (or resume) one cell in this process, score it
and record its rows. Every launcher (:mod:`ganbench.launchers`) runs cells through here, so every
launcher writes the same files.

Resuming: with ``--checkpoint-every`` > 0 a cell resumes from its checkpoint if it has a usable
one (unless ``--fresh``) and checkpoints as it trains (:mod:`ganbench.checkpoints`); a cell with a
finished row is skipped; a failing plugin fails its own cell only (``status=error`` and the
message), never the sweep.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from filelock import Timeout

from ganbench import __version__, checkpoints, registry
from ganbench import results as R
from ganbench.defaults import cell_threads
from ganbench.ema import ema_of
from ganbench.errors import describe
from ganbench.identity import base_row, stamp
from ganbench.models import init_weights
from ganbench.plan import Prepared
from ganbench.scoring import curve_scorer, keep_generators, record_result, score
from ganbench.spec import EVAL_SEED_OFFSET, GRID_SEED, Cell, RunSpec
from ganbench.trainer import ResumeError, TrainConfig, cpu_threads, train, uses_channels_last

Log = Callable[[str], None]
Rows = tuple[dict[str, Any], list[dict[str, Any]]]  # a cell's runs.csv row, its curves.csv rows


def fixed_noise(cell: Cell) -> dict[str, int]:
    """The seeds of a cell's fixed noise: its sample grid's (the same for every cell) and its
    evaluation's (apart from its training noise)."""
    return {"grid": GRID_SEED, "eval": EVAL_SEED_OFFSET + cell.seed}


def train_config(
    cell: Cell, spec: RunSpec, device: torch.device, curves: bool, description: str = ""
) -> TrainConfig:
    """The trainer's settings for ``cell`` (``curves``: with ``--eval-every`` curve points)."""
    return TrainConfig(
        steps=spec.generator_steps(cell.hp.n_critic),
        batch_size=spec.batch_size,
        seed=cell.seed,
        hp=cell.hp,
        device=device,
        precision=spec.precision,
        log_every=spec.log_every,
        progress=spec.progress,
        description=description or f"{cell.loss.name} seed {cell.seed}",
        checkpoint_every=spec.checkpoint_every,
        eval_every=spec.generator_eval_every(cell.hp.n_critic) if curves else 0,
        compile=spec.compile,
        reuse_fake=bool(spec.reuse_fake),
    )


def new_models(cell: Cell, prep: Prepared, row: dict[str, Any]) -> tuple[torch.nn.Module, ...]:
    """A cell's freshly initialised (G, D): every RNG seeded with the cell's seed first, so the
    same cell starts from the same weights however it is trained; ``row["init"]`` records the
    scheme (``--init``, else the pair's)."""
    spec = prep.spec
    random.seed(cell.seed)
    np.random.seed(cell.seed)
    torch.manual_seed(cell.seed)
    G = registry.get_generator(spec.generator).factory()
    D = registry.get_discriminator(spec.discriminator).factory()
    if spec.init is not None:
        init_weights(G, spec.init)
        init_weights(D, spec.init)
    row["init"] = spec.init or prep.pair.init
    return G, D


def fail(row: dict[str, Any], cell: Cell, exc: Exception, log: Log) -> None:
    """Mark ``row`` an error row with ``exc``'s message (a failing plugin fails its own cell)."""
    row["status"] = "error"
    row["error"] = f"{type(exc).__name__}: {exc}"
    trial = f" trial {cell.tags['trial']}" if "trial" in cell.tags else ""
    log(f"cell {cell.loss.name}{trial} seed {cell.seed} failed: {row['error']}")
    if os.environ.get("GANBENCH_DEBUG"):
        traceback.print_exc()


def run_cell(prep: Prepared, cell: Cell, log: Log) -> Rows:
    """Train (or resume) and score one cell, on the CPU with its thread count
    (:func:`~ganbench.defaults.cell_threads`); return its runs.csv row and curves.csv rows.

    With a curve evaluator (``--eval-every``), its numeric scores of its ``n_samples`` samples
    are added to the curves every ``spec.eval_every`` steps (e.g. ``fid``; fewer samples than
    the final score, so biased upwards: compare curve points with curve points).
    """
    with cpu_threads(cell_threads(prep.spec), prep.device):
        return _run_cell(prep, cell, log)


def _run_cell(prep: Prepared, cell: Cell, log: Log) -> Rows:
    spec, device, dataset = prep.spec, prep.device, prep.dataset
    curve_evaluator = prep.curve_evaluator
    config = dict(cell.config)
    row = base_row(cell, spec, device)
    chash = row["config_hash"]
    curves: list[dict[str, Any]] = []
    start = time.perf_counter()

    # -- checkpoint: resume from it unless --fresh; a fresh start drops the old one -------------
    ckpt_path = checkpoints.path_for(spec.out, chash)
    resume = None
    if spec.checkpoint_every:
        if spec.fresh:
            ckpt_path.unlink(missing_ok=True)
        else:
            resume = checkpoints.load(ckpt_path, chash, log)
    noise_seeds = fixed_noise(cell)
    if resume is not None:
        noise_seeds = resume["noise"]  # the fixed sample/evaluation noise the cell began with
        log(f"  resuming from step {resume['trainer']['progress']['step']} ({ckpt_path})")

    def save_checkpoint(trainer_state: dict[str, Any]) -> None:
        checkpoint = {
            "format": checkpoints.CHECKPOINT_FORMAT,
            "config_hash": chash,
            "config": config,
            "ganbench_version": __version__,
            "noise": noise_seeds,
            "trainer": trainer_state,
        }
        try:
            checkpoints.save(ckpt_path, checkpoint)
        except (OSError, RuntimeError) as exc:  # a full disk: torch.save raises RuntimeError
            free = shutil.disk_usage(ckpt_path.parent).free if ckpt_path.parent.is_dir() else 0
            log(
                f"  checkpoint {ckpt_path} not written ({describe(exc)}; {free / 1e6:.0f} MB "
                "free there); training goes on, and an interrupted cell would start over"
            )

    def train_from(resume_state: dict[str, Any] | None):
        G, D = new_models(cell, prep, row)
        ema = ema_of(G, spec.ema_decay) if spec.ema_decay else None
        data_rng = torch.Generator().manual_seed(cell.seed)
        evaluate = curve_scorer(G, curve_evaluator, noise_seeds["eval"], device, ema)
        result = train(
            G,
            D,
            cell.loss.factory(),
            dataset.sampler(spec.batch_size, data_rng, device),
            train_config(cell, spec, device, curve_evaluator is not None),
            evaluate,
            data_rng=data_rng,
            resume=resume_state,
            checkpoint=save_checkpoint if spec.checkpoint_every else None,
            ema=ema,
        )
        return G, ema, result

    try:
        try:
            G, ema, result = train_from(resume["trainer"] if resume is not None else None)
        except ResumeError as exc:  # e.g. the model code changed under the same names
            log(f"  checkpoint {ckpt_path} does not fit ({exc}); starting over")
            G, ema, result = train_from(None)
        curves = record_result(row, result, curve_evaluator)
        if result.status == "ok":  # a diverged G has non-finite weights: no picture, no scores
            score(G, row, spec, dataset, prep.evaluator, device, noise_seeds, ema)
            # score() readied the EMA generator to sample (its BatchNorm statistics)
            ema_G = ema.module if ema is not None else None
            keep_generators(row, spec, G, ema_G, noise_seeds, uses_channels_last(G), log)
    except Exception as exc:
        fail(row, cell, exc, log)
    row["wall_s"] = time.perf_counter() - start
    return stamp(row), curves


def execute_cell(
    prep: Prepared,
    cell: Cell,
    label: str,
    log: Log,
    launch_columns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one cell in this process, whichever launcher called: skip it if ``prep.spec.out``
    has it finished (or another process is training it), else train (or resume) it and record
    its row; return a small status ``{"status", "run_id", "error"}`` (``skipped`` for a cell
    found finished, ``busy`` for one another process is training).

    ``launch_columns`` (informational, never hashed) are added to the row.
    """
    spec = prep.spec
    chash = cell.config_hash
    lock = R.cell_lock(spec.out, chash)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"{label}: being trained by another process on {spec.out} (cell {chash}); skipped")
        return {"status": "busy", "run_id": "", "error": ""}
    try:
        # Checked per cell, not once: another process on the same --out may have finished it.
        done = None if spec.fresh else R.finished_run(spec.out, chash)
        if done is not None:
            log(f"{label}: finished earlier (run {done}), skipped; --fresh reruns it")
            return {"status": "skipped", "run_id": done, "error": ""}
        log(
            f"{label} ({cell.hp.n_critic} critic steps per G step, "
            f"{spec.generator_steps(cell.hp.n_critic)} G steps, cell {chash})"
        )
        row, curves = run_cell(prep, cell, log)
        row.update(launch_columns or {}, compile=spec.compile)
        if row["status"] == "diverged":
            log(f"  diverged at step {row['diverged_at']} (non-finite {row['diverged_reason']})")
        try:
            R.record_cell(spec.out, row, curves)
        except BaseException:
            forget_files(spec.out, row)  # no files under a run_id that has no row
            raise
        if not spec.keep_checkpoints and row["status"] in ("ok", "diverged"):
            checkpoints.path_for(spec.out, chash).unlink(missing_ok=True)  # its row is its result
        return {"status": row["status"], "run_id": row["run_id"], "error": row["error"]}
    finally:
        lock.release()


def forget_files(out, row: dict[str, Any]) -> None:
    """Remove the generator file and sample grids of a cell whose row could not be recorded."""
    for key in ("generator_file", "samples_png", "samples_ema_png"):
        if row.get(key):
            (out / str(row[key])).unlink(missing_ok=True)


def record_error(
    prep: Prepared, cell: Cell, message: str, columns: dict[str, Any]
) -> dict[str, Any]:
    """Record an ``error`` row for a cell whose worker failed; it has the identity columns of
    any row, so a rerun retries it. Nothing is recorded if the cell got a finished row after
    all (a worker that died after recording it)."""
    done = R.finished_run(prep.spec.out, cell.config_hash)
    if done is not None:
        return {"status": "ok", "run_id": done, "error": ""}
    row = stamp({**base_row(cell, prep.spec, prep.device), **columns})
    row["error"] = message
    R.record_cell(prep.spec.out, row, [])
    return {"status": "error", "run_id": row["run_id"], "error": message}
