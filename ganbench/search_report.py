"""The search part of ``ganbench report``, where a results directory holds a search
(:mod:`ganbench.search`): per loss, the metric's distribution over its draws (a box plot) and
the best metric among k draws against k with its bootstrap band (Lucic et al. 2018, Fig. 4)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganbench import results as R
from ganbench.datasets import HIGHER_IS_BETTER
from ganbench.halving import RUNGS  # every draw at every rung it reached
from ganbench.tables import COMPARISONS
from ganbench.views import (
    comparison_view,
    fmt,
    markdown_table,
    significance_note,
    summary_view,
)

# the files ganbench search writes beside runs.csv (ganbench.search)
SEARCH = "search.csv"  # one row per draw
BEST_OF_K = "search_best_of_k.csv"  # best metric among k draws against k
BEST_SUMMARY = "search_best.csv"  # summary.csv's columns, over the best settings' new seeds
BEST_COMPARISONS = "search_comparisons.csv"  # comparisons.csv's, between the best settings

# a draw's setting, as search.csv has it
SETTING_COLUMNS = ("optimizer_g", "lr_g", "lr_d", "beta1", "beta2", "n_critic", "loss_params")
CAPTIONS = {
    "search_distribution": "Each loss's metric over its search draws (failed draws left out; "
    "a halving search's at its first rung, where every draw has one)",
    "search_best_of_k": "Best metric among k draws against k (median, 95% band over resamples; "
    "a halving search's at its first rung)",
}


def _metric(table: pd.DataFrame) -> str:
    return str(table.columns[4])  # loss, trial, seed, status, then the metric (search.csv)


def plot_distribution(out: Path, path: Path, figure: Callable, save: Callable) -> Path | None:
    table = R.read_csv(out / SEARCH)
    metric = _metric(table)
    budget = ""
    if (out / RUNGS).is_file():  # halving: every draw at the first rung, not each at its last
        rungs = R.read_csv(out / RUNGS)
        table = rungs[rungs["rung"] == 1]
        budget = f" at {table['budget'].iloc[0]} {table['step_unit'].iloc[0]} steps"
    groups = [
        (loss, pd.to_numeric(rows[rows["status"] == "ok"][metric], errors="coerce").dropna())
        for loss, rows in table.groupby("loss", sort=False)
    ]
    groups = [(loss, values) for loss, values in groups if len(values)]
    if not groups:
        return None
    fig = figure()
    ax = fig.add_subplot()
    ax.boxplot([v.to_numpy() for _, v in groups])
    ax.set_xticks(range(1, len(groups) + 1), [loss for loss, _ in groups])
    for i, (_, values) in enumerate(groups, 1):
        ax.scatter(np.full(len(values), i), values, s=12, alpha=0.6)
    ax.set_ylabel(f"{metric}{budget} (one point per draw)")
    if all((v > 0).all() for _, v in groups):
        ax.set_yscale("log")
    return save(fig, path)


def plot_best_of_k(out: Path, path: Path, figure: Callable, save: Callable) -> Path | None:
    curve = R.read_csv(out / BEST_OF_K)
    if curve.empty:
        return None
    metric = next(c for c in curve.columns if c.endswith("_median"))[len("best_") : -len("_median")]
    fig = figure()
    ax = fig.add_subplot()
    for loss, rows in curve.groupby("loss", sort=False):
        k = rows["k"].to_numpy()
        lo, hi = rows[f"best_{metric}_lo"], rows[f"best_{metric}_hi"]
        finite = np.isfinite(lo) & np.isfinite(hi)
        (line,) = ax.plot(k, rows[f"best_{metric}_median"], marker="o", label=loss)
        ax.fill_between(k[finite], lo[finite], hi[finite], alpha=0.2, color=line.get_color())
    ax.set_xlabel("k: draws tried")
    budget = f" at {curve['budget'].iloc[0]} steps" if "budget" in curve else ""
    ax.set_ylabel(f"best {metric} among k draws{budget}")
    values = curve[f"best_{metric}_median"]
    if (values[np.isfinite(values)] > 0).all():
        ax.set_yscale("log")
    ax.legend()
    return save(fig, path)


def drawers(out: Path, plots_dir: Path, figure: Callable, save: Callable) -> dict[str, Callable]:
    """The search plots to draw, where ``out`` holds a search; none elsewhere."""
    if not (out / SEARCH).is_file():
        return {}
    return {
        "search_distribution": lambda: plot_distribution(
            out, plots_dir / "search_distribution.png", figure, save
        ),
        "search_best_of_k": lambda: plot_best_of_k(
            out, plots_dir / "search_best_of_k.png", figure, save
        ),
    }


def shown_runs(out: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs ``ganbench report`` draws: where ``out`` holds a search, its best settings on
    their new seeds (every draw is in search.csv and the search's own plots), else all."""
    if not (out / SEARCH).is_file() or "search_phase" not in runs:
        return runs
    best = runs[runs["search_phase"] == "best"]
    return best if len(best) else runs


def section(out: Path, plots: dict[str, Path | None]) -> list[str]:
    """The search section of report.md, where ``out`` holds a search."""
    if not (out / SEARCH).is_file():
        return []
    table = R.read_csv(out / SEARCH)
    metric, draws = _metric(table), table.groupby("loss")["trial"].nunique()
    lines = [
        "## Search",
        "",
        f"`{SEARCH}`: {', '.join(f'{loss} {n}' for loss, n in draws.items())} draws (one cell "
        f"each), the best by {metric}; `{BEST_SUMMARY}` and `{BEST_COMPARISONS}`: the best "
        "setting of each loss on new seeds.",
        "",
    ]
    best = R.read_csv(out / BEST_SUMMARY) if (out / BEST_SUMMARY).is_file() else pd.DataFrame()
    if not best.empty:
        lines += [markdown_table(summary_view(best)), ""]
    comparisons = R.read_csv(out / BEST_COMPARISONS) if (out / BEST_COMPARISONS).is_file() else None
    if comparisons is not None and not comparisons.empty:
        lines += [
            markdown_table(comparison_view(comparisons)),
            "",
            significance_note(comparisons),
            "",
        ]
    picked = table[table["best"].astype(str) == "True"] if "best" in table else table.iloc[:0]
    if len(picked):
        columns = [c for c in (*SETTING_COLUMNS, metric, f"{metric}_ema") if c in picked]
        lines += ["Each loss's pick, the setting its new seeds trained (its draw's seed-0 scores):"]
        lines += ["", markdown_table(picked[["loss", "trial", *columns]].map(fmt)), ""]
    for name, caption in CAPTIONS.items():
        if plots.get(name) is not None:
            lines += [f"![{caption}]({plots[name].relative_to(out).as_posix()})", ""]
    return lines + [
        f"Every draw at every budget is an arm of its own in `{R.SUMMARY}` and "
        f"`{COMPARISONS}` (halving's rungs included), which this report leaves out.",
        "",
    ]


def search_view(result: Any) -> pd.DataFrame:
    """The printed search table (``result``: a :class:`ganbench.search.SearchResult`): per
    loss, its draws, how many finished, the chosen draw's metric, the median metric of the
    draws that reached the full budget (a halving's pruned draws stop earlier), and the best
    setting."""
    table = result.draws
    metric = table.columns[4]
    out = []
    for loss, rows in table.groupby("loss", sort=False):
        ok = rows[rows["status"] == "ok"]
        full = ok[ok["budget"] == ok["budget"].max()] if "budget" in ok else ok
        values = pd.to_numeric(full[metric], errors="coerce")
        chosen = rows[rows.get("best", False) == True]  # noqa: E712
        best = chosen.iloc[0] if len(chosen) else None
        if best is None and len(values):  # no pick recorded: the best value, as before
            value = values.max() if metric in HIGHER_IS_BETTER else values.min()
        else:
            value = (
                pd.to_numeric(pd.Series([best[metric]]), errors="coerce")[0]
                if best is not None
                else math.nan
            )
        out.append(
            {
                "loss": loss,
                "draws": len(rows),
                "ok": len(ok),
                f"best {metric}": f"{value:.4g}" if np.isfinite(value) else "-",
                f"median {metric}": f"{values.median():.4g}" if len(values) else "-",
                "best trial": int(best["trial"]) if best is not None else "-",
                "best setting": _row_setting(best) if best is not None else "-",
            }
        )
    return pd.DataFrame(out)


def _row_setting(row: pd.Series) -> str:
    extras = "".join(f" {k} {v:.3g}" for k, v in json.loads(row["loss_params"]).items())
    return (
        f"{row['optimizer_g']} lr G {row['lr_g']:.2g} D {row['lr_d']:.2g} "
        f"b1 {row['beta1']:.2f} b2 {row['beta2']:.3f} n_critic {int(row['n_critic'])}{extras}"
    )
