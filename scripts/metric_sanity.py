"""Sanity table for docs/metrics.md: every image metric on sets whose answer is known, on real
MNIST with the mnist-classifier backbone, at 10k and 2k samples.

    python scripts/metric_sanity.py > docs/metric-sanity.txt

Cases: held-out real digits (training images 10000-19999, against the test split: the floor),
the same digits with speckle noise (fidelity lost, classes kept), one class only (modes lost,
fidelity kept), and uniform noise (everything lost). Then the same real digits with small
low-level changes that keep every digit readable (shifted one pixel, blurred, strokes thickened
or thinned by one pixel, binarised, Gaussian noise): they show the scale of the FID a GAN's
samples get, which is how far their stroke and pixel statistics are from real digits, not
only whether they are legible (docs/ablation-lite.md). Needs the MNIST cache (``ganbench run``
once).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ganbench import registry
from ganbench.datasets import EvalOptions

BLUR = (torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16).view(1, 1, 3, 3)
COLUMNS = ("fid", "kid", "precision_k3", "recall_k3", "density_k5", "coverage_k5", "is_mean")


def cases(images: torch.Tensor, labels: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    real = images[10000 : 10000 + n].float() / 255
    ones = real[labels[10000 : 10000 + n] == 1]

    def gaussian(std: float) -> torch.Tensor:
        return (real + std * torch.randn(real.shape, generator=g)).clamp(0, 1)

    speckle = (real + 0.3 * torch.rand(real.shape, generator=g)).clamp(0, 1)
    return {
        "real digits (held out)": real,
        "real + speckle (uniform 0.3 added)": speckle,
        "one class only (real 1s, repeated)": ones.repeat(n // len(ones) + 1, 1, 1, 1)[:n],
        "uniform noise": torch.rand(real.shape, generator=g),
        "real, shifted 1 pixel right": torch.roll(real, 1, dims=3),
        "real, 3x3 binomial blur": F.conv2d(real, BLUR, padding=1),
        "real, strokes 1 pixel thicker (3x3 max)": F.max_pool2d(real, 3, 1, 1),
        "real, strokes 1 pixel thinner (3x3 min)": -F.max_pool2d(-real, 3, 1, 1),
        "real, binarised at 0.5": (real > 0.5).float(),
        "real + Gaussian noise (std 0.05)": gaussian(0.05),
        "real + Gaussian noise (std 0.1)": gaussian(0.1),
    }


def main() -> None:
    dataset = registry.get_dataset("mnist").factory()
    dataset.load(None)
    a = dataset.arrays
    print("| samples | case | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for n in (10000, 2000):
        evaluator = dataset.make_evaluator(EvalOptions(fid_samples=n))
        for name, x in cases(a.train_images, a.train_labels, n).items():
            start = time.perf_counter()
            s = evaluator.score(x)
            took = time.perf_counter() - start
            cells = " | ".join(f"{s[c]:.4g}" for c in COLUMNS)
            print(f"| {n} | {name} | {cells} |  <!-- {took:.1f} s -->")


if __name__ == "__main__":
    main()
