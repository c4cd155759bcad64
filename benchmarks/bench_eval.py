"""How long scoring one cell takes: 10k generated samples, cached classifier and reference stats.

The issue's bar: about 10 s or less on the 2-core CPU. Run as a script::

    python benchmarks/bench_eval.py [--samples 10000] [--backbone mnist-classifier]

or under pytest-benchmark (``pytest benchmarks/bench_eval.py -o python_files='bench_*.py'
--benchmark-enable``). Both use the real MNIST data and ganbench's real cache: the first run trains
the classifier (about a minute or two) and extracts the test-split reference, which is not timed.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from ganbench.default_plugins.mnist.data import load_mnist
from ganbench.default_plugins.mnist.evaluation import ImageEvaluator


def make_evaluator(backbone: str = "mnist-classifier", samples: int = 10000) -> ImageEvaluator:
    """The evaluator on real MNIST, with its classifier and reference statistics in the cache."""
    m = load_mnist()
    return ImageEvaluator(
        backbone=backbone,
        train_images=m.train_images,
        train_labels=m.train_labels,
        test_images=m.test_images,
        test_labels=m.test_labels,
        data_checksum=m.checksum,
        fid_samples=samples,
    )


def fake_samples(n: int = 10000) -> torch.Tensor:
    """Stand-in generator output: floats in [0, 1], (n, 1, 28, 28)."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_score_one_cell_10k(benchmark) -> None:  # pytest-benchmark
    evaluator = make_evaluator()
    samples = fake_samples(evaluator.fid_samples)
    evaluator.score(samples[:1000])  # warm-up
    result = benchmark.pedantic(evaluator.score, args=(samples,), rounds=3, iterations=1)
    assert result["fid_samples"] == 10000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--backbone", default="mnist-classifier")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    evaluator = make_evaluator(args.backbone, args.samples)
    print(f"setup (load/train classifier, reference stats): {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    floor = evaluator.reference()
    print(f"reference(): {time.perf_counter() - t0:.1f} s -> {floor}")
    samples = fake_samples(args.samples)
    evaluator.score(samples[: min(1000, args.samples)])  # warm-up
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        result = evaluator.score(samples)
        times.append(time.perf_counter() - t0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"score(): {result}")
    print(
        f"score {args.samples} samples: best {min(times):.2f} s, median "
        f"{sorted(times)[len(times) // 2]:.2f} s over {args.rounds} rounds "
        f"({torch.get_num_threads()} threads, load average {load:.2f} at the end)"
    )


if __name__ == "__main__":
    main()
