"""Mode-collapse metrics for mixtures of isotropic Gaussians (the toy 2-D benchmarks).

The definitions follow the mixture-of-Gaussians experiments of VEEGAN (Srivastava et al. 2017,
"VEEGAN: Reducing Mode Collapse in GANs using Implicit Variational Learning") and PacGAN
(Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial networks"), which
score 2500 generated samples per model:

- a sample is **high quality** when it lies within ``n_std = 3`` standard deviations of the mode
  nearest to it (Euclidean distance ``<= 3 * std``; all modes share one isotropic ``std``, so this
  is the Mahalanobis test of PacGAN's reference code, ``fjxmlzn/PacGAN``,
  ``synthetic_data_experiments/PacGAN/pacgan/extensions.py``, ``MetricLogger``);
- a mode is **covered** when at least ``min_count`` high-quality samples are assigned to it. The
  papers use ``min_count = 1`` ("the number of mixture components whose mean is nearest to at least
  one high quality sample"; PacGAN's code counts the non-zero bins); that is the default here;
- **mode KL** is PacGAN's "reverse KL": ``KL(p || u) = sum_k p_k log(p_k K)`` of the histogram
  ``p`` of the high-quality samples over the ``K`` modes from the uniform ``u_k = 1/K`` of the
  true mixture. Empty modes need no smoothing: they contribute ``0 log 0 = 0``. So all modes
  equally filled gives 0 and every high-quality sample in one mode gives ``log K``, the largest
  value the divergence can take. With no high-quality sample at all the histogram is undefined;
  it is scored ``log K`` as well (nothing learnt is no better than total collapse), so a mean over
  seeds never silently drops such a run.

The functions are pure (tensors in, numbers out); :class:`ModeCoverageEvaluator` puts them behind
the :class:`ganbench.datasets.Evaluator` contract for a dataset plugin, with improved
precision/recall and density/coverage (:mod:`ganbench.metrics`) on the raw coordinates, against
2500 real points of their own seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ganbench.metrics import DC_K, PR_K, density_coverage, precision_recall

N_STD = 3.0  # "within three standard deviations" (VEEGAN, PacGAN)
MIN_COUNT = 1  # high-quality samples a mode needs to count as covered (VEEGAN, PacGAN)
EVAL_SAMPLES = 2500  # samples scored per model (VEEGAN; PacGAN's code: num_log_figure_sample)
KNN_METRICS = ("precision_k3", "recall_k3", "density_k5", "coverage_k5")


def mode_histogram(samples: Tensor, centres: Tensor, std: float, n_std: float = N_STD) -> Tensor:
    """Number of high-quality samples assigned to each mode, shape ``(K,)`` (int64).

    A sample is assigned to its nearest centre and counted there only when it lies within
    ``n_std * std`` of it; samples farther from every centre are counted nowhere.

    :param samples: ``(N, D)`` points.
    :param centres: ``(K, D)`` mode centres.
    :param std: the standard deviation shared by every (isotropic) mode.
    :param n_std: the radius of a mode in standard deviations.
    """
    samples = samples.detach().to(torch.float64).reshape(len(samples), -1)
    centres = centres.to(torch.float64)
    if len(samples) == 0:
        return torch.zeros(len(centres), dtype=torch.int64)
    dist, nearest = torch.cdist(samples, centres).min(dim=1)
    near = nearest[dist <= n_std * std]
    return torch.bincount(near, minlength=len(centres))


def modes_covered(histogram: Tensor, min_count: int = MIN_COUNT) -> int:
    """Modes holding at least ``min_count`` high-quality samples."""
    return int((histogram >= min_count).sum())


def high_quality_fraction(histogram: Tensor, n_samples: int) -> float:
    """Fraction of all ``n_samples`` samples that are high quality (0 when there are none)."""
    return float(histogram.sum()) / n_samples if n_samples else 0.0


def mode_kl(histogram: Tensor) -> float:
    """``KL(p || uniform)`` of the histogram over the modes, in nats (``0 log 0 = 0``).

    ``log K`` when the histogram is empty (see the module docstring).
    """
    k = len(histogram)
    total = float(histogram.sum())
    if total == 0:
        return math.log(k)
    p = histogram[histogram > 0].to(torch.float64) / total
    return max(0.0, float((p * torch.log(p * k)).sum()))  # clamp -1e-17 rounding to 0


def mode_metrics(
    samples: Tensor,
    centres: Tensor,
    std: float,
    n_std: float = N_STD,
    min_count: int = MIN_COUNT,
) -> dict[str, float]:
    """``modes_covered``, ``high_quality_frac`` and ``mode_kl`` of ``samples`` (see above)."""
    histogram = mode_histogram(samples, centres, std, n_std)
    return {
        "modes_covered": modes_covered(histogram, min_count),
        "high_quality_frac": high_quality_fraction(histogram, len(samples)),
        "mode_kl": mode_kl(histogram),
    }


class ModeCoverageEvaluator:
    """Scores samples of a mixture of isotropic Gaussians with :func:`mode_metrics`.

    This is the evaluator the built-in 2-D datasets return from ``make_evaluator``; a dataset
    plugin with its own mixture can return one too (evaluation is chosen by the dataset, so a
    plugin brings whatever evaluator its data needs). The sample count is fixed at
    :data:`EVAL_SAMPLES` (2500, as in the papers), whatever ``--fid-samples`` says (which only
    switches evaluation off when 0); it is recorded in every row as ``eval_samples``.

    :param centres: ``(K, 2)`` mode centres.
    :param std: the modes' shared standard deviation.
    :param sample_real: ``sample_real(n, generator)`` draws ``n`` real points; the real-data
        reference scores :data:`EVAL_SAMPLES` of them, drawn from a fixed seed.
    :param knn: score the k-NN metrics too (off for ``--eval-every`` curve points, whose
        evaluator is built with ``manifold_metrics=False``: they cost most of a small cell).
    """

    metrics = ("modes_covered", "high_quality_frac", "mode_kl", *KNN_METRICS)
    reference_seed = 0  # the real points scored as the real-data floor
    real_seed = 1  # the real points P&R and D&C compare against (apart from the floor's)

    def __init__(
        self,
        centres: Tensor,
        std: float,
        sample_real: Callable[[int, torch.Generator], Tensor],
        n_samples: int = EVAL_SAMPLES,
        knn: bool = True,
    ) -> None:
        self.knn = knn  # False: no k-NN metrics (curve points: mode KL is what they need)
        if not knn:
            self.metrics = tuple(m for m in self.metrics if m not in KNN_METRICS)
        self.centres = centres
        self.std = std
        self.sample_real = sample_real
        self.n_samples = n_samples
        self._real = sample_real(n_samples, torch.Generator().manual_seed(self.real_seed))

    def reference(self) -> dict[str, Any]:
        """The metrics of ``n_samples`` real points (about 98.9% are within 3 std in 2-D)."""
        real = self.sample_real(self.n_samples, torch.Generator().manual_seed(self.reference_seed))
        return self.score(real)

    def score(self, samples: Tensor) -> dict[str, Any]:
        """``modes_covered``, ``high_quality_frac``, ``mode_kl``, ``precision``/``recall``
        (k = 3), ``density``/``coverage`` (k = 5) and ``eval_samples`` of ``samples``, ``(N, 2)``
        points in data units (NaN k-NN metrics for 5 points or fewer)."""
        samples = samples.cpu()
        knn = dict.fromkeys(KNN_METRICS, math.nan) if self.knn else {}
        if self.knn and len(samples) > max(PR_K, DC_K) and torch.isfinite(samples).all():
            knn["precision_k3"], knn["recall_k3"] = precision_recall(samples, self._real, PR_K)
            knn["density_k5"], knn["coverage_k5"] = density_coverage(samples, self._real, DC_K)
        return {
            **mode_metrics(samples, self.centres, self.std),
            **knn,
            "eval_samples": len(samples),
        }
