"""Arms and budget groups of runs.csv (the definitions are in :mod:`ganbench.tables`): which
columns make an arm (:data:`GROUP`), and which arms share a budget and are compared
(:data:`BUDGET`); and what a summary is ranked by."""

from __future__ import annotations

import pandas as pd

from ganbench.datasets import headline_metric

GROUP = ["loss", "generator", "discriminator", "dataset", "steps", "setup"]
BUDGET = ["generator", "discriminator", "dataset", "steps", "batch_size", "precision"]
EVAL_KEYS = ["backbone", "fid_samples"]  # how FID/IS were computed, where runs.csv records it


def present_columns(columns: list[str], frame: pd.DataFrame) -> list[str]:
    return [c for c in columns if c in frame]


def group_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that define an arm in ``runs`` (:data:`GROUP` plus recorded eval keys)."""
    return GROUP + present_columns(EVAL_KEYS, runs)


def budget_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that define a budget group in ``runs`` (:data:`BUDGET` plus eval keys);
    where rows count their budget in discriminator steps (``--step-unit``), the step budget as
    asked (``budget_steps``, :func:`with_step_budget`) replaces the generator steps, so a WGAN
    cell of 2400 D steps (480 G steps) is compared with a minimax cell of 2400."""
    columns = present_columns(BUDGET, runs) + present_columns(EVAL_KEYS, runs)
    if "budget_steps" in runs:
        columns = [("budget_steps" if c == "steps" else c) for c in columns] + ["step_unit"]
    return columns


def with_step_budget(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``budget_steps``, the budget in its ``step_unit`` where any row counts
    discriminator steps; else ``runs`` unchanged (tables of generator-step runs stay as they
    were). A discriminator-step row's budget is the one it was asked (``step_budget``), or for
    rows written before that column its ``d_steps`` (the same where n_critic divides the
    budget); a generator-step row's is its ``steps``."""
    if "step_unit" not in runs or not (runs["step_unit"] == "discriminator").any():
        return runs
    out = runs.copy()
    out["step_unit"] = out["step_unit"].fillna("generator")
    by_d = out["step_unit"] == "discriminator"
    asked = out["step_budget"].fillna(out["d_steps"]) if "step_budget" in out else out["d_steps"]
    out["budget_steps"] = out["steps"].where(~by_d, asked)
    return out


def ranking_metric(table: pd.DataFrame) -> str:
    """What a summary of ``table``'s rows is ranked by: their dataset's headline metric (FID on
    MNIST, mode KL on the 2-D sets), FID where the rows mix datasets."""
    datasets = set(table["dataset"].dropna().astype(str)) if "dataset" in table else set()
    datasets.discard("-")
    return headline_metric(datasets.pop()) if len(datasets) == 1 else "fid"
