"""The frontier of FID against training minutes (docs/ablation-lite.md): for every ok
non-saturating cell of the given results directories, its EMA-G FID curve (the ``--eval-every``
points, 2000 samples) read at 1, 2, 3, 5, 10, 20 and 30 minutes of training (linear between
points, blank past the cell's budget), then its final 10k-sample FID of G and EMA-G. Markdown
on stdout.

    python scripts/frontier.py results/ablation-lite results/long-budget-wide results/long-budget

Minutes are training wall time on the machine that ran each directory (its COMMAND.md says
which): compare rows of one machine, or read the GFLOP column, which is machine-independent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ganbench.stats import value_at_budget
from ganbench.views import fmt, markdown_table

MINUTES = (1, 2, 3, 5, 10, 20, 30)
LOSS = "non-saturating"


def setup(row: pd.Series) -> str:
    parts = [row.generator, f"b{row.batch_size}", f"lr {row.lr_g:g}/{row.lr_d:g}"]
    if row.beta1 != 0.5:
        parts.append(f"beta1 {row.beta1:g}")
    if str(row.reuse_fake) == "True":
        parts.append("reuse fake")
    return ", ".join([*parts, row.precision, f"seed {row.seed}"])


def frontier_rows(out: Path) -> list[dict]:
    runs = pd.read_csv(out / "runs.csv").drop_duplicates("config_hash", keep="last")
    runs = runs[(runs["loss"] == LOSS) & (runs["status"] == "ok")]
    curves = pd.read_csv(out / "curves.csv")
    rows = []
    for _, run in runs.iterrows():
        mine = curves[curves["run_id"] == run.run_id]
        wide = mine.pivot_table(index="step", columns="metric", values="value")
        points = wide.dropna(subset=["fid_ema", "wall_s"]).sort_index()
        row = {"results": out.name, "setup": setup(run), "steps": run.steps}
        for m in MINUTES:
            row[f"{m} min"] = value_at_budget(points["wall_s"], points["fid_ema"], 60.0 * m)
        row["train min"] = run.train_s / 60
        row["train GFLOP"] = run.gflop_per_step * run.steps
        row["FID (10k)"] = run.fid
        row["EMA FID (10k)"] = run.get("fid_ema")
        rows.append(row)
    return rows


def main(dirs: list[str]) -> None:
    rows = [row for d in dirs for row in frontier_rows(Path(d))]
    table = pd.DataFrame(rows).sort_values("train min")
    print(markdown_table(table.map(fmt)), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
