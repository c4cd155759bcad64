"""Toy 2-D benchmarks for mode collapse: ``ring8``, ``grid25`` and the ``mlp-2d`` model pair.

Mixtures of Gaussians on which the objectives' differences in mode collapse show in seconds, as
in Unrolled GAN (Metz et al. 2017, "Unrolled Generative Adversarial Networks"), VEEGAN
(Srivastava et al. 2017) and PacGAN (Lin et al. 2018). Samples are raw 2-D points (the
generator's ``output_range`` is ``None``: no [0, 1] scaling); each cell is scored for mode
coverage by :class:`ganbench.mode_metrics.ModeCoverageEvaluator` and drawn as a scatter plot.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganbench.datasets import Dataset, EvalOptions, Evaluator
from ganbench.files import atomic_write_with
from ganbench.hookspecs import hookimpl
from ganbench.mode_metrics import EVAL_SAMPLES, ModeCoverageEvaluator


class GaussianMixture2D(Dataset):
    """An equal-weight mixture of isotropic 2-D Gaussians, sampled on the fly.

    Subclasses set :attr:`centres` (``(K, 2)``) and :attr:`std`. There is no stored training set:
    every batch is drawn fresh from the seeded generator the sampler receives, so ``len()`` is a
    nominal size (only the ``--batch-size`` check reads it).
    """

    sample_shape = (2,)
    value_range = None  # points in the plane, in their own units
    default_model = "mlp-2d"
    default_steps = 1000  # 4 objectives x 5 seeds of ring8 in about two minutes on 2 CPU cores
    preview_samples = 1000  # points in the per-cell scatter plot
    source = "sampled on the fly"
    reads_data_dir = False
    headline_metric = "mode_kl"  # KL(generated mode histogram || uniform): coverage and balance
    mode_samples = EVAL_SAMPLES  # 2500, as in the papers (--mode-samples overrides it)
    nominal_size = 1_000_000
    centres: Tensor
    std: float
    title = ""

    def __len__(self) -> int:
        return self.nominal_size

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` points ``(n, 2)`` (float32, CPU): a uniformly chosen mode plus Gaussian noise."""
        mode = torch.randint(len(self.centres), (n,), generator=generator)
        return self.centres[mode] + self.std * torch.randn((n, 2), generator=generator)

    def sampler(
        self, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> Callable[[], Tensor]:
        """One batch of raw 2-D points per call, drawn from ``generator`` (a CPU generator)."""

        def next_batch() -> Tensor:
            return self.sample(batch_size, generator).to(device)

        return next_batch

    def make_evaluator(self, options: EvalOptions) -> Evaluator | None:
        """Mode coverage on ``--mode-samples`` samples (2500 by default; see
        :mod:`ganbench.mode_metrics`); of ``options`` only that and ``manifold_metrics`` (the
        k-NN metrics, off for curve points) are read."""
        return ModeCoverageEvaluator(
            self.centres,
            self.std,
            self.sample,
            n_samples=(options.mode_samples if options else None) or self.mode_samples,
            knn=options is None or options.manifold_metrics,
        )

    def save_samples(self, samples: Tensor, path: Path) -> None:
        """A scatter plot of ``samples`` over the true centres, on fixed axes (PNG)."""
        atomic_write_with(path, lambda tmp: scatter_png(samples, self.centres, self.title, tmp))


def scatter_png(samples: Tensor, centres: Tensor, title: str, path: Path) -> None:
    """Draw generated points (black dots) over the mode centres (red crosses) to ``path``.

    The axes are the centres' bounding box plus a margin, the same for every cell, so plots
    compare; points outside it are counted in the title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = samples.detach().float().cpu().numpy()
    lim = float(centres.abs().max()) * 1.5
    outside = int(((abs(points) > lim).any(axis=1)).sum())
    fig = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(points[:, 0], points[:, 1], s=2, c="black", alpha=0.4, linewidths=0)
    ax.scatter(centres[:, 0], centres[:, 1], s=40, c="red", marker="x", linewidths=1)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    suffix = f", {outside} outside the axes" if outside else ""
    ax.set_title(f"{title}: {len(points)} samples{suffix}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")


class Ring8(GaussianMixture2D):
    """8 Gaussians evenly spaced on a circle of radius 2, std 0.02 (Metz et al. 2017; VEEGAN)."""

    std = 0.02
    title = "ring8"

    def __init__(self) -> None:
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        self.centres = (2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


class Grid25(GaussianMixture2D):
    """25 Gaussians on a 5x5 grid, centres ``{-4, -2, 0, 2, 4}^2``, std 0.05.

    The grid of VEEGAN and PacGAN (PacGAN's code, ``synthetic_data_experiments/2DGrid_GAN&PacGAN/
    config.py``: means ``range(-4, 5, 2)`` squared, variance ``0.05 ** 2``), after ALI
    (Dumoulin et al. 2017).
    """

    std = 0.05
    title = "grid25"
    default_steps = 3000  # 25 modes spread over [-4, 4]^2: at 1000 steps still a shapeless blob

    def __init__(self) -> None:
        axis = (-4.0, -2.0, 0.0, 2.0, 4.0)
        self.centres = torch.tensor(list(itertools.product(axis, axis)), dtype=torch.float32)


# ---- the model pair ------------------------------------------------------------------------------

Z_DIM = 256
HIDDEN = 128
LOGISTIC = {"optimizer_g": "adam", "optimizer_d": "adam", "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.5}


def _orthogonal_(module: nn.Module, gain: float = 0.8) -> None:
    """Orthogonal weights scaled by 0.8, zero biases (Metz et al. 2017, appendix A)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=gain)
            nn.init.zeros_(m.bias)


class Mlp2dGenerator(nn.Module):
    """z (256) -> Dense 128 ReLU -> Dense 128 ReLU -> Dense 2 (linear): a 2-D point.

    The generator of the Unrolled GAN mixture-of-Gaussians experiment (Metz et al. 2017,
    appendix A: two hidden layers of 128 ReLU units, a linear projection to 2-D, z of dimension
    256, orthogonal initialisation scaled by 0.8), reused by VEEGAN for its 2-D experiments.
    It works in data units (``output_range = None``).

    ``loss_hyperparams`` are this pair's per-objective defaults, applied over each loss's paper
    defaults so that every objective learns something in the datasets' 1000-step budget (measured
    on ring8, see docs/toy2d.md): the logistic objectives use Adam with beta1 0.5 as Metz et al.
    do, at lr 1e-3 for both models (with 1e-4 for both, or for D only as in the Unrolled GAN
    notebook, minimax and non-saturating covered at most one mode in 1000 steps). WGAN keeps its
    paper's RMSprop and ``n_critic`` 5, at lr 1e-3 and clip 0.1: with the paper's clip 0.01 (at lr
    1e-4 or 1e-3) this critic, whose input is also divided by 4, stays nearly flat and G a
    shapeless blob after 1000 steps. Each is one command-line override away from the paper's
    value (e.g. ``--loss-param clip=0.01 --lr 5e-5``).
    """

    z_dim = Z_DIM
    output_shape = (2,)
    output_range = None
    init = "orthogonal"
    cpu_threads = 1  # measured: 1.4 ms per D step on 1 thread, 20-90 ms on 2 under load
    loss_hyperparams = {
        "optimizer:adam": LOGISTIC,  # every Adam objective, a plugin's as much as a built-in one
        "wgan": {"lr_g": 1e-3, "lr_d": 1e-3, "extras": {"clip": 0.1}},
    }

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(Z_DIM, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, 2),
        )
        _orthogonal_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Mlp2dDiscriminator(nn.Module):
    """x / 4 -> Dense 128 ReLU -> Dense 128 ReLU (the features) -> Dense 1 (a logit).

    After Metz et al. 2017, appendix A: the input is scaled down by 4 so that the toy data lies
    roughly in [-1, 1], then a ReLU MLP of width 128 gives the logit; orthogonal initialisation
    scaled by 0.8. Two hidden layers (as the Unrolled GAN reference notebook, poolio/unrolled_gan,
    uses) so that feature matching has an intermediate layer: ``features(x)`` is the second hidden
    layer (128 units).
    """

    init = "orthogonal"

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(2, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
        )
        self.fc = nn.Linear(HIDDEN, 1)
        _orthogonal_(self)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x / 4.0)

    def head(self, features: Tensor) -> Tensor:
        return self.fc(features).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@hookimpl
def register_datasets(register):
    register("ring8", Ring8)
    register("grid25", Grid25)


@hookimpl
def register_generators(register):
    register("mlp-2d", Mlp2dGenerator)


@hookimpl
def register_discriminators(register):
    register("mlp-2d", Mlp2dDiscriminator)
