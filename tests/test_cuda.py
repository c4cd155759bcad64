"""The CUDA path: skipped without a GPU (CI has none); run on a GPU machine before a release."""

import pandas as pd
import pytest
import torch

from ganbench.cli import main

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


FAST = ["--steps", "4", "--batch-size", "16", "--fid-samples", "0", "--log-every", "2"]


@pytest.mark.parametrize("extra", [[], ["--precision", "bf16"]])
def test_run_on_cuda(tiny_mnist, tmp_path, extra):
    out = tmp_path / "res"
    args = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, "--device", "cuda"]
    assert main([*args, "--loss", "non-saturating", "--loss", "wgan", "--seeds", "2", *extra]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "ok").all() and len(runs) == 4
    assert runs["device"].str.startswith("cuda").all()
    assert (runs["train_images_per_s"] > 0).all()
