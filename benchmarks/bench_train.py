"""Training throughput of dcgan-mnist per loss (batch 128): images/s and iterations/s.

Run: ``tox -e bench`` or ``pytest benchmarks/bench_train.py --benchmark-enable``. Each round
trains ``STEPS`` generator steps (with each loss's own ``n_critic``) after a warm-up round; the
reported figure is batch * STEPS / median round time. Run it on an otherwise idle machine.
"""

import pytest
import torch

from ganbench import registry
from ganbench.trainer import TrainConfig, train

BATCH = 128
STEPS = 10


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("loss_name", ["minimax", "non-saturating", "feature-matching", "wgan"])
def test_train_throughput(benchmark, loss_name, precision):
    torch.manual_seed(0)
    G = registry.get_generator("dcgan-mnist").factory()
    D = registry.get_discriminator("dcgan-mnist").factory()
    loss = registry.get_loss(loss_name).factory()
    data = torch.rand(4096, 1, 28, 28)
    gen = torch.Generator().manual_seed(0)

    def next_batch():
        return data[torch.randint(0, data.shape[0], (BATCH,), generator=gen)]

    config = TrainConfig(
        steps=STEPS,
        batch_size=BATCH,
        seed=0,
        hp=loss.defaults,
        precision=precision,
        warmup=0,
        progress=False,
    )
    train(G, D, loss, next_batch, config)  # warm-up: allocator, kernels, denormal mode
    result = benchmark.pedantic(train, args=(G, D, loss, next_batch, config), rounds=3)
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(
        images_per_s=BATCH * STEPS / seconds,
        iterations_per_s=STEPS / seconds,
        d_step_ms=result.d_step_ms,
        g_step_ms=result.g_step_ms,
    )
    print(
        f"\n{loss_name:>16} {precision}: {STEPS / seconds:.2f} it/s, "
        f"{BATCH * STEPS / seconds:.0f} images/s, D step {result.d_step_ms:.0f} ms, "
        f"G step {result.g_step_ms:.0f} ms"
    )
