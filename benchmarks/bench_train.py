"""Training throughput of dcgan-mnist per loss (batch 128): images/s, iterations/s, GFLOP/s;
and generation throughput (10k samples, as scoring draws them).

Run: ``tox -e bench`` or ``pytest benchmarks/bench_train.py --benchmark-enable -s``. Each round
trains ``STEPS`` generator steps (with each loss's own ``n_critic``) after a warm-up round. Two
figures: the round's (batch * STEPS / median round time, model and optimiser set-up included) and
the loop's (the trainer's own timing, after ``WARMUP`` steps, as runs.csv reports it), with the
loop's counted GFLOP/s as a fraction of a matmul ceiling measured in the same run. Run it on an
otherwise idle machine.
"""

import time

import pytest
import torch

from ganbench import registry
from ganbench.trainer import TrainConfig, train

BATCH = 128
STEPS = 30
WARMUP = 5  # steps of each round the trainer leaves out of its own timing (step 0 counts FLOPs)


def gemm_gflops(dtype: torch.dtype, n: int = 2048, trials: int = 5, repeats: int = 3) -> float:
    """The matmul ceiling of this machine, measured now: the best GFLOP/s of an n x n x n
    matmul over a few trials (noise on a shared machine only ever lowers a figure)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


@pytest.fixture(scope="module")
def ceiling():
    return {"fp32": gemm_gflops(torch.float32), "bf16": gemm_gflops(torch.bfloat16)}


def cell(pair: str, loss_name: str, batch: int | None, precision: str):
    """``(G, D, loss, next_batch, config)`` of one benchmarked cell: the pair's fresh models
    (seed 0) on random images; ``batch`` None: the pair's own batch size (else :data:`BATCH`).
    A round is :data:`STEPS` steps, four times that below :data:`BATCH` (small pairs step fast)."""
    torch.manual_seed(0)
    G = registry.get_generator(pair).factory()
    D = registry.get_discriminator(pair).factory()
    loss = registry.get_loss(loss_name).factory()
    batch = int(batch or getattr(G, "batch_size", None) or BATCH)
    data = torch.rand(4096, 1, 28, 28)
    gen = torch.Generator().manual_seed(0)

    def next_batch():
        return data[torch.randint(0, data.shape[0], (batch,), generator=gen)]

    config = TrainConfig(
        steps=4 * STEPS if batch < BATCH else STEPS,
        batch_size=batch,
        seed=0,
        hp=loss.defaults,
        precision=precision,
        warmup=WARMUP,
        progress=False,
    )
    return G, D, loss, next_batch, config


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("loss_name", ["minimax", "non-saturating", "feature-matching", "wgan"])
def test_train_throughput(benchmark, ceiling, loss_name, precision):
    G, D, loss, next_batch, config = cell("dcgan-mnist", loss_name, BATCH, precision)
    train(G, D, loss, next_batch, config)  # warm-up: allocator, kernels, denormal mode
    result = benchmark.pedantic(train, args=(G, D, loss, next_batch, config), rounds=3)
    seconds = benchmark.stats.stats.median
    loop_its = result.train_images_per_s / BATCH  # the trainer's own timing, after warm-up
    gflops = result.gflop_per_step * loop_its
    benchmark.extra_info.update(
        images_per_s=BATCH * STEPS / seconds,
        iterations_per_s=STEPS / seconds,
        loop_iterations_per_s=loop_its,
        gflop_per_step=result.gflop_per_step,
        gflop_per_s=gflops,
        gemm_ceiling_gflop_per_s=ceiling[precision],
        fraction_of_ceiling=gflops / ceiling[precision],
        d_step_ms=result.d_step_ms,
        g_step_ms=result.g_step_ms,
    )
    print(
        f"\n{loss_name:>16} {precision}: round {STEPS / seconds:.2f} it/s, "
        f"loop {loop_its:.2f} it/s "
        f"({BATCH * loop_its:.0f} images/s), {gflops:.0f} GFLOP/s = "
        f"{gflops / ceiling[precision]:.2f} of the {ceiling[precision]:.0f} GFLOP/s {precision} "
        f"matmul ceiling, D step {result.d_step_ms:.0f} ms, G step {result.g_step_ms:.0f} ms"
    )


PAIRS = ("dcgan-lite", "dcgan-lite-wide", "dcgan-mnist-bn")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("pair", PAIRS)
def test_pair_precision_throughput(benchmark, pair, precision):
    """Whether bf16 autocast pays on each MNIST pair (``--precision auto`` keeps bf16 only where
    it is validated, and it is worth validating only where it is faster): non-saturating at the
    pair's own batch size, the trainer's loop timing after warm-up, fp32 and bf16 in the same
    run. Compare the two precisions of a pair as a ratio; absolute figures vary from run to run.
    """
    G, D, loss, next_batch, config = cell(pair, "non-saturating", None, precision)
    train(G, D, loss, next_batch, config)  # warm-up
    result = benchmark.pedantic(train, args=(G, D, loss, next_batch, config), rounds=3)
    batch = config.batch_size
    its = result.train_images_per_s / batch
    benchmark.extra_info.update(batch=batch, loop_iterations_per_s=its)
    print(
        f"\n{pair:>16} {precision} (batch {batch}): loop {its:.2f} it/s, "
        f"{result.train_images_per_s:.0f} images/s"
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_generate_throughput(benchmark, ceiling, precision):
    """Generation as scoring uses it: 10k samples of dcgan-mnist-bn's G in eval mode, batches of
    500 (``ganbench.trainer.generate``), images/s and counted GFLOP/s."""
    from torch.utils.flop_counter import FlopCounterMode

    from ganbench.training_parts import generate, precision_autocast

    torch.manual_seed(0)
    G = registry.get_generator("dcgan-mnist-bn").factory().to(memory_format=torch.channels_last)
    cpu = torch.device("cpu")
    n = 10_000

    def run():
        with precision_autocast(cpu, precision):
            return generate(G, n, seed=0, device=cpu)

    run()  # warm-up
    samples = benchmark.pedantic(run, rounds=3)
    assert samples.shape == (n, 1, 28, 28)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        G.eval()(torch.randn(500, G.z_dim))
    gflop = counter.get_total_flops() / 1e9 * n / 500
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(images_per_s=n / seconds, gflop_per_s=gflop / seconds)
    print(
        f"\n generate {precision}: {n / seconds:.0f} images/s, {gflop / seconds:.0f} GFLOP/s = "
        f"{gflop / seconds / ceiling[precision]:.2f} of the {ceiling[precision]:.0f} GFLOP/s "
        f"{precision} matmul ceiling"
    )
