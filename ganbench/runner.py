"""Run a benchmark: plan it, run its cells with the chosen launcher, and write the tables.

Data flows one way: the CLI builds a :class:`~ganbench.spec.RunSpec`; :func:`run` plans it
(:mod:`ganbench.plan`: defaults, every check before any training, the dataset, the cells), hands
the cells to a launcher (:mod:`ganbench.launchers`), which executes each
(:mod:`ganbench.execute`: train with :mod:`ganbench.trainer`, score with the dataset's evaluator,
append rows to the results files), and then rewrites summary.csv and comparisons.csv
(:mod:`ganbench.tables`).

Resuming a sweep: a cell is identified by its ``config_hash`` (:mod:`ganbench.identity`), a hash
of everything that decides its results (names, seed, steps, batch size, precision, init,
hyperparameters, device type, curve spacing, evaluation settings; not ``--checkpoint-every``,
which changes nothing). Running the same command again skips every cell that already has an
``ok`` or ``diverged`` row in ``runs.csv`` (``error`` rows are retried) and resumes interrupted
cells from their checkpoint (:mod:`ganbench.checkpoints`). Every attempt gets a new ``run_id``;
``resumed_from_step`` says where a resumed one started. ``--fresh`` retrains every cell from
step 0 and appends new rows; the earlier rows stay in ``runs.csv`` and the summary counts only
the latest row of each cell.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable

import pandas as pd

from ganbench import generator_files, launchers, stats
from ganbench import results as R
from ganbench.datasets import metric_names
from ganbench.defaults import named_budget, tune_command, untuned
from ganbench.plan import Prepared, prepare
from ganbench.spec import DEFAULT_OUT, LaunchOptions, RunSpec
from ganbench.tables import REFERENCE_LOSS, Tables, latest_attempts, write_tables
from ganbench.validation import days_warnings

__all__ = ["DEFAULT_OUT", "LaunchOptions", "RunSpec", "run"]


def run(spec: RunSpec, log: Callable[[str], None] | None = None) -> Tables:
    """Run every (loss, seed) cell of ``spec``; rewrite summary.csv and comparisons.csv; return
    the rows of both tables that concern this run's setups (see :func:`rows_about`) as pandas
    DataFrames, with this run's cells (``runs``: the latest row of each) and those that failed.

    Cells finished earlier in ``spec.out`` are skipped and interrupted ones resumed (see the
    module docstring), unless ``spec.fresh``. ``spec.launch`` picks where the cells run
    (:mod:`ganbench.launchers`); every launcher writes the same files.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    prep = prepare(spec)
    for line in plan_notes(spec, prep):
        log(line)
    reference = reference_table(prep)
    setups = {cell.setup for cell in prep.cells}
    launchers.run_cells(prep, log)
    with R.lock(prep.spec.out):
        tables = write_tables(prep.spec.out, reference)
        runs = latest_attempts(R.read_csv(prep.spec.out / R.RUNS))
    mine = runs[runs["setup"].astype(str).isin(setups)] if "setup" in runs else runs
    return dataclasses.replace(
        rows_about(tables, setups),
        failed=failed_cells(prep, runs),
        runs=mine.reset_index(drop=True),
    )


def plan_notes(asked: RunSpec, prep: Prepared, searching: bool = False) -> list[str]:
    """What the plan chose where ``asked`` said nothing, for the log: a budget raised for an
    objective that needs more steps, the precision ``auto`` picked, where tuned defaults came
    from (and which losses they left untuned: not in a search, which tunes them), the kept
    generators' size."""
    spec, notes = prep.spec, []
    base = prep.pair.default_steps or prep.dataset.default_steps
    budget = named_budget(prep.dataset, asked.budget, asked.dataset)
    if budget:
        own_length = asked.steps is None and asked.epochs is None and "epochs" in budget
        notes.append(
            f"budget {asked.budget}: {spec.generator}, batch {spec.batch_size}, {spec.steps} "
            f"{spec.step_unit} steps per cell"
            + (f" ({budget['epochs']:g} epochs)" if own_length else "")
        )
    elif asked.steps is None and asked.epochs is None and spec.steps != base:
        notes.append(
            f"{spec.steps} {spec.step_unit} steps for every cell (an objective of this run needs"
            f" them on {spec.generator}, whose default is {base}; --steps N to change)"
        )
    if prep.precision_reason:
        why = prep.precision_reason
        notes.append(
            f"precision {spec.precision} (--precision auto on {prep.device.type}: {why}; "
            "--precision fp32 or bf16 to choose)"
        )
    if spec.defaults == "tuned":
        notes += tuned_notes(spec, prep, searching)
    if spec.keep_generators:
        notes.append(generators_note(spec, prep.generator_bytes))
    notes += days_warnings(int(spec.steps) * len(prep.cells), spec.eval.fid_samples)
    seeds = len(spec.seeds)
    if not searching and seeds > 1:
        notes += significance_warning(len(prep.cells) // seeds, seeds, "--seeds")
    return notes


def significance_warning(arms: int, seeds: int, option: str) -> list[str]:
    """A line where ``seeds`` per arm can never give a significant difference between ``arms``
    arms after Holm's correction over all their pairs, with the ``option`` value that can."""
    pairs = math.comb(arms, 2)
    if arms < 2 or stats.can_be_significant(seeds, seeds, pairs):
        return []
    return [
        f"with {seeds} seeds per arm no difference between these {arms} arms can be significant "
        f"(the smallest Mann-Whitney p times Holm's {pairs} pair(s) is at least {stats.ALPHA}): "
        f"{option} {stats.seeds_for_significance(pairs)} can"
    ]


def tuned_notes(spec: RunSpec, prep: Prepared, searching: bool) -> list[str]:
    """``--defaults tuned``: the study the settings came from, or that the pair has none; and,
    outside a search, the command that tunes each loss the study did not tune."""
    study = prep.pair.tuned_by
    if not study:
        return [f"--defaults tuned: {spec.generator} has no tuning study, so it is --defaults pair"]
    notes = [
        f"--defaults tuned: each loss starts from the best settings {study} found on "
        f"{spec.generator}, --steps counted in {spec.step_unit} steps"
    ]
    if searching:
        return notes
    sources = {}  # each loss's first cell's (every cell of a loss has the same)
    for cell in prep.cells:
        sources.setdefault(cell.loss.name, cell.sources)
    return notes + [
        tune_command(name, spec.generator, spec)
        for name, where in sources.items()
        if untuned(where, spec.generator, spec)
    ]


def reference_table(prep: Prepared) -> pd.DataFrame | None:
    """The real-data floor row of the summary, when the run evaluates."""
    if prep.evaluator is None:
        return None
    floor = prep.evaluator.reference()
    return pd.DataFrame(
        [
            {
                "loss": REFERENCE_LOSS,
                "dataset": prep.spec.dataset,
                "metrics": " ".join(metric_names(prep.evaluator, floor)),
                **floor,
            }
        ]
    )


def generators_note(spec: RunSpec, generator_bytes: int) -> str:
    """The line that says how much disk each cell's kept generators take (``generator_bytes``:
    one generator's state, measured by the plan's dry run)."""
    n = 2 if spec.ema_decay else 1
    size = n * generator_bytes
    what = "G and EMA-G" if n == 2 else "G"
    return (
        f"each cell keeps its {what} in {spec.out / generator_files.DIRECTORY}/: "
        f"{size / 1e6:.2f} MB per cell (--no-keep-generators to keep none)"
    )


def failed_cells(prep: Prepared, runs: pd.DataFrame) -> tuple[str, ...]:
    """``loss seed S`` of every cell of this run whose latest row in ``runs`` is an error."""
    if runs.empty or "config_hash" not in runs:
        return ()
    status = dict(zip(runs["config_hash"].astype(str), runs["status"], strict=True))
    return tuple(
        f"{cell.loss.name}{_trial(cell)} seed {cell.seed}"
        for cell in prep.cells
        if status.get(cell.config_hash) == "error"
    )


def _trial(cell) -> str:
    return f" trial {cell.tags['trial']}" if "trial" in cell.tags else ""


def rows_about(tables: Tables, setups: set[str]) -> Tables:
    """The rows of ``tables`` about ``setups``: their arms, the real-data floor, and every
    comparison with at least one of them on either side."""
    summary, comparisons = tables.summary, tables.comparisons
    if "setup" in summary:
        keep = summary["setup"].isin(setups) | (summary["loss"] == REFERENCE_LOSS)
        summary = summary[keep].reset_index(drop=True)
    keep = comparisons["setup_a"].isin(setups) | comparisons["setup_b"].isin(setups)
    return Tables(summary, comparisons[keep].reset_index(drop=True))
