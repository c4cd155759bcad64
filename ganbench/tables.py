"""summary.csv and comparisons.csv, built from runs.csv and curves.csv.

Both ``ganbench run`` (at its end) and ``ganbench report`` call :func:`write_tables`, so the two
files always mean the same thing.

Definitions
-----------
- An **arm** is one summary row: runs with equal :data:`GROUP` columns (same loss, model pair,
  dataset, steps and ``setup``, the hash of the whole configuration but the seed), over seeds.
- Arms are **compared** when they share a budget, the :data:`BUDGET` columns (model pair, dataset,
  generator steps, batch size, precision, and how FID was computed where runs.csv records it):
  everything but the objective and its hyperparameters. Every pair of arms in a budget group is
  one row of comparisons.csv; the Holm correction runs over the pairs of one budget group.
- Only ``status == "ok"`` runs contribute values; ``n_runs``/``n_ok``/``n_diverged``/``n_error``
  say what was dropped.
- **Matched budgets** (equal compute): from curves.csv, each ok run's FID evaluation points (the
  ``fid`` metric, written by ``--eval-every``) are placed on its training wall-clock seconds
  (``wall_s``) and counted training GFLOP (``train_gflop``), linearly interpolated between log
  points from (step 0, budget 0). A run's final budget is the budget at its last FID point; the
  budget group's matched budget is the smallest final budget of all its ok runs, so every run
  reaches it and nothing is extrapolated. Each run's FID at the matched budget is interpolated
  linearly between its two neighbouring FID points (NaN if the budget falls before its first FID
  point). Wall-clock budgets are only comparable between runs on the same machine. Without FID
  curve points these columns are absent.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganbench import results as R
from ganbench import stats
from ganbench.arms import (
    EVAL_KEYS,
    GROUP,
    budget_columns,
    group_columns,
    present_columns,
    ranking_metric,
    with_step_budget,
)
from ganbench.convergence import FLOOR_MULTIPLES
from ganbench.datasets import HIGHER_IS_BETTER

COMPARISONS = "comparisons.csv"
REFERENCE_LOSS = "(real data)"

HEADLINE = ("fid", "fid_ema", "is_mean", "is_mean_ema")  # shown first, and fully described
# time to quality (ganbench.convergence), for G and EMA-G: also n (seeds that reached it), mean,
# std, median and a bootstrap CI over the seeds that reached it
TIME_TO_QUALITY = tuple(
    f"{budget}_to_{k}x_floor{suffix}"
    for suffix in ("", "_ema")
    for k in FLOOR_MULTIPLES
    for budget in ("s", "gflop")
)
# fidelity and diversity apart (KID, improved precision/recall, density/coverage): also CIs
MANIFOLD = tuple(
    f"{m}{suffix}"
    for suffix in ("", "_ema")
    for m in ("kid", "precision_k3", "recall_k3", "density_k5", "coverage_k5")
)
# mode coverage (the 2-D mixtures, stacked-mnist; counts vary between seeds): also CIs
MODE_METRICS = ("modes_covered", "mode_kl", "high_quality_frac", "confident_frac", "channel_fid")
MODES = tuple(f"{m}{suffix}" for suffix in ("", "_ema") for m in MODE_METRICS)
FULL_STATS = frozenset(HEADLINE + TIME_TO_QUALITY + MANIFOLD + MODES)
IMPROVING = ("still_improving", "still_improving_ema")  # booleans: counted, n_<column>
BUDGET_METRICS = ("wall_s", "train_gflop")  # curve metrics that measure spent compute
MATCHED_METRIC = "fid"  # the curve metric reported at matched budgets
COMPARED_METRIC = "fid"

# Numeric runs.csv columns that describe a run's configuration or bookkeeping, not an outcome.
# Every other numeric column of ok runs is summarised as a metric (mean and std).
NOT_METRICS = frozenset(
    {
        "seed",
        "steps",
        "batch_size",
        "n_critic",
        "lr_g",
        "lr_d",
        "beta1",
        "beta2",
        "diverged_at",
        "steps_done",
        "d_steps",
        "step_budget",
        "budget_steps",
        "threads",
        "fid_samples",
        "eval_samples",
        "resumed_from_step",
        "format_version",
        "eval_every",
        "log_every",
        "parallel_cells",
        "pack",
        "ema_decay",
        "kid_subsets",
        "kid_subset_size",
        "untuned",  # a flag (summary: any seed of the arm), not a measurement
        # text columns that read as numbers when every row leaves them empty
        "error",
        "compile",
        "diverged_reason",
        "samples_error",
        "samples_ema_error",
    }
)

COMPARISON_COLUMNS = (
    "loss_a loss_b setup_a setup_b n_a n_b fid_mean_a fid_mean_b fid_diff fid_diff_ci_low "
    "fid_diff_ci_high u_statistic p_value p_holm holm_pairs significant"
).split()


@dataclass(frozen=True)
class Tables:
    """The two derived tables of a results directory."""

    summary: pd.DataFrame
    comparisons: pd.DataFrame
    failed: tuple[str, ...] = ()  # labels of this run's cells whose latest row is an error
    runs: pd.DataFrame | None = None  # this run's cells: the latest runs.csv row of each


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """Numeric outcome columns of ``runs``: headline metrics first, then the rest in file order."""
    numeric = [
        c
        for c in runs.columns
        if c not in NOT_METRICS
        and c not in GROUP
        and pd.api.types.is_numeric_dtype(runs[c])
        and not pd.api.types.is_bool_dtype(runs[c])
    ]
    return [m for m in HEADLINE if m in numeric] + [c for c in numeric if c not in HEADLINE]


def _ok(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def _describe(values: pd.Series, prefix: str, full: bool) -> dict[str, Any]:
    x = stats.finite(values)
    row: dict[str, Any] = {}
    if full:
        row[f"{prefix}_n"] = len(x)
    row[f"{prefix}_mean"] = float(np.mean(x)) if len(x) else math.nan
    row[f"{prefix}_std"] = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
    if full:
        row[f"{prefix}_median"] = float(np.median(x)) if len(x) else math.nan
        row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"] = stats.bootstrap_ci(x)
    return row


def budget_curve(
    run: pd.DataFrame, metric: str, budget: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run's ``metric`` curve on its spent ``budget``: arrays (step, budget, value).

    ``run`` holds the run's curves.csv rows. The budget at each ``metric`` point is interpolated
    linearly between the run's ``budget`` log points, starting from (step 0, budget 0); points
    after the last log point are dropped. Budgets rise with the step.
    """
    points = run[run["metric"] == metric].drop_duplicates("step", keep="last").sort_values("step")
    spent = run[run["metric"] == budget].drop_duplicates("step", keep="last").sort_values("step")
    if points.empty or spent.empty:
        return np.empty(0), np.empty(0), np.empty(0)
    points = points[points["step"] <= spent["step"].max()]
    steps = points["step"].to_numpy(float)
    x = np.interp(
        steps,
        np.r_[0.0, spent["step"].to_numpy(float)],
        np.r_[0.0, spent["value"].to_numpy(float)],
    )
    return steps, x, points["value"].to_numpy(float)


def matched_budgets(
    runs: pd.DataFrame, curves: pd.DataFrame, metric: str = MATCHED_METRIC
) -> pd.DataFrame:
    """Per ok run: each budget group's matched budgets and the run's ``metric`` at them.

    Columns ``run_id``, then for every budget ``b`` in :data:`BUDGET_METRICS`: ``matched_<b>``
    (the group's budget) and ``<metric>_at_<b>``. Empty (no columns) when curves.csv has no
    ``metric`` points. The rule is in this module's docstring.
    """
    if curves.empty or not (curves["metric"] == metric).any() or runs.empty:
        return pd.DataFrame()
    ok = with_step_budget(_ok(runs))
    by_run = {run_id: c for run_id, c in curves.groupby("run_id", sort=False)}
    rows = []
    for _, group in ok.groupby(budget_columns(ok), sort=False, dropna=False):
        curves_of = {
            run_id: {b: budget_curve(by_run[run_id], metric, b)[1:] for b in BUDGET_METRICS}
            for run_id in group["run_id"]
            if run_id in by_run
        }
        matched = {}
        for b in BUDGET_METRICS:
            finals = [c[b][0][-1] for c in curves_of.values() if len(c[b][0])]
            finals = [f for f in finals if math.isfinite(f)]
            matched[b] = min(finals) if finals else math.nan
        for run_id in group["run_id"]:
            row: dict[str, Any] = {"run_id": run_id}
            for b in BUDGET_METRICS:
                row[f"matched_{b}"] = matched[b]
                x, y = curves_of.get(run_id, {}).get(b, (np.empty(0), np.empty(0)))
                row[f"{metric}_at_{b}"] = stats.value_at_budget(x, y, matched[b])
            rows.append(row)
    return pd.DataFrame(rows)


def _reference_rows(reference: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    """Name the real-data metrics like the summary's means (``fid`` -> ``fid_mean``)."""
    reference = reference.copy()
    for c in list(reference.columns):
        mean = f"{c}_mean"
        if c not in columns and mean in columns:
            earlier = reference[mean] if mean in reference else pd.Series(math.nan, reference.index)
            reference[mean] = reference[c].where(reference[c].notna(), earlier)
            reference = reference.drop(columns=c)
    return reference


def summarize(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The summary table: one row per arm, sorted by mean FID (rows without FID last).

    Columns: the arm's key (:func:`group_columns`); ``n_runs``, ``n_ok``, ``n_diverged``,
    ``n_error`` and ``seeds``; for each headline metric ``m`` present (``fid``, ``is_mean``):
    ``m_n``, ``m_mean``, ``m_std``, ``m_median``, ``m_ci_low``, ``m_ci_high`` (95% percentile
    bootstrap of the mean, :func:`ganbench.stats.bootstrap_ci`), and the same for the EMA
    generator's (``fid_ema``, ``is_mean_ema``) and the time-to-quality columns (over the seeds
    that reached the threshold, ``m_n`` of them); ``n_still_improving`` (and ``_ema``): ok seeds
    still improving at the end of the budget (:mod:`ganbench.convergence`); for every other metric
    (:func:`metric_columns`, e.g. ``train_images_per_s``): ``m_mean`` and ``m_std``; and, where
    curves.csv has FID points, ``matched_wall_s``, ``fid_at_wall_s_{n,mean,std}``,
    ``matched_train_gflop`` and ``fid_at_train_gflop_{n,mean,std}``.

    ``reference`` rows (the real-data floor, ``loss = "(real data)"``) are appended, their metric
    columns renamed to the summary's ``<metric>_mean`` names.
    """
    if runs.empty:
        return pd.DataFrame()
    keys = group_columns(runs)
    metrics = metric_columns(runs)
    matched = matched_budgets(runs, curves if curves is not None else pd.DataFrame())
    if not matched.empty:
        runs = runs.merge(matched, on="run_id", how="left")
    rows = []
    for key, group in runs.groupby(keys, sort=False, dropna=False):
        ok = _ok(group)
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["n_runs"] = len(group)
        row["n_ok"] = len(ok)
        row["n_diverged"] = int((group["status"] == "diverged").sum())
        row["n_error"] = int((group["status"] == "error").sum())
        row["seeds"] = " ".join(str(s) for s in sorted(group["seed"].unique()))
        for m in metrics:
            row.update(_describe(ok[m], m, full=m in FULL_STATS))
        if "untuned" in group:
            row["untuned"] = bool(group["untuned"].astype(str).str.lower().eq("true").any())
        for flag in IMPROVING:
            if flag in ok:
                row[f"n_{flag}"] = int(ok[flag].astype(str).str.lower().eq("true").sum())
        for b in BUDGET_METRICS if not matched.empty else ():
            budget = ok[f"matched_{b}"].dropna()
            row[f"matched_{b}"] = float(budget.iloc[0]) if len(budget) else math.nan
            col = f"{MATCHED_METRIC}_at_{b}"
            row[f"{col}_n"] = len(stats.finite(ok[col]))
            row.update(_describe(ok[col], col, full=False))
        rows.append(row)
    table = pd.DataFrame(rows)
    if reference is not None and not reference.empty:
        table = pd.concat(
            [table, _reference_rows(reference, table.columns)], ignore_index=True, sort=False
        )
    metric = ranking_metric(table)  # the real-data floor ranks with the arms (usually first)
    if f"{metric}_mean" in table:
        up = metric not in HIGHER_IS_BETTER
        table = table.sort_values(f"{metric}_mean", ascending=up, na_position="last", kind="stable")
    return table.reset_index(drop=True)


def compare(runs: pd.DataFrame, metric: str = COMPARED_METRIC) -> pd.DataFrame:
    """comparisons.csv: every pair of arms that share a budget group.

    Per pair (arms in order of first appearance in runs.csv, ``a`` before ``b``): the ok runs'
    counts of finite ``metric`` values ``n_a``/``n_b``, their means, ``fid_diff = mean_a -
    mean_b`` with a 95% percentile bootstrap interval (each side resampled on its own), the
    two-sided Mann-Whitney ``u_statistic`` (of ``a``) and ``p_value``, the Holm-adjusted
    ``p_holm`` over the budget group's tested pairs (``holm_pairs`` of them), and
    ``significant`` (``p_holm < 0.05``). A side with fewer than 2 values gets NaN statistics
    and stays out of the Holm family. Columns: :func:`budget_columns`, then
    :data:`COMPARISON_COLUMNS` (``fid`` replaced by ``metric``).
    """
    columns = [c.replace("fid", metric, 1) for c in COMPARISON_COLUMNS]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = with_step_budget(runs)
    budget = budget_columns(runs)
    keys = group_columns(runs)
    rows = []
    for bkey, bgroup in runs.groupby(budget, sort=False, dropna=False):
        arms = list(bgroup.groupby(keys, sort=False, dropna=False))
        family = []
        for (key_a, arm_a), (key_b, arm_b) in itertools.combinations(arms, 2):
            a = _ok(arm_a)[metric] if metric in arm_a else pd.Series(dtype=float)
            b = _ok(arm_b)[metric] if metric in arm_b else pd.Series(dtype=float)
            xa, xb = stats.finite(a), stats.finite(b)
            ka, kb = dict(zip(keys, key_a, strict=True)), dict(zip(keys, key_b, strict=True))
            row: dict[str, Any] = dict(zip(budget, bkey, strict=True))
            mean_a = float(np.mean(xa)) if len(xa) else math.nan
            mean_b = float(np.mean(xb)) if len(xb) else math.nan
            low, high = stats.bootstrap_diff_ci(xa, xb)
            u, p = stats.mann_whitney(xa, xb)
            row.update(
                {
                    "loss_a": ka["loss"],
                    "loss_b": kb["loss"],
                    "setup_a": ka["setup"],
                    "setup_b": kb["setup"],
                    "n_a": len(xa),
                    "n_b": len(xb),
                    f"{metric}_mean_a": mean_a,
                    f"{metric}_mean_b": mean_b,
                    f"{metric}_diff": mean_a - mean_b,
                    f"{metric}_diff_ci_low": low,
                    f"{metric}_diff_ci_high": high,
                    "u_statistic": u,
                    "p_value": p,
                }
            )
            family.append(row)
        adjusted = stats.holm([r["p_value"] for r in family])
        for row, p_holm in zip(family, adjusted, strict=True):
            row["p_holm"] = p_holm
            row["holm_pairs"] = int(np.isfinite(adjusted).sum())  # the family Holm corrected for
            row["significant"] = bool(p_holm < stats.ALPHA)
        rows += family
    return pd.DataFrame(rows, columns=budget + columns)


def _merge_reference(old: pd.DataFrame, new: pd.DataFrame | None) -> pd.DataFrame | None:
    """Reference rows to keep: the earlier summary's, replaced by new ones for the same key."""
    parts = []
    if not old.empty and "loss" in old:
        parts.append(old[old["loss"] == REFERENCE_LOSS].dropna(axis=1, how="all"))
    if new is not None and not new.empty:
        parts.append(new)
    if not parts:
        return None
    merged = pd.concat(parts, ignore_index=True, sort=False)
    key = present_columns(["loss", "dataset", *EVAL_KEYS], merged)
    return merged.drop_duplicates(key, keep="last").reset_index(drop=True)


def latest_attempts(runs: pd.DataFrame) -> pd.DataFrame:
    """Only the latest row of each cell (``config_hash``): a rerun (``--fresh``, or a retried
    error) supersedes earlier attempts, which stay in runs.csv."""
    if runs.empty or "config_hash" not in runs:
        return runs
    return runs.drop_duplicates("config_hash", keep="last").reset_index(drop=True)


def write_tables(out: Path, reference: pd.DataFrame | None = None) -> Tables:
    """Rebuild ``out/summary.csv`` and ``out/comparisons.csv`` from runs.csv and curves.csv.

    The real-data reference rows of the existing summary.csv are kept (runs.csv does not hold
    them); ``reference`` rows replace those of the same dataset and evaluation. The caller holds
    :func:`ganbench.results.lock` for ``out``. Both files are written atomically.
    """
    runs = latest_attempts(R.read_csv(out / R.RUNS))
    curves = R.read_csv(out / R.CURVES)
    reference = _merge_reference(R.read_derived_csv(out / R.SUMMARY), reference)
    summary = summarize(runs, curves, reference)
    comparisons = compare(runs, ranking_metric(runs) if "dataset" in runs else COMPARED_METRIC)
    if not summary.empty:
        R.write_csv(out / R.SUMMARY, summary)
    R.write_csv(out / COMPARISONS, comparisons)
    return Tables(summary, comparisons)
