"""Print the ablation's table (markdown) from a results directory: one row per cell, with the
lever it changes, throughput, final FID of G and EMA-G and time to 5x / 2x the floor; and draw
every cell's FID curves (G dashed, EMA-G solid) against training wall-clock seconds into
``DIR/plots/ablation_fid_vs_wall_s.png``.

    python scripts/ablation_table.py results/ablation-lite
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ganbench.views import fmt, markdown_table


def lever(row: pd.Series) -> str:
    parts = [row.generator, f"b{row.batch_size}"]
    if (row.lr_g, row.lr_d) != (2e-4, 2e-4):
        parts.append(f"lr G {row.lr_g:g} / D {row.lr_d:g}")
    if row.beta1 != 0.5:
        parts.append(f"beta1 {row.beta1:g}")
    if str(row.reuse_fake) == "True":
        parts.append("reuse fake")
    return ", ".join(parts)


def main(out: Path) -> None:
    runs = pd.read_csv(out / "runs.csv").drop_duplicates("config_hash", keep="last")
    table = pd.DataFrame(
        {
            "setup": runs.apply(lever, axis=1),
            "loss": runs["loss"],
            "steps": runs["steps"],
            "images": runs["steps"] * runs["batch_size"],
            "it/s": runs["train_images_per_s"] / runs["batch_size"],
            "GFLOP/step": runs["gflop_per_step"],
            "train s": runs["train_s"],
            "FID": runs["fid"],
            "EMA FID": runs.get("fid_ema"),
            "classes (EMA)": runs.get("classes_covered_ema"),
            "s to 5x floor (EMA)": runs.get("s_to_5x_floor_ema"),
            "s to 2x floor (EMA)": runs.get("s_to_2x_floor_ema"),
            "still improving (EMA)": runs.get("still_improving_ema"),
        }
    )
    print(markdown_table(table.map(fmt)), end="")
    plot(out, runs, pd.read_csv(out / "curves.csv"))


def plot(out: Path, runs: pd.DataFrame, curves: pd.DataFrame) -> None:
    from matplotlib.figure import Figure

    from ganbench.tables import budget_curve

    fig = Figure(figsize=(9, 5.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    for i, (_, row) in enumerate(runs.iterrows()):
        mine = curves[curves["run_id"] == row["run_id"]]
        color = f"C{i % 10}"
        for metric, style in (("fid_ema", "-"), ("fid", ":")):
            _, x, y = budget_curve(mine, metric, "wall_s")
            label = f"{lever(row)} ({'EMA' if metric == 'fid_ema' else 'G'})"
            if len(x):
                ax.plot(x, y, style, color=color, label=label if metric == "fid_ema" else None)
    ax.set_yscale("log")
    ax.set_xlabel("training wall-clock seconds (this 2-core CPU, fp32)")
    ax.set_ylabel("FID, 2000 samples (EMA-G solid, G dotted)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    (out / "plots").mkdir(exist_ok=True)
    fig.savefig(out / "plots" / "ablation_fid_vs_wall_s.png")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/ablation-lite"))
