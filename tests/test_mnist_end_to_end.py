"""Slow: ganbench run on real MNIST, the article's pair against dcgan-mnist-bn (minutes).

Uses the real ganbench cache (MNIST, the classifier), which is built on first use.
"""

import os
from pathlib import Path

import pandas as pd
import pytest

from ganbench.cli import main
from ganbench.defaults import auto_eval_every

REAL_CACHE = os.environ.get("GANBENCH_CACHE") or str(Path.home() / ".cache" / "ganbench")


@pytest.mark.slow
def test_article_pair_collapses_and_bn_pair_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", REAL_CACHE)
    out = tmp_path / "res"
    common = ["run", "--loss", "non-saturating", "--steps", "200", "--fid-samples", "2000"]
    common += ["--out", str(out), "--checkpoint-every", "0"]
    assert main([*common, "--generator", "dcgan-mnist"]) == 0
    assert main([*common, "--generator", "dcgan-mnist-bn"]) == 0
    runs = pd.read_csv(out / "runs.csv").set_index("generator")
    article, bn = runs.loc["dcgan-mnist"], runs.loc["dcgan-mnist-bn"]
    assert (article.status, bn.status) == ("ok", "ok")
    # the article's pair: one class, FID near noise; the BN pair: digits of many classes
    assert article.classes_covered <= 2 and article.fid > 1000
    assert bn.classes_covered >= 5 and bn.fid < article.fid / 2
    assert 0 < bn.train_images_per_s and (out / bn.samples_png).exists()
    summary = pd.read_csv(out / "summary.csv")
    floor = summary[summary["loss"] == "(real data)"].iloc[0]
    assert floor.fid_mean < bn.fid  # the real-data floor is below every generator


@pytest.mark.slow
def test_default_setup_draws_every_class_within_half_its_budget(tmp_path, monkeypatch):
    """The default MNIST setup (dcgan-lite-dense-ttur, batch 64, Adam 1e-3 for G and 2e-4 for D)
    at 1200 of its 2400 steps: digits of all 10 classes, G and EMA-G far below noise (FID
    ~1100), dcgan-mnist-bn's 300-step FID (~500) and dcgan-lite's at 1000 steps (~125); its probe
    in docs/ablation-lite.md (stage 4) read 65 (G) / 37 (EMA-G) at this step on 2000 samples."""
    monkeypatch.setenv("GANBENCH_CACHE", REAL_CACHE)
    out = tmp_path / "res"
    args = ["run", "--loss", "non-saturating", "--steps", "1200", "--fid-samples", "2000"]
    args += ["--defaults", "pair"]  # the pair's own settings (the default is the study's best)
    assert main([*args, "--out", str(out), "--checkpoint-every", "0"]) == 0
    row = pd.read_csv(out / "runs.csv").iloc[0]
    assert (row.status, row.generator, row.batch_size, row.lr_g) == (
        "ok",
        "dcgan-lite-dense-ttur",
        64,
        1e-3,
    )
    assert row.lr_d == 2e-4
    assert row.classes_covered == 10 and row.classes_covered_ema == 10
    assert row.fid < 100 and row.fid_ema < 100
    curves = pd.read_csv(out / "curves.csv")
    every = auto_eval_every(1200, 10)  # the default curve points, and one at the end
    assert (curves.metric == "fid_ema").sum() == len(set(range(every, 1201, every)) | {1200})
    assert str(row.still_improving_ema) in {"True", "False"}
