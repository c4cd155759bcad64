"""``ganbench report``: plots and report.md for a results directory.

Reads a results directory (runs.csv, curves.csv, the sample grids), rebuilds summary.csv and
comparisons.csv with :func:`ganbench.tables.write_tables`, and writes, all atomically:

- ``plots/fid_vs_step.png``, ``plots/fid_vs_wall_s.png``, ``plots/fid_vs_train_gflop.png``: FID
  curves (from ``--eval-every`` points) per arm, the mean over seeds as a line and the seeds'
  min-max as a band; absent without FID curve points;
- ``plots/losses_vs_step.png``: D and G loss curves, drawn the same way; and, on datasets
  that count modes, ``plots/{modes_covered,mode_kl,confident_frac}_vs_step.png``;
- ``plots/throughput.png``: training images/s per arm (mean, std as error bar);
- ``plots/fidelity_diversity.png``: precision against recall and density against coverage,
  one point per ok run (where runs.csv has them);
- ``plots/samples.png``: every arm's sample grid (its lowest ok seed) side by side;
- ``report.md``: the tables, how to read them, and the images.

Plots are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ganbench import results as R
from ganbench import search_report
from ganbench.errors import GanbenchError, describe
from ganbench.files import atomic_write_bytes, atomic_write_with
from ganbench.tables import COMPARISONS, Tables, budget_curve, group_columns, write_tables
from ganbench.views import arms_sections

REPORT = "report.md"
PLOTS = "plots"
CURVE_AXES = {
    "step": "generator steps",
    "wall_s": "training wall-clock seconds",
    "train_gflop": "training GFLOP (counted)",
}


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` produced: the rebuilt tables and every file it wrote."""

    tables: Tables
    files: list[Path]


# -- plots ----------------------------------------------------------------------------------------


def _arms(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, ok runs) per arm; the label is the loss, plus the setup hash where a loss has
    several arms."""
    if runs.empty:
        return []
    ok = runs[runs["status"] == "ok"]
    arms = [group for _, group in ok.groupby(group_columns(ok), sort=False, dropna=False)]
    counts = pd.Series([g["loss"].iloc[0] for g in arms]).value_counts()
    labelled = []
    for group in arms:
        loss = str(group["loss"].iloc[0])
        label = loss if counts[loss] == 1 else f"{loss} ({str(group['setup'].iloc[0])[:6]})"
        labelled.append((label, group))
    return labelled


def _figure(width: float = 7.0, height: float = 4.5, layout: str = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


def _curve_points(
    runs: pd.DataFrame, curves: pd.DataFrame, metric: str, x_axis: str
) -> pd.DataFrame:
    """Long frame (run_id, step, x, value) of ``metric`` for ``runs``, x in ``x_axis`` units."""
    parts = []
    for run_id, run in curves[curves["run_id"].isin(runs["run_id"])].groupby("run_id"):
        points = run[run["metric"] == metric].drop_duplicates("step", keep="last")
        points = points.sort_values("step")
        if points.empty:
            continue
        if x_axis == "step":
            steps, y = points["step"].to_numpy(float), points["value"].to_numpy(float)
            x = steps
        else:
            steps, x, y = budget_curve(run, metric, x_axis)
        parts.append(pd.DataFrame({"run_id": run_id, "step": steps, "x": x, "value": y}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _band_plot(ax, arms, curves: pd.DataFrame, metric: str, x_axis: str) -> bool:
    """Mean over seeds at each step (x: the seeds' mean at that step), min-max band."""
    drew = False
    for label, group in arms:
        points = _curve_points(group, curves, metric, x_axis)
        if points.empty:
            continue
        by_step = points.groupby("step").agg(
            x=("x", "mean"), mean=("value", "mean"), low=("value", "min"), high=("value", "max")
        )
        (line,) = ax.plot(by_step["x"], by_step["mean"], marker=".", label=label)
        ax.fill_between(
            by_step["x"], by_step["low"], by_step["high"], color=line.get_color(), alpha=0.2
        )
        drew = True
    return drew


def plot_metric_curve(
    runs: pd.DataFrame, curves: pd.DataFrame, metric: str, x_axis: str, path: Path
) -> Path | None:
    """``metric`` against ``x_axis`` (step, wall_s or train_gflop) per arm; None if no points."""
    if curves.empty or not (curves["metric"] == metric).any():
        return None
    fig = _figure()
    ax = fig.subplots()
    if not _band_plot(ax, _arms(runs), curves, metric, x_axis):
        return None
    ax.set_xlabel(CURVE_AXES[x_axis])
    ax.set_ylabel(metric.upper() if metric == "fid" else metric)
    ax.set_title(f"{metric.upper() if metric == 'fid' else metric}: mean over seeds, band min-max")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_losses(runs: pd.DataFrame, curves: pd.DataFrame, path: Path) -> Path | None:
    """D and G loss against generator steps per arm, mean over seeds with a min-max band."""
    if curves.empty or not curves["metric"].isin(["d_loss", "g_loss"]).any():
        return None
    fig = _figure(11.0, 4.5)
    axes = fig.subplots(1, 2)
    arms = _arms(runs)
    for ax, metric in zip(axes, ("d_loss", "g_loss"), strict=True):
        _band_plot(ax, arms, curves, metric, "step")
        ax.set_xlabel("generator steps")
        ax.set_title(f"{metric}: mean over seeds, band min-max")
        ax.grid(alpha=0.3)
    axes[0].legend()
    return _save(fig, path)


def plot_throughput(runs: pd.DataFrame, path: Path) -> Path | None:
    """Training images/s per arm: mean bar, std error bar."""
    arms = [
        (label, group["train_images_per_s"].astype(float).dropna())
        for label, group in _arms(runs)
        if "train_images_per_s" in group
    ]
    arms = [(label, v) for label, v in arms if len(v)]
    if not arms:
        return None
    fig = _figure(7.0, 1.2 + 0.5 * len(arms))
    ax = fig.subplots()
    means = [v.mean() for _, v in arms]
    errors = [v.std(ddof=1) if len(v) > 1 else 0.0 for _, v in arms]
    ax.barh([label for label, _ in arms], means, xerr=errors, color="tab:blue", alpha=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("training images/s (mean over seeds, std as error bar)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_fidelity_diversity(runs: pd.DataFrame, path: Path) -> Path | None:
    """Fidelity against diversity, one point per ok run: precision vs recall (k = 3) and
    density vs coverage (k = 5), G's (hollow: EMA-G's, where there is one)."""
    panels = [("recall_k3", "precision_k3"), ("coverage_k5", "density_k5")]
    arms = [
        (label, g) for label, g in _arms(runs) if {"precision_k3", "recall_k3"} <= set(g.columns)
    ]
    if not arms or all(g["precision_k3"].isna().all() for _, g in arms):
        return None
    fig = _figure(10.0, 4.5)
    axes = fig.subplots(1, 2)
    for ax, (x, y) in zip(axes, panels, strict=True):
        for i, (label, group) in enumerate(arms):
            color = f"C{i % 10}"
            if {x, y} <= set(group.columns):
                ax.scatter(group[x].astype(float), group[y].astype(float), color=color, label=label)
            if {f"{x}_ema", f"{y}_ema"} <= set(group.columns):
                ax.scatter(
                    group[f"{x}_ema"].astype(float),
                    group[f"{y}_ema"].astype(float),
                    facecolors="none",
                    edgecolors=color,
                )
        ax.set_xlabel(f"{x} (diversity)")
        ax.set_ylabel(f"{y} (fidelity)")
        ax.grid(alpha=0.3)
    axes[0].set_title("improved precision / recall, k = 3")
    axes[1].set_title("density / coverage, k = 5")
    axes[0].legend(fontsize="small")
    return _save(fig, path)


def plot_samples(
    runs: pd.DataFrame, out: Path, path: Path, column: str = "samples_png"
) -> Path | None:
    """Each arm's sample grid (its lowest ok seed with a picture) in one montage; ``column``
    ``samples_ema_png``: the EMA generators' grids."""
    tiles = []
    for label, group in _arms(runs):
        if column not in group:
            continue
        for _, row in group.sort_values("seed").iterrows():
            png = row[column]
            if isinstance(png, str) and png and (out / png).is_file():
                with Image.open(out / png) as image:
                    mode = "RGB" if image.mode in ("RGB", "RGBA") else "L"  # stacked MNIST: colour
                    tiles.append((f"{label} (seed {row['seed']})", np.asarray(image.convert(mode))))
                break
    if not tiles:
        return None
    ncols = min(4, len(tiles))
    nrows = math.ceil(len(tiles) / ncols)
    fig = _figure(3.2 * ncols, 3.5 * nrows, layout="compressed")  # for fixed-aspect images
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(tiles) :]:
        ax.set_visible(False)
    for ax, (title, pixels) in zip(axes, tiles, strict=False):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255)  # cmap: grey tiles only
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])  # not axis("off"): the layout engine then ignores the title
    return _save(fig, path)


# -- report.md ------------------------------------------------------------------------------------


MODE_CURVES = ("modes_covered", "mode_kl", "confident_frac")  # curve metrics of mode datasets


def _images_section(plots: dict[str, Path | None], out: Path) -> list[str]:
    captions = {
        "fid_vs_step": "FID against generator steps",
        "fid_vs_wall_s": "FID against training wall-clock seconds",
        "fid_vs_train_gflop": "FID against counted training GFLOP",
        "losses_vs_step": "D and G losses against generator steps",
        "throughput": "Training throughput",
        "fid_ema_vs_wall_s": "EMA generator's FID against training wall-clock seconds",
        "fidelity_diversity": "Fidelity against diversity, one point per run (hollow: EMA-G)",
        **{f"{m}_vs_step": f"{m} against generator steps" for m in MODE_CURVES},
        "samples": "Sample grids (fixed noise)",
        "samples_ema": "EMA generators' sample grids (the same noise)",
    }
    lines = []
    for name, caption in captions.items():
        path = plots.get(name)
        if path is not None:
            lines += [f"### {caption}", "", f"![{caption}]({path.relative_to(out).as_posix()})", ""]
    if plots.get("fid_vs_step") is None:
        lines += [
            "No FID curve points in curves.csv, so no FID curves: run with `--eval-every K`.",
            "",
        ]
    return lines


def render_markdown(out: Path, runs: pd.DataFrame, tables: Tables, plots: dict) -> str:
    """The text of report.md: a search's section (its best settings on new seeds) where ``out``
    holds a search, else every arm's summary, comparisons and equal-compute table; the plots."""
    n_ok = int((runs["status"] == "ok").sum()) if not runs.empty else 0
    lines = [
        "# ganbench report",
        "",
        f"Built by `ganbench report` from `{R.RUNS}` ({len(runs)} runs, {n_ok} ok) and "
        f"`{R.CURVES}`; the full tables are `{R.SUMMARY}` and `{COMPARISONS}`.",
        "",
    ]
    lines += search_report.section(out, plots) or arms_sections(tables)
    return "\n".join([*lines, "## Plots", "", *_images_section(plots, out)])


def write_report(out: Path, log: Callable[[str], None] | None = None) -> Report:
    """Rebuild the tables of results directory ``out`` and write its plots and report.md.

    Raises :class:`~ganbench.errors.GanbenchError` when ``out`` holds no runs.csv or an empty one.
    """
    if not (out / R.RUNS).is_file():
        raise GanbenchError(
            f"No {R.RUNS} in {str(out)!r}: nothing to report. Run `ganbench run --out {out}` first"
        )
    R.check_results_files(out)  # the checks `ganbench run` applies: one line, nothing rewritten
    runs = R.read_csv(out / R.RUNS)
    if runs.empty:
        raise GanbenchError(f"{R.RUNS} in {str(out)!r} has no rows: nothing to report")
    with R.lock(out):
        tables = write_tables(out)
    curves = R.read_csv(out / R.CURVES)
    plots_dir = out / PLOTS
    log = log or (lambda msg: print(msg, file=sys.stderr))
    shown = search_report.shown_runs(out, runs)  # a search: its best settings, not every draw
    drawers = {
        **{
            f"fid_vs_{x}": lambda x=x: plot_metric_curve(
                shown, curves, "fid", x, plots_dir / f"fid_vs_{x}.png"
            )
            for x in CURVE_AXES
        },
        "losses_vs_step": lambda: plot_losses(shown, curves, plots_dir / "losses_vs_step.png"),
        "throughput": lambda: plot_throughput(shown, plots_dir / "throughput.png"),
        "fid_ema_vs_wall_s": lambda: plot_metric_curve(
            shown, curves, "fid_ema", "wall_s", plots_dir / "fid_ema_vs_wall_s.png"
        ),
        "fidelity_diversity": lambda: plot_fidelity_diversity(
            shown, plots_dir / "fidelity_diversity.png"
        ),
        "samples": lambda: plot_samples(shown, out, plots_dir / "samples.png"),
        "samples_ema": lambda: plot_samples(
            shown, out, plots_dir / "samples_ema.png", column="samples_ema_png"
        ),
    }
    for m in MODE_CURVES:  # modes against steps, where the dataset counts modes
        drawers[f"{m}_vs_step"] = lambda m=m: plot_metric_curve(
            shown, curves, m, "step", plots_dir / f"{m}_vs_step.png"
        )
    drawers.update(search_report.drawers(out, plots_dir, _figure, _save))
    plots: dict[str, Path | None] = {}
    for name, draw in drawers.items():  # a plot that fails (a damaged PNG) costs only itself
        try:
            plots[name] = draw()
        except Exception as exc:
            plots[name] = None
            log(f"plot {name} not drawn: {describe(exc)}")
    atomic_write_bytes(out / REPORT, render_markdown(out, runs, tables, plots).encode())
    files = [out / R.SUMMARY, out / COMPARISONS]
    files += [p for p in plots.values() if p is not None] + [out / REPORT]
    return Report(tables, files)
