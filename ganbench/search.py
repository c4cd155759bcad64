"""``ganbench search``: equal tuning budgets for every objective (Lucic et al. 2018).

For each loss, ``trials`` settings are drawn from the same space (:mod:`ganbench.search_space`:
the shared optimiser, learning rates, betas and n_critic, plus the loss's own extras, narrowed
where the pair says) and each is trained as one cell at the search seed. The best draw of each
loss (by ``metric``) is then retrained on ``seeds_best`` new seeds, so its confidence interval and
the Holm-corrected comparisons of the best settings (:mod:`ganbench.tables`) are free of the
selection's luck. Every cell goes through the run's launchers and results files, so a search
resumes like ``ganbench run``: rerunning the same command trains nothing new.

Besides runs.csv, summary.csv and comparisons.csv it writes ``search.csv`` (one row per draw:
its trial, hyperparameters, status and metric) and ``search_best_of_k.csv`` (the best metric
among k draws as a function of k, with a bootstrap band: k of the draws resampled without
replacement, as in Lucic et al., Fig. 4).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ganbench import baseline, halving, launchers, stats
from ganbench import results as R
from ganbench.datasets import HIGHER_IS_BETTER
from ganbench.errors import GanbenchError, did_you_mean
from ganbench.models import model_class
from ganbench.plan import Prepared, drawn_cells, prepare, replan
from ganbench.runner import failed_cells, plan_notes, reference_table, significance_warning
from ganbench.search_report import BEST_COMPARISONS, BEST_OF_K, BEST_SUMMARY, SEARCH
from ganbench.search_space import as_overrides, compose, draw, draw_seed
from ganbench.spec import MAX_SEED, Cell, RunSpec
from ganbench.stats import BEST_OF_K_RESAMPLES, BOOTSTRAP_SEED
from ganbench.tables import Tables, compare, latest_attempts, summarize, write_tables

SCHEDULERS = ("full", "halving")  # every draw to the full budget; successive halving
SEARCH_THREADS = 1  # a search's cells' torch threads unless --threads: the same with any --jobs


@dataclass(frozen=True)
class SearchSpec:
    """What ``ganbench search`` was asked to do: ``run``'s losses, data, pair, budget, launcher
    and output; ``trials`` draws per loss; the best of each retrained on ``seeds_best`` seeds."""

    run: RunSpec
    trials: int = 8
    seeds_best: int = 3
    metric: str | None = None  # picks the best draw (HIGHER_IS_BETTER); None: the dataset's
    seed: int = 0  # seed of the draws, and of the draws' cells; the best's seeds follow it
    scheduler: str = "full"  # SCHEDULERS; "halving": ganbench.halving
    eta: int = 3  # halving: 1/eta of a rung's draws go on
    rungs: int = 3  # halving: rungs, the first at 1/eta**(rungs-1) of the budget
    grace: int | None = None  # halving: the first rung's steps (then x eta); None: from rungs
    baseline: Path | None = None  # a search folder whose best settings the losses are compared to
    check_pruning: bool = False  # halving: also train every draw to the full budget, compare


@dataclass(frozen=True)
class SearchResult:
    tables: Tables  # summary and comparisons of the best settings on their new seeds
    draws: pd.DataFrame  # search.csv
    best_of_k: pd.DataFrame  # search_best_of_k.csv
    note: str  # how many draws and seeds each number rests on


def search(spec: SearchSpec, log: Callable[[str], None] | None = None) -> SearchResult:
    """Run the search (see the module docstring); return its tables."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    for name, value in (("--trials", spec.trials), ("--seeds-best", spec.seeds_best)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GanbenchError(f"{name} must be a whole number of at least 1, got {value!r}")
    if not (isinstance(spec.seed, int) and 0 <= spec.seed <= MAX_SEED - spec.seeds_best):
        raise GanbenchError(
            f"--search-seed must be a whole number in [0, {MAX_SEED - spec.seeds_best}] (the "
            f"best settings train on the {spec.seeds_best} seeds after it), got {spec.seed!r}"
        )
    if spec.run.seeds != RunSpec(losses=()).seeds:
        raise GanbenchError(
            "ganbench search trains its draws at --search-seed and the best settings on the "
            "--seeds-best seeds after it: leave out --seed and --seeds"
        )
    check_scheduler(spec)
    prep = prepare(draws_run_spec(spec))
    reference = reference_table(prep)
    spec = dataclasses.replace(spec, metric=spec.metric or headline_metric(prep, reference))
    check_metric(spec.metric, reference)
    better_higher = spec.metric in HIGHER_IS_BETTER
    halving_on = spec.scheduler == "halving"
    if draws_eval_every(spec, prep.spec) != prep.spec.eval_every:
        every = draws_eval_every(spec, prep.spec)
        prep = replan(prep, spec=dataclasses.replace(prep.spec, eval_every=every))
    for line in plan_notes(spec.run, prep, searching=True):
        log(line)
    log(
        f"search: {spec.trials} draws per loss ({', '.join(prep.spec.losses)}), best by "
        f"{spec.metric} ({'higher' if better_higher else 'lower'} is better), then the best of "
        f"each on {spec.seeds_best} new seeds"
    )

    budgets = (
        halving.rung_budgets(int(prep.spec.steps), spec.eta, spec.rungs, spec.grace)
        if halving_on
        else None
    )
    protocol = baseline.protocol(prep, spec, budgets)
    if spec.baseline is not None:
        baseline.check_against(spec.baseline, protocol, prep.spec.out)
    arms = set(prep.spec.losses)
    if spec.baseline is not None:  # its best settings are compared with the new losses'
        arms |= set(baseline.best_rows(spec.baseline).get("loss", ()))
    for line in significance_warning(len(arms), spec.seeds_best, "--seeds-best"):
        log(f"search: {line}")
    draws = draw_cells(prep, spec)
    where: dict[tuple[str, int], tuple[Cell, Prepared]] = {}  # each draw's last cell
    halved = None
    if halving_on:
        log(
            f"search: successive halving, rungs at {budgets} {prep.spec.step_unit} steps, "
            f"1/{spec.eta} of each rung's draws go on"
        )
        halved = halving.run(
            prep,
            draws,
            spec.metric,
            better_higher,
            spec.eta,
            spec.rungs,
            spec.check_pruning,
            log,
            spec.grace,
        )
        where.update(halved.reached)
    if not halving_on or spec.check_pruning:
        full = []
        for cell in draws:
            key = (cell.loss.name, int(cell.tags["trial"]))
            if key in where:
                halving.carry_over(where[key], cell, prep, log)
            where[key] = (cell, prep)
            full.append(cell)
        launchers.run_cells(replan(prep, cells=full), log)
    runs = _latest(prep)
    table = draws_table(prep, draws, runs, spec.metric, where)
    if halved is not None:  # the pick comes from the draws that reached the last rung
        last = halved.rungs[halved.rungs["rung"] == len(halved.budgets)]
        finalists = set(zip(last["loss"], last["trial"].astype(int), strict=True))
        table = table[[k in finalists for k in zip(table["loss"], table["trial"], strict=True)]]

    best_seeds = tuple(spec.seed + 1 + i for i in range(spec.seeds_best))
    best_spec = dataclasses.replace(prep.spec, seeds=best_seeds)
    best_cells = []
    for loss, rows in table.groupby("loss", sort=False):
        chosen = best_draw(rows, spec.metric, better_higher)
        if chosen is None:
            log(
                f"search: no draw of {loss} finished with a finite {spec.metric}; "
                "no best setting to retrain"
            )
            continue
        cell = next(c for c in draws if c.loss.name == loss and c.tags["trial"] == chosen)
        log(f"search: best {loss} draw is trial {chosen} ({_setting(cell)})")
        tags = {"trial": chosen, "search_phase": "best"}
        best_cells += [dataclasses.replace(cell, seed=s, tags=tags) for s in best_seeds]
    best_prep = replan(prep, spec=best_spec, cells=best_cells)
    launchers.run_cells(best_prep, log)

    out = prep.spec.out
    with R.lock(out):
        write_tables(out, reference)
        runs = latest_attempts(R.read_csv(out / R.RUNS))
        curves = R.read_csv(out / R.CURVES)
    # the best settings on their new seeds only: the draw that won the selection stays out
    best_hashes = {c.config_hash for c in best_prep.cells}
    best_runs = runs[runs["config_hash"].astype(str).isin(best_hashes)] if len(runs) else runs
    tables = Tables(summarize(best_runs, curves, reference), compare(best_runs, spec.metric))
    table = draws_table(prep, draws, runs, spec.metric, where)
    table["best"] = False
    for cell in best_cells:
        table.loc[
            (table["loss"] == cell.loss.name) & (table["trial"] == cell.tags["trial"]), "best"
        ] = True
    at_full = table[table["budget"] == prep.spec.steps]
    # best of k over all K draws at one budget: the full one, or halving's first rung (only a
    # few draws reach the full budget there)
    scored = at_full if halved is None else halved.rungs[halved.rungs["rung"] == 1]
    curve = best_of_k(scored, spec.metric, better_higher)
    curve.insert(1, "budget", int(scored["budget"].iloc[0]) if len(scored) else prep.spec.steps)
    if halved is not None:
        R.write_csv(out / halving.RUNGS, halved.rungs)
        if spec.check_pruning:
            check = halving.pruning_check(halved, at_full, spec.metric, better_higher)
            R.write_csv(out / halving.PRUNING, check)
    R.write_csv(out / SEARCH, table)
    baseline.write_protocol(out, protocol)  # any search folder can be a later --baseline
    R.write_csv(out / BEST_OF_K, curve)
    R.write_csv(out / BEST_SUMMARY, tables.summary)
    R.write_csv(out / BEST_COMPARISONS, tables.comparisons)
    failed = failed_cells(replan(prep, cells=draws), runs)
    failed += failed_cells(best_prep, runs)
    note = (
        f"Each loss: {spec.trials} draws at seed {spec.seed} (one cell each), best by "
        f"{spec.metric}; the best setting of each on {spec.seeds_best} new seeds "
        f"({', '.join(map(str, best_seeds))}), which the table below summarises; best-of-k "
        f"bands from {BEST_OF_K_RESAMPLES} resamples of k of the {spec.trials} draws."
    )
    if spec.baseline is not None:  # the new losses' best seeds against the study's
        tables = baseline.compare_with(spec.baseline, out, spec.metric, prep.spec.losses)
        note += f" Against the tuned baselines of {spec.baseline} (read, not retrained)."
    return SearchResult(dataclasses.replace(tables, failed=failed), table, curve, note)


def check_scheduler(spec: SearchSpec) -> None:
    """``--scheduler``, ``--eta`` and ``--rungs`` are valid, else one line."""
    if spec.scheduler not in SCHEDULERS:
        raise GanbenchError(
            f"Unknown --scheduler {spec.scheduler!r}. Available: {', '.join(SCHEDULERS)}"
        )
    for name, value, least in (("--eta", spec.eta, 2), ("--rungs", spec.rungs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise GanbenchError(f"{name} must be a whole number of at least {least}, got {value!r}")
    if spec.grace is not None and (
        isinstance(spec.grace, bool) or not isinstance(spec.grace, int) or spec.grace < 1
    ):
        raise GanbenchError(f"--grace must be a whole number of at least 1, got {spec.grace!r}")
    if spec.check_pruning and spec.scheduler != "halving":
        raise GanbenchError(
            "--check-pruning compares halving with the full search: add --scheduler halving"
        )


def headline_metric(prep: Prepared, reference: pd.DataFrame | None) -> str:
    """The metric a search picks by without ``--metric``: the dataset's ``headline_metric``
    (FID on MNIST, mode KL on the 2-D sets), else its evaluator's first metric."""
    named = str(getattr(prep.dataset, "headline_metric", "") or "")
    if named or reference is None:
        return named or "fid"
    scored = str(reference["metrics"].iloc[0]).split()
    return scored[0] if scored else "fid"


def check_metric(metric: str, reference: pd.DataFrame | None) -> None:
    """``metric`` is one the run's evaluator scores (its real-data row names them), else one
    line naming the valid ones; a search needs an evaluator to pick its best draws."""
    if reference is None:
        raise GanbenchError(
            "ganbench search needs scores to pick the best draws: --fid-samples > 0"
        )
    scored = str(reference["metrics"].iloc[0]).split()
    if metric not in scored:
        raise GanbenchError(
            f"Unknown --metric {metric!r} for this dataset.{did_you_mean(metric, scored)} "
            f"Available: {', '.join(scored)}"
        )


def draws_run_spec(spec: SearchSpec) -> RunSpec:
    """The run spec a search's draws train under, before defaults: the search seed, 1 torch
    thread (:data:`SEARCH_THREADS`), discriminator steps and the pair's defaults (the search
    tunes them: a draw never starts from an earlier study's best) unless the search says
    otherwise."""
    return dataclasses.replace(
        spec.run,
        defaults=spec.run.defaults or "pair",
        seeds=(spec.seed,),
        threads=spec.run.threads if spec.run.threads is not None else SEARCH_THREADS,
        step_unit=spec.run.step_unit or "discriminator",
    )


def draws_eval_every(spec: SearchSpec, filled: RunSpec) -> int:
    """The draws' curve spacing, ``filled`` being :func:`draws_run_spec` with its defaults: a
    halving search without ``--eval-every`` puts two curve points in its first rung, so the
    rung signal is a mean of two (:func:`ganbench.halving.signal`)."""
    if spec.scheduler != "halving" or spec.run.eval_every is not None or not filled.eval_every:
        return int(filled.eval_every)
    first = halving.rung_budgets(int(filled.steps), spec.eta, spec.rungs, spec.grace)[0]
    return filled.log_every * max(1, round(first / 2 / filled.log_every))


def draw_cells(prep: Prepared, spec: SearchSpec) -> list[Cell]:
    """``spec.trials`` cells per loss, each with one draw from the loss's search space on this
    pair; the command line's overrides stay fixed (they win over the draw)."""
    narrowed = prep.pair.search_space
    draws = []
    for entry in {c.loss.name: c.loss for c in prep.cells}.values():
        space = compose(model_class(entry.factory).search_space, narrowed)
        for trial in range(spec.trials):
            drawn = as_overrides(draw(space, spec.seed, entry.name, trial))
            draws.append((entry, drawn, {"trial": trial, "search_phase": "draw"}))
    return drawn_cells(prep, spec.seed, draws)


def _latest(prep: Prepared) -> pd.DataFrame:
    return latest_attempts(R.read_csv(prep.spec.out / R.RUNS))


def draws_table(
    prep: Prepared,
    draws: list[Cell],
    runs: pd.DataFrame,
    metric: str,
    where: dict[tuple[str, int], tuple[Cell, Prepared]] | None = None,
) -> pd.DataFrame:
    """One row per draw: loss, trial, its hyperparameters, and its row's status and metric:
    the row of its last cell (``where``: a halved draw's last rung), else of its full-budget
    cell; ``budget`` (in the search's step unit) says which."""
    records = runs.to_dict("records") if not runs.empty else []
    by_hash = {str(row.get("config_hash")): row for row in records}
    rows = []
    for cell in draws:
        last, at = (where or {}).get((cell.loss.name, int(cell.tags["trial"])), (cell, prep))
        row = by_hash.get(last.config_hash, {})
        hp = cell.hp
        rows.append(
            {
                "loss": cell.loss.name,
                "trial": cell.tags["trial"],
                "seed": cell.seed,
                "status": row.get("status", "missing"),
                metric: row.get(metric, math.nan),
                **({f"{metric}_ema": row.get(f"{metric}_ema")} if f"{metric}_ema" in row else {}),
                "optimizer_g": hp.optimizer_g,
                "lr_g": hp.lr_g,
                "lr_d": hp.lr_d,
                "beta1": hp.beta1,
                "beta2": hp.beta2,
                "n_critic": hp.n_critic,
                "loss_params": json.dumps(dict(hp.extras), sort_keys=True),
                "budget": at.spec.steps,
                "step_unit": at.spec.step_unit,
                "steps": at.spec.generator_steps(hp.n_critic),
                "gflop_per_step": row.get("gflop_per_step", math.nan),
                "train_s": row.get("train_s", math.nan),
                "run_id": row.get("run_id", ""),
                "config_hash": row.get("config_hash", ""),
            }
        )
    return pd.DataFrame(rows)


def _score(rows: pd.DataFrame, metric: str, better_higher: bool) -> np.ndarray:
    """The metric of each draw, a failed or non-finite draw the worst possible value."""
    values = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float, copy=True)
    values[(rows["status"] != "ok").to_numpy() | ~np.isfinite(values)] = (
        -np.inf if better_higher else np.inf
    )
    return -values if better_higher else values  # lower is better from here on


def best_draw(rows: pd.DataFrame, metric: str, better_higher: bool) -> int | None:
    """The trial of the best draw among ``rows``, None if none finished with a finite metric."""
    values = _score(rows, metric, better_higher)
    if not np.isfinite(values).any():
        return None
    return int(rows["trial"].to_numpy()[int(np.argmin(values))])


def best_of_k(table: pd.DataFrame, metric: str, better_higher: bool) -> pd.DataFrame:
    """Per loss and k = 1..K: the best metric among k of its K draws
    (:func:`ganbench.stats.best_of_k`, a failed draw counting as the worst value), each loss
    resampled with its own seeded generator (its band depends on nothing else)."""
    rows = []
    for loss, group in table.groupby("loss", sort=False):
        rng = np.random.default_rng(draw_seed(BOOTSTRAP_SEED, str(loss), 0))
        for row in stats.best_of_k(_score(group, metric, better_higher), rng, better_higher):
            rows.append({"loss": loss, **{k.replace("metric", metric): v for k, v in row.items()}})
    return pd.DataFrame(rows)


def _setting(cell: Cell) -> str:
    hp = cell.hp
    extras = "".join(f" {k} {v:.3g}" for k, v in dict(hp.extras).items())
    return (
        f"{hp.optimizer_g} lr G {hp.lr_g:.2g} D {hp.lr_d:.2g} beta1 {hp.beta1:.2f} "
        f"beta2 {hp.beta2:.3f} n_critic {hp.n_critic}{extras}"
    )
