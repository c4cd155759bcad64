"""ganbench report on synthetic results directories the tests write (no training)."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganbench import report, tables, views
from ganbench.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
LOSSES = {"minimax": (30.0, 1.0), "non-saturating": (20.0, 1.0), "wgan": (40.0, 3.0)}
PLOTS = [
    "fid_vs_step",
    "fid_vs_wall_s",
    "fid_vs_train_gflop",
    "losses_vs_step",
    "throughput",
    "samples",
]


def write_results(out: Path, fid_curves: bool = True, fid: bool = True) -> None:
    """3 losses x 3 seeds: runs.csv, curves.csv (every 10 steps; FID every 20) and sample grids."""
    rng = np.random.default_rng(0)
    (out / "samples").mkdir(parents=True)
    runs, curves = [], []
    for loss, (base, cost) in LOSSES.items():
        for seed in range(3):
            run_id = f"{loss}-s{seed}"
            png = f"samples/{run_id}.png"
            Image.fromarray(rng.integers(0, 256, (62, 62, 3), dtype=np.uint8)).save(out / png)
            final = base + seed
            row = {
                "run_id": run_id,
                "setup": f"setup-{loss}",
                "loss": loss,
                "generator": "g",
                "discriminator": "d",
                "dataset": "mnist",
                "seed": seed,
                "steps": 100,
                "batch_size": 16,
                "precision": "fp32",
                "format_version": 1,
                "status": "ok",
                "train_images_per_s": 1000.0 / cost + seed,
                "samples_png": png,
            }
            if fid:
                row.update(fid=final, is_mean=5.0 + seed)
            runs.append(row)
            for step in range(10, 101, 10):
                points = {
                    "d_loss": 1 / step,
                    "g_loss": 2 / step,
                    "wall_s": cost * step / 100,
                    "train_gflop": cost * step / 10,
                }
                if fid_curves and step % 20 == 0:
                    points["fid"] = final + 200 / step
                curves += [
                    {"run_id": run_id, "step": step, "metric": m, "value": v}
                    for m, v in points.items()
                ]
    pd.DataFrame(runs).to_csv(out / "runs.csv", index=False)
    pd.DataFrame(curves).to_csv(out / "curves.csv", index=False)


def test_report_writes_every_file_and_report_md_shows_the_images(tmp_path, capsys):
    out = tmp_path / "res"
    write_results(out)
    assert main(["report", str(out)]) == 0
    for name in PLOTS:
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == PNG
    for name in ("runs", "curves", "summary", "comparisons"):
        assert not pd.read_csv(out / f"{name}.csv").empty
    md = (out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(images) == sorted(f"plots/{name}.png" for name in PLOTS)
    assert all((out / image).is_file() for image in images)
    assert "| minimax | non-saturating | 3 | 3 | 10 |" in md  # FID a-b = 31 - 21
    assert "Lucic et al. 2018" in md and "3 vs 3 seeds: 0.1" in md
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.loss) == ["non-saturating", "minimax", "wgan"]
    assert {"fid_ci_low", "fid_ci_high", "fid_median", "is_mean_ci_low"} <= set(summary.columns)
    # equal compute: wgan costs 3x; the matched budget is the cheap losses' final 1 s / 10 GFLOP,
    # where wgan (FID points every 0.6 s) has FID 40 + 200/20 .. 40 + 200/40 interpolated
    assert set(summary.matched_wall_s) == {1.0} and set(summary.matched_train_gflop) == {10.0}
    wgan = summary.set_index("loss").loc["wgan"]
    assert wgan.fid_at_wall_s_mean == pytest.approx(41 + 10 - (1.0 - 0.6) / 0.6 * 5)
    printed = capsys.readouterr().out
    assert "FID 95% CI" in printed and "p (Holm)" in printed and "sig." in printed
    assert "report.md" in printed


def test_report_is_reproducible_and_keeps_the_real_data_row(tmp_path):
    out = tmp_path / "res"
    write_results(out)
    pd.DataFrame([{"loss": "(real data)", "dataset": "mnist", "fid_mean": 0.5}]).to_csv(
        out / "summary.csv", index=False
    )
    report.write_report(out)
    first = {n: (out / n).read_bytes() for n in ("summary.csv", "comparisons.csv", "report.md")}
    report.write_report(out)
    assert first == {n: (out / n).read_bytes() for n in first}
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loss[0] == "(real data)" and summary.fid_mean[0] == 0.5
    assert "(real data)" in first["report.md"].decode()


def test_report_without_fid_curves_has_no_fid_plots_and_says_how_to_get_them(tmp_path):
    out = tmp_path / "res"
    write_results(out, fid_curves=False, fid=False)
    result = report.write_report(out)
    names = sorted(p.name for p in result.files if p.parent.name == "plots")
    assert names == ["losses_vs_step.png", "samples.png", "throughput.png"]
    assert not (out / "plots" / "fid_vs_step.png").exists()
    md = (out / "report.md").read_text()
    assert "`--eval-every K`" in md and "fid_vs_step" not in md
    assert "No pair has FID values from at least 2 ok seeds on each side: nothing was tested." in md
    summary = pd.read_csv(out / "summary.csv")
    assert "fid_mean" not in summary and "matched_wall_s" not in summary
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert len(comparisons) == 3 and (comparisons.n_a == 0).all()


def test_report_on_a_directory_without_runs_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ganbench: error: No runs.csv in '{tmp_path / 'nothing'}': nothing to report. "
        f"Run `ganbench run --out {tmp_path / 'nothing'}` first\n"
    )
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "runs.csv").write_text("")
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "ganbench: error: runs.csv in '" in (err := capsys.readouterr().err)
    assert err.endswith("' has no rows: nothing to report\n")


def test_markdown_table_escapes_pipes_and_formats_numbers():
    frame = pd.DataFrame({"a|b": ["x|y"], "n": [3.0], "v": [float("nan")], "f": [1.23456]})
    assert views.markdown_table(frame) == (
        "| a\\|b | n | v | f |\n| --- | --- | --- | --- |\n| x\\|y | 3 | - | 1.235 |\n"
    )


def test_a_new_real_data_row_replaces_the_old_one_of_the_same_dataset(tmp_path):
    out = tmp_path / "res"
    write_results(out)
    pd.DataFrame(
        [
            {"loss": "(real data)", "dataset": "mnist", "fid_mean": 0.5},
            {"loss": "(real data)", "dataset": "other", "fid_mean": 0.9},
        ]
    ).to_csv(out / "summary.csv", index=False)
    new = pd.DataFrame([{"loss": "(real data)", "dataset": "mnist", "fid": 0.7, "is_mean": 9.5}])
    tables.write_tables(out, new)
    summary = pd.read_csv(out / "summary.csv")
    real = summary[summary.loss == "(real data)"].set_index("dataset")
    assert sorted(real.index) == ["mnist", "other"]
    assert (real.fid_mean["mnist"], real.is_mean_mean["mnist"]) == (0.7, 9.5)
    assert real.fid_mean["other"] == 0.9
    assert "fid" not in summary and "is_mean" not in summary


def test_comparison_view_shows_the_budget_only_where_it_varies():
    runs = pd.DataFrame(
        [
            {
                "run_id": f"{loss}{steps}{seed}",
                "setup": f"{loss}{steps}",
                "loss": loss,
                "generator": "g",
                "discriminator": "d",
                "dataset": "mnist",
                "seed": seed,
                "steps": steps,
                "batch_size": 16,
                "precision": "fp32",
                "format_version": 1,
                "status": "ok",
                "fid": fid + seed,
            }
            for loss, fid in (("a", 1.0), ("b", 5.0))
            for steps in (100, 200)
            for seed in range(2)
        ]
    )
    view = views.comparison_view(tables.compare(runs))
    assert list(view.columns[:3]) == ["steps", "loss a", "loss b"]
    assert view.values[:, :4].tolist() == [["100", "a", "b", "2"], ["200", "a", "b", "2"]]
    assert list(view["sig."]) == ["", ""]
    one_budget = views.comparison_view(tables.compare(runs[runs.steps == 100]))
    assert one_budget.columns[0] == "loss a"
