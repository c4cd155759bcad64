"""Tuned baselines for a new loss, without retraining them: ``ganbench search --loss my-loss
--baseline results/<study>``.

Every search writes its protocol (:func:`protocol`: dataset, pair, budget and its unit, threads,
precision, evaluation, K, scheduler, rungs, metric, seeds, search space, the config-hash
version) to ``search_protocol.json`` in its folder. A search given ``--baseline FOLDER`` first
compares its own protocol with the folder's and refuses, before training, with one line naming
every difference; then it tunes its losses alone on the same protocol, and compares their best
settings' seeds with the folder's best settings' seeds (``baseline_summary.csv``,
``baseline_comparisons.csv``: bootstrap CIs, Mann-Whitney tests, Holm over the pairs of one
budget group). The baselines' rows are read, never retrained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench import results as R
from ganbench.errors import GanbenchError
from ganbench.files import atomic_write_bytes
from ganbench.identity import HASH_VERSION
from ganbench.plan import Prepared
from ganbench.search_space import SHARED_SPACE
from ganbench.tables import Tables, compare, latest_attempts, summarize

PROTOCOL = "search_protocol.json"
SUMMARY = "baseline_summary.csv"
COMPARISONS = "baseline_comparisons.csv"


def protocol(prep: Prepared, search: Any, budgets: list[int] | None) -> dict[str, Any]:
    """What a search's results depend on besides its losses (``search``: its SearchSpec;
    ``budgets``: its rungs' step budgets, None for the full search)."""
    spec = prep.spec
    return {
        "config_hash_version": HASH_VERSION,
        "dataset": spec.dataset,
        "data": spec.data_id if spec.data_dir is not None else "",
        "generator": spec.generator,
        "discriminator": spec.discriminator,
        "step_unit": spec.step_unit,
        "steps": spec.steps,
        "batch_size": spec.batch_size,
        "precision": spec.precision,
        "threads": spec.threads,
        "device": prep.device.type,
        "ema_decay": spec.ema_decay,
        "reuse_fake": bool(spec.reuse_fake),
        "init": spec.init,
        # only where not the pair's, so the protocols of searches from before --defaults match
        **({"defaults": spec.defaults} if spec.defaults not in (None, "pair") else {}),
        "overrides": json.loads(json.dumps(spec.overrides, sort_keys=True, default=str)),
        "fid_samples": spec.eval.fid_samples,
        "backbone": spec.eval.backbone,
        "eval_every": spec.eval_every,
        "eval_every_samples": spec.eval_every_samples,
        "trials": search.trials,
        "seeds_best": search.seeds_best,
        "search_seed": search.seed,
        "metric": search.metric,
        "scheduler": search.scheduler,
        "rung_budgets": budgets,
        "eta": search.eta if budgets else None,
        "sampler": "random",
        "space": {key: repr(value) for key, value in SHARED_SPACE.items()},
        "pair_space": {key: repr(v) for key, v in prep.pair.search_space.items()},
    }


def write_protocol(out: Path, mine: dict[str, Any]) -> None:
    atomic_write_bytes(out / PROTOCOL, (json.dumps(mine, indent=2, sort_keys=True) + "\n").encode())


def check_against(folder: Path, mine: dict[str, Any], out: Path) -> None:
    """Refuse (one line) a ``--baseline`` folder that is no search's, is this search's own
    ``--out``, or whose protocol differs from ``mine`` in anything."""
    path = folder / PROTOCOL
    if not path.is_file():
        raise GanbenchError(
            f"--baseline {str(folder)!r} holds no {PROTOCOL}: give the folder of a ganbench search"
        )
    if folder.resolve() == out.resolve():
        raise GanbenchError("--baseline names this search's own --out: give the new loss another")
    try:
        theirs = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GanbenchError(f"{path} is not a ganbench search protocol ({exc})") from None
    differ = [
        f"{key} ({json.dumps(mine.get(key))} here, {json.dumps(theirs.get(key))} there)"
        for key in sorted(set(mine) | set(theirs))
        if mine.get(key) != theirs.get(key)
    ]
    if differ:
        raise GanbenchError(
            f"--baseline {folder}: this search's protocol differs from the study's in "
            f"{'; '.join(differ)}; use the study's settings (its study.toml with --config)"
        )


def best_rows(folder: Path) -> pd.DataFrame:
    """The latest rows of the best settings' seeds in a search folder."""
    runs = latest_attempts(R.read_csv(folder / R.RUNS))
    if runs.empty or "search_phase" not in runs:
        return runs
    return runs[runs["search_phase"] == "best"]


def compare_with(folder: Path, out: Path, metric: str, losses: tuple[str, ...]) -> Tables:
    """The best settings of ``losses`` (in ``out``) against every baseline's (in ``folder``):
    summary and comparisons over their new seeds, written to ``out``; only pairs with one of
    ``losses`` on a side are kept (Holm ran over every pair of the budget group)."""
    theirs = best_rows(folder)
    theirs = theirs[~theirs["loss"].isin(losses)] if len(theirs) else theirs
    mine = best_rows(out)
    mine = mine[mine["loss"].isin(losses)] if len(mine) else mine
    runs = pd.concat([mine, theirs], ignore_index=True, sort=False)
    curves = pd.concat(
        [R.read_csv(out / R.CURVES), R.read_csv(folder / R.CURVES)], ignore_index=True
    )
    summary = summarize(runs, curves)
    comparisons = compare(runs, metric)
    if len(comparisons):
        ours = comparisons["loss_a"].isin(losses) | comparisons["loss_b"].isin(losses)
        comparisons = comparisons[ours].reset_index(drop=True)
    R.write_csv(out / SUMMARY, summary)
    R.write_csv(out / COMPARISONS, comparisons)
    return Tables(summary, comparisons)
