"""Slow: ganbench run on real MNIST, the article's pair against dcgan-mnist-bn (minutes).

Uses the real ganbench cache (MNIST, the classifier), which is built on first use.
"""

import os
from pathlib import Path

import pandas as pd
import pytest

from ganbench.cli import main

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
