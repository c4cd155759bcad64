"""Tables for people: the summary and comparisons as the terminal and report.md show them.

Every view returns strings (4 significant digits, ``-`` for missing), so ``DataFrame.to_string``
and :func:`markdown_table` show the same cells.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ganbench import stats
from ganbench.arms import BUDGET, EVAL_KEYS
from ganbench.convergence import FLOOR_MULTIPLES, IMPROVING_FRACTION
from ganbench.datasets import HIGHER_IS_BETTER
from ganbench.tables import REFERENCE_LOSS, Tables, ranking_metric

RANKED = "_ema"  # the convergence columns shown are EMA-G's (G's are in summary.csv)

# summary.csv column -> the heading people read (terminal and report.md)
SUMMARY_VIEW = {
    "loss": "loss",
    "generator": "generator",
    "steps": "steps",
    "n_runs": "runs",
    "n_ok": "ok",
    "n_diverged": "diverged",
    "n_error": "failed",
    "fid_mean": "FID",
    "fid_std": "FID std",
    "fid_ci": "FID 95% CI",
    "fid_ema_mean": "EMA FID",
    "is_mean_mean": "IS",
    "is_mean_std": "IS std",
    "classes_covered_mean": "classes",
    "kid_mean": "KID",
    "precision_k3_mean": "prec",
    "recall_k3_mean": "recall",
    "density_k5_mean": "dens",
    "coverage_k5_mean": "cov",
    "modes_covered_mean": "modes",
    "modes_covered_std": "modes std",
    "high_quality_frac_mean": "high quality",
    "mode_kl_mean": "mode KL",
    "mode_kl_ci": "mode KL 95% CI",
    "confident_frac_mean": "confident",
    "channel_fid_mean": "channel FID",
    "train_images_per_s_mean": "img/s",
    "ttq_5x": "s to 5x floor",
    "ttq_2x": "s to 2x floor",
    "improving": "improving",
    "fid_at_wall_s_mean": "FID @ equal time",
    "fid_at_train_gflop_mean": "FID @ equal FLOPs",
}
MATCHED_VIEW = {
    "fid_mean": "FID (final)",
    "matched_wall_s": "matched s",
    "fid_at_wall_s_n": "n (time)",
    "fid_at_wall_s_mean": "FID @ equal time",
    "fid_at_wall_s_std": "std (time)",
    "matched_train_gflop": "matched GFLOP",
    "fid_at_train_gflop_n": "n (FLOPs)",
    "fid_at_train_gflop_mean": "FID @ equal FLOPs",
    "fid_at_train_gflop_std": "std (FLOPs)",
}
COMPARISON_VIEW = {
    "loss_a": "loss a",
    "loss_b": "loss b",
    "n_a": "n a",
    "n_b": "n b",
    "fid_diff": "FID a-b",
    "fid_diff_ci": "95% CI",
    "p_value": "p",
    "p_holm": "p (Holm)",
    "sig": "sig.",
}


def fmt(value: Any) -> str:
    """A table cell: 4 significant digits, whole numbers as integers, ``-`` for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        v = float(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return str(value)


def _interval(frame: pd.DataFrame, low: str, high: str) -> pd.Series:
    if low not in frame or high not in frame:
        return pd.Series(math.nan, index=frame.index)
    return pd.Series(
        [
            "-" if math.isnan(lo) or math.isnan(hi) else f"[{fmt(lo)}, {fmt(hi)}]"
            for lo, hi in zip(frame[low].astype(float), frame[high].astype(float), strict=True)
        ],
        index=frame.index,
        dtype=object,
    )


def summary_view(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as people read it: chosen columns, headings, formatted cells (strings)."""
    frame = summary.copy()
    if "untuned" in frame:  # --defaults tuned, and the pair's study did not tune this loss
        marked = frame["untuned"].astype(str).str.lower().eq("true")
        frame["loss"] = frame["loss"].astype(str).where(~marked, frame["loss"] + " (untuned)")
    frame["fid_ci"] = _interval(frame, "fid_ci_low", "fid_ci_high")
    if "fid_mean" not in summary:
        frame = frame.drop(columns="fid_ci")
    if "mode_kl_ci_low" in summary:
        frame["mode_kl_ci"] = _interval(frame, "mode_kl_ci_low", "mode_kl_ci_high")
    for k in FLOOR_MULTIPLES:
        if f"s_to_{k}x_floor{RANKED}_n" in frame:
            frame[f"ttq_{k}x"] = _time_to_quality(frame, f"s_to_{k}x_floor{RANKED}")
    if f"n_still_improving{RANKED}" in frame:
        frame["improving"] = [
            "-"
            if math.isnan(float(n)) or math.isnan(float(ok))
            else f"{int(n)}/{int(ok)}" + (" *" if n else "")
            for n, ok in zip(frame[f"n_still_improving{RANKED}"], frame["n_ok"], strict=True)
        ]
    cols = [c for c in SUMMARY_VIEW if c in frame]
    return frame[cols].rename(columns=SUMMARY_VIEW).map(fmt)


def _time_to_quality(frame: pd.DataFrame, column: str) -> list[str]:
    """Mean seconds over the seeds that got there, ``(k/n)`` when not all ok seeds did."""
    cells = []
    for mean, n, ok in zip(
        frame[f"{column}_mean"], frame[f"{column}_n"], frame["n_ok"], strict=True
    ):
        if any(isinstance(v, float) and math.isnan(v) for v in (n, ok)):
            cells.append("-")
        elif int(n) == 0:
            cells.append("not reached")
        else:
            cells.append(fmt(mean) + ("" if int(n) == int(ok) else f" ({int(n)}/{int(ok)})"))
    return cells


def ranking_note(summary: pd.DataFrame) -> str:
    """Which FID the table is ranked by, and what the convergence columns mean."""
    metric = ranking_metric(summary)
    text = f"Ranked by {'FID' if metric == 'fid' else metric} of G (the trained generator)."
    if "fid_ema_mean" in summary:
        text += (
            " EMA FID: the exponential moving average of G's weights (ganbench/ema.py), scored on "
            "the same noise."
        )
    if "precision_k3_mean" in summary:
        text += (
            " KID, prec/recall (k = 3), dens/cov (k = 5): G's, on the backbone's features"
            " (the k-NN metrics on unit-length ones; raw coordinates for 2-D data;"
            " docs/metrics.md); prec and dens measure fidelity, recall and cov diversity."
        )
    if any(f"ttq_{k}x" in SUMMARY_VIEW for k in FLOOR_MULTIPLES) and any(
        c.startswith("s_to_") for c in summary.columns
    ):
        text += (
            f" s to kx floor: training seconds until EMA-G's FID curve (--eval-every) first got"
            f" within k times the real-data floor at the curve's sample count (mean over the"
            f" seeds that got there; (reached/ok) when not all did)."
            f" improving: ok seeds whose EMA-G FID still fell by more than"
            f" {IMPROVING_FRACTION:.0%} over the last quarter of the budget (*: a longer budget"
            f" could change this row's standing)."
        )
    return text


def comparison_view(comparisons: pd.DataFrame) -> pd.DataFrame:
    """comparisons.csv as people read it; ``sig.`` is ``*`` where Holm's p < 0.05. Budget
    columns appear where the table holds several budgets."""
    metric = compared_metric(comparisons)
    frame = comparisons.rename(columns=lambda c: c.replace(metric, "fid", 1))  # one view
    frame["fid_diff_ci"] = _interval(frame, "fid_diff_ci_low", "fid_diff_ci_high")
    frame["sig"] = ["*" if s is True else "" for s in frame["significant"]]
    if comparisons.empty:
        frame["sig"] = pd.Series(dtype=object)
    budget = [c for c in BUDGET + EVAL_KEYS if c in frame]
    varying = [c for c in budget if frame[c].nunique(dropna=False) > 1]  # several budgets
    cols = varying + [c for c in COMPARISON_VIEW if c in frame]
    headings = {**COMPARISON_VIEW, "fid_diff": f"{metric_label(metric)} a-b"}
    return frame[cols].rename(columns=headings).map(fmt)


def compared_metric(comparisons: pd.DataFrame) -> str:
    """The metric comparisons.csv tests (its ``<metric>_diff`` column): FID, or a dataset's
    headline metric (mode KL on the 2-D sets and stacked MNIST)."""
    return next((c[: -len("_diff")] for c in comparisons if c.endswith("_diff")), "fid")


def comparison_note(comparisons: pd.DataFrame) -> str:
    """How to read the comparisons' difference column, for the metric they test."""
    metric = compared_metric(comparisons)
    label, higher = metric_label(metric), metric in HIGHER_IS_BETTER
    return (
        f"{label} a-b {'>' if higher else '<'} 0: loss a has the {'higher' if higher else 'lower'}"
        f" (better) {label}. 95% CI: percentile bootstrap of the difference of means, each side "
        "resampled on its own."
    )


def metric_label(metric: str) -> str:
    """How people read ``metric``'s name (the summary view's heading of its mean)."""
    return SUMMARY_VIEW.get(f"{metric}_mean", metric)


def significance_note(comparisons: pd.DataFrame) -> str:
    """One paragraph: what ``*`` means, and the smallest p the seeds allow (Lucic et al. 2018)."""
    tested = comparisons.dropna(subset=["p_value"]) if not comparisons.empty else comparisons
    if not len(tested):
        return (
            f"No pair has FID values from at least {stats.MIN_VALUES} ok seeds on each side: "
            "nothing was tested."
        )
    text = (
        f"* = significant: two-sided Mann-Whitney U test, Holm-adjusted within each budget "
        f"({len(tested)} tested pair(s) in all), p < {stats.ALPHA}."
    )
    pairs = zip(tested["n_a"], tested["n_b"], strict=True)
    sizes = sorted({(int(a), int(b)) for a, b in pairs})
    floors = ", ".join(f"{a} vs {b} seeds: {stats.min_mann_whitney_p(a, b):.3g}" for a, b in sizes)
    text += f" The smallest p-value the test can give is 2/C(n_a+n_b, n_a) ({floors})"
    family = holm_family_sizes(tested)
    possible = [
        stats.can_be_significant(int(a), int(b), m)
        for a, b, m in zip(tested["n_a"], tested["n_b"], family, strict=True)
    ]
    largest = int(max(family))
    if not any(possible):
        if largest > 1:
            text += f", which Holm's correction multiplies by the {largest} pairs tested together"
        text += (
            ": with so few seeds no difference can be significant, however large "
            f"({stats.seeds_for_significance(largest)} seeds per arm could be)"
        )
    text += (
        ". GAN objectives differ less than seed variance suggests (Lucic et al. 2018, 'Are "
        "GANs Created Equal?'): compare with many seeds."
    )
    return text


def holm_family_sizes(tested: pd.DataFrame) -> list[int]:
    """For each tested pair, how many pairs its Holm correction counted (``holm_pairs``; in a
    comparisons.csv written before that column, the tested pairs of its budget group: the
    columns before ``loss_a``, as :func:`ganbench.tables.comparisons` groups them)."""
    if "holm_pairs" in tested and tested["holm_pairs"].notna().all():
        return [int(m) for m in tested["holm_pairs"]]
    budget = list(tested.columns[: list(tested.columns).index("loss_a")])
    if not budget:
        return [len(tested)] * len(tested)
    sizes = tested.groupby(budget, sort=False, dropna=False)["loss_a"].transform("size")
    return [int(m) for m in sizes]


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of ``frame``'s cells as they are (strings), no index."""
    if frame.empty and not len(frame.columns):
        return "(no rows)\n"

    def cell(value: Any) -> str:
        return fmt(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in frame.columns) + " |",
        "|" + "|".join(" --- " for _ in frame.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


EQUAL_COMPUTE_RULE = (
    "Objectives cost different amounts per generator step (WGAN takes 5 critic steps), so FID is "
    "also read at matched budgets. Each run's FID evaluation points (`--eval-every`) are placed "
    "on its training wall-clock seconds and counted training FLOPs (evaluation excluded), "
    "interpolated linearly between log points. The matched budget of a comparison (same model "
    "pair, dataset, steps, batch size, precision) is the smallest final budget among its runs, so "
    "every run reaches it and nothing is extrapolated; each run's FID is interpolated linearly at "
    "that budget. Wall-clock budgets compare only runs on the same machine."
)


def arms_sections(tables: Tables) -> list[str]:
    """report.md's sections on every arm: the summary, the pairwise comparisons, equal compute."""
    summary, comparisons = tables.summary, tables.comparisons
    lines = [
        "## Summary",
        "",
        "Per arm (loss and full configuration, over seeds; ok runs only). FID 95% CI: percentile "
        f"bootstrap of the mean over seeds ({stats.BOOTSTRAP_RESAMPLES} resamples, seed "
        f"{stats.BOOTSTRAP_SEED}); with few seeds it is optimistic.",
        "",
        markdown_table(summary_view(summary)),
        ranking_note(summary),
        "",
    ]
    reference = summary[summary["loss"] == REFERENCE_LOSS] if "loss" in summary else summary
    if len(reference):
        lines += [f"`{REFERENCE_LOSS}` is the real-data floor scored like generated samples.", ""]
    lines += ["## Pairwise comparisons", ""]
    if comparisons.empty:
        lines += ["Fewer than two arms share a budget: nothing to compare.", ""]
    else:
        lines += [
            comparison_note(comparisons),
            "",
            markdown_table(comparison_view(comparisons)),
            significance_note(comparisons),
            "",
        ]
    lines += ["## Equal compute", "", EQUAL_COMPUTE_RULE, ""]
    matched = [c for c in MATCHED_VIEW if c in summary]
    if "matched_wall_s" in matched:
        view = summary[summary["loss"] != REFERENCE_LOSS][["loss", "steps", *matched]]
        lines += [markdown_table(view.rename(columns=MATCHED_VIEW).map(fmt)), ""]
    else:
        lines += ["No FID curve points in curves.csv: run with `--eval-every K` to get them.", ""]
    return lines
