"""The CUDA path: skipped without a GPU (CI has none); run on a GPU machine before a release."""

import pandas as pd
import pytest
import torch

from ganbench import registry
from ganbench.cli import main
from ganbench.packing import train_packed
from ganbench.trainer import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


FAST = ["--steps", "4", "--batch-size", "16", "--fid-samples", "0", "--log-every", "2"]


@pytest.mark.parametrize("extra", [[], ["--precision", "bf16"], ["--pack", "2"]])
def test_run_on_cuda(tiny_mnist, tmp_path, extra):
    out = tmp_path / "res"
    args = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, "--device", "cuda"]
    assert main([*args, "--loss", "non-saturating", "--loss", "wgan", "--seeds", "2", *extra]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "ok").all() and len(runs) == 4
    assert runs["device"].str.startswith("cuda").all()
    assert (runs["train_images_per_s"] > 0).all()


def test_packed_equals_separate_on_cuda(float64):
    """As tests/test_packing.py, on the GPU, in float64 (cuDNN's batched kernels differ)."""
    device = torch.device("cuda")
    data = torch.rand(64, 1, 28, 28, device=device) * 2 - 1

    def sampler(seed):
        gen = torch.Generator().manual_seed(seed)
        return lambda: data[torch.randint(0, 64, (8,), generator=gen).to(device)]

    def models(seed):
        torch.manual_seed(seed)
        G = registry.get_generator("dcgan-mnist-bn").factory()
        return G, registry.get_discriminator("dcgan-mnist-bn").factory()

    loss = registry.get_loss("feature-matching").factory()
    config = TrainConfig(
        steps=2,
        batch_size=8,
        seed=0,
        hp=loss.defaults,
        device=device,
        log_every=1,
        warmup=1,
        progress=False,
    )
    Gs, Ds = zip(*(models(s) for s in (0, 1)), strict=True)
    train_packed(Gs, Ds, loss, [sampler(0), sampler(1)], [0, 1], config)
    for k in (0, 1):
        G, D = models(k)
        train(G, D, loss, sampler(k), TrainConfig(**{**config.__dict__, "seed": k}))
        for a, b in zip(G.state_dict().values(), Gs[k].state_dict().values(), strict=True):
            assert (a.double() - b.double()).abs().max().item() < 1e-8
