"""Successive halving for ``ganbench search --scheduler halving``: the same K draws per loss as
the full search, at a fraction of its compute.

Synchronous successive halving (Jamieson & Talwalkar 2016; one bracket of Hyperband, Li et al.
2018), one study per loss, so losses never prune each other: every draw of a loss trains to the
first rung's budget (the grace period: no draw is judged before it); the best ``1/eta`` of them,
by their rung signal, continue to the next rung, **resuming from their checkpoint**
(:func:`ganbench.checkpoints.promote`), and so on up to the full budget, where the search's
metric picks the best. Every loss gets the same K, rungs, ``eta`` and sampler. With ``eta`` 3
and 3 rungs a draw is judged at 1/9 and 1/3 of the budget, and the search costs 7/27 of the full
search's training compute.

The rung signal is read from the cell's ``--eval-every`` curve of the search's metric: the mean
of its last :data:`SIGNAL_POINTS` points, so one lucky or unlucky point (GAN curves go up and
down) does not decide alone; a cell without curve points of the metric is judged by its final
score.

Why not Optuna's ``SuccessiveHalvingPruner``: it is asynchronous (ASHA). A trial is promoted by
comparing it with the trials that reported at that rung *before* it (its first ``eta - 1``
trials are promoted on the evidence of fewer), so its decisions depend on the order in which
cells finish, which differs between ``--jobs 1`` and ``--jobs 2``, between launchers, and
between a search and its resume after a kill. Here each rung waits for all of its cells (the
launchers' barrier), and the rule (:func:`survivors`) is a pure function of the rung's scores:
the same decisions under any launcher, recomputed from the recorded rows on resume.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ganbench import checkpoints, launchers
from ganbench import results as R
from ganbench.plan import Prepared, replan
from ganbench.spec import Cell
from ganbench.tables import latest_attempts

SIGNAL_POINTS = 2  # curve points averaged into a rung signal
RUNGS = "search_rungs.csv"
PRUNING = "search_pruning.csv"
Key = tuple[str, int]  # (loss, trial)


def rung_budgets(full: int, eta: int, rungs: int, grace: int | None = None) -> list[int]:
    """The step budget of each rung, the last one ``full``: ``full / eta**k`` for k = rungs-1
    .. 0, rounded (at least 1 step); or, with a ``grace`` period, ``grace * eta**k`` for as
    long as that is below ``full``, then ``full`` (``rungs`` is not used)."""
    if grace is not None:
        budgets = []
        while grace * eta ** len(budgets) < full:
            budgets.append(int(grace * eta ** len(budgets)))
        return [*budgets, int(full)]
    return [max(1, round(full / eta ** (rungs - 1 - r))) for r in range(rungs)]


def survivors(scores: Mapping[int, float], eta: int) -> list[int]:
    """The trials that go on from a rung: the best ``max(1, n // eta)`` of ``scores`` (trial ->
    score, lower is better, a non-finite score the worst), ties to the lower trial; sorted."""
    keep = max(1, len(scores) // eta)

    def key(trial: int) -> tuple[float, int]:
        value = scores[trial]
        return (value if math.isfinite(value) else math.inf, trial)

    return sorted(sorted(scores, key=key)[:keep])


def signal(points: list[float], final: float) -> float:
    """A rung signal: the mean of the last :data:`SIGNAL_POINTS` curve ``points``, else
    ``final`` (the cell's score); non-finite values make it inf."""
    values = points[-SIGNAL_POINTS:] if points else [final]
    mean = float(np.mean(values)) if values else math.nan
    return mean if math.isfinite(mean) else math.inf


@dataclass(frozen=True)
class Halving:
    """What the halving left: each draw's last cell and the spec it ran under, and one row per
    (draw, rung) for ``search_rungs.csv``."""

    reached: dict[Key, tuple[Cell, Prepared]]
    rungs: pd.DataFrame
    budgets: list[int]


def run(
    prep: Prepared,
    draws: list[Cell],
    metric: str,
    better_higher: bool,
    eta: int,
    n_rungs: int,
    keep_pruned: bool,
    log: Callable[[str], None],
    grace: int | None = None,
) -> Halving:
    """Successive halving of ``draws`` (K per loss) up to ``prep.spec.steps``; see the module
    docstring. ``keep_pruned``: keep pruned draws' checkpoints (a pruning check continues them
    to the full budget); else they are removed once pruned."""
    spec = prep.spec
    budgets = rung_budgets(int(spec.steps), eta, n_rungs, grace)
    sign = -1.0 if better_higher else 1.0
    alive: list[Cell] = list(draws)
    reached: dict[Key, tuple[Cell, Prepared]] = {}
    rows = []
    for r, budget in enumerate(budgets):
        last = r == len(budgets) - 1  # earlier rungs keep their checkpoints for promotion
        rung_spec = dataclasses.replace(
            spec, steps=budget, keep_checkpoints=spec.keep_checkpoints or not last
        )
        rung_prep = replan(
            prep,
            spec=rung_spec,
            cells=[
                dataclasses.replace(c, tags={**c.tags, "rung": r + 1, "search_phase": "draw"})
                for c in alive
            ],
        )
        cells = rung_prep.cells
        for cell in cells:
            key = (cell.loss.name, int(cell.tags["trial"]))
            if key in reached:
                carry_over(reached[key], cell, rung_prep, log)
            reached[key] = (cell, rung_prep)
        log(
            f"search: rung {r + 1} of {len(budgets)}: {len(cells)} draws to {budget} "
            f"{spec.step_unit} steps"
        )
        launchers.run_cells(rung_prep, log)
        with R.lock(spec.out):
            runs = latest_attempts(R.read_csv(spec.out / R.RUNS))
            curves = R.read_csv(spec.out / R.CURVES)
        by_hash = {str(row["config_hash"]): row for row in runs.to_dict("records")}
        scores: dict[str, dict[int, float]] = {}
        for cell in cells:
            chash = cell.config_hash
            row = by_hash.get(chash, {})
            ok = row.get("status") == "ok"
            final = sign * float(row.get(metric, math.nan)) if ok else math.inf
            points = []
            if ok and len(curves):
                mine = curves[(curves["run_id"] == row["run_id"]) & (curves["metric"] == metric)]
                points = [sign * float(v) for v in mine.sort_values("step")["value"]]
            value = signal(points, final) if ok else math.inf
            scores.setdefault(cell.loss.name, {})[int(cell.tags["trial"])] = value
            rows.append(
                {
                    "loss": cell.loss.name,
                    "trial": int(cell.tags["trial"]),
                    "rung": r + 1,
                    "budget": budget,
                    "step_unit": spec.step_unit,
                    "steps": rung_prep.spec.generator_steps(cell.hp.n_critic),
                    "status": row.get("status", "missing"),
                    "signal": sign * value if math.isfinite(value) else math.nan,
                    metric: row.get(metric, math.nan),
                    "gflop_per_step": row.get("gflop_per_step", math.nan),
                    "config_hash": chash,
                    "promoted": False,
                }
            )
        if r == len(budgets) - 1:
            break
        kept = {loss: set(survivors(s, eta)) for loss, s in scores.items()}
        for row in rows[-len(cells) :]:
            row["promoted"] = row["trial"] in kept[row["loss"]]
        alive = [c for c in alive if int(c.tags["trial"]) in kept[c.loss.name]]
        if not keep_pruned:
            for row in rows[-len(cells) :]:
                if not row["promoted"]:
                    checkpoints.path_for(spec.out, row["config_hash"]).unlink(missing_ok=True)
        for loss, chosen in kept.items():
            log(f"search: {loss} rung {r + 1}: trials {', '.join(map(str, chosen))} go on")
    return Halving(reached, pd.DataFrame(rows), budgets)


def carry_over(
    before: tuple[Cell, Prepared], cell: Cell, prep: Prepared, log: Callable[[str], None]
) -> None:
    """Let ``cell`` (of ``prep``) continue the shorter cell ``before`` ran as, from its final
    checkpoint, unless ``cell`` is finished or has a checkpoint of its own."""
    old_hash, new_hash = before[0].config_hash, cell.config_hash
    if old_hash == new_hash or R.finished_run(prep.spec.out, new_hash) is not None:
        return
    checkpoints.promote(
        prep.spec.out,
        old_hash,
        new_hash,
        dict(cell.config),
        prep.spec.generator_steps(cell.hp.n_critic),
        log,
    )


def pruning_check(
    halving: Halving, full_scores: pd.DataFrame, metric: str, better_higher: bool
) -> pd.DataFrame:
    """``search_pruning.csv``: per loss, how the halving's pick fares against the same draws
    trained to the full budget (``full_scores``: loss, trial, ``metric``, status,
    gflop_per_step, steps): the full-budget rank of the halving's pick (1 = the full search's
    best), the full search's pick, the Spearman rank correlation of each rung's signal with the
    full-budget scores, and the training compute of both in GFLOP (counted FLOPs per step x
    generator steps trained)."""
    from scipy.stats import spearmanr

    sign = -1.0 if better_higher else 1.0
    rungs, last = halving.rungs, len(halving.budgets)
    out = []
    for loss, full in full_scores.groupby("loss", sort=False):
        values = sign * pd.to_numeric(full[metric], errors="coerce")
        values[(full["status"] != "ok") | ~np.isfinite(values)] = np.inf
        final_by_trial = dict(zip(full["trial"].astype(int), values, strict=True))
        order = sorted(final_by_trial, key=lambda t: (final_by_trial[t], t))
        mine = rungs[rungs["loss"] == loss]
        top = mine[mine["rung"] == last]
        top_values = sign * pd.to_numeric(top[metric], errors="coerce")
        top_values[(top["status"] != "ok") | ~np.isfinite(top_values)] = np.inf
        pick = int(top["trial"].to_numpy()[int(np.argmin(top_values.to_numpy()))])
        row = {
            "loss": loss,
            "draws": len(full),
            "halving_pick": pick,
            "halving_pick_full_rank": order.index(pick) + 1,
            "full_pick": order[0],
        }
        for r in range(1, last):
            at = mine[mine["rung"] == r].set_index("trial")["signal"]
            trials = [t for t in at.index if np.isfinite(final_by_trial.get(int(t), np.inf))]
            finite = [t for t in trials if np.isfinite(at[t])]
            x = [sign * at[t] for t in finite]
            y = [final_by_trial[int(t)] for t in finite]
            varies = len(finite) >= 3 and len(set(x)) > 1 and len(set(y)) > 1
            rho = spearmanr(x, y)[0] if varies else math.nan  # undefined for constant input
            row[f"rank_corr_rung{r}"] = float(rho)
        gflop_full = float((full["gflop_per_step"] * full["steps"]).sum())
        reached = mine.sort_values("rung").drop_duplicates("trial", keep="last")
        gflop_sh = float((reached["gflop_per_step"] * reached["steps"]).sum())
        row.update(
            gflop_halving=gflop_sh,
            gflop_full=gflop_full,
            compute_ratio=gflop_sh / gflop_full if gflop_full else math.nan,
        )
        out.append(row)
    return pd.DataFrame(out)
