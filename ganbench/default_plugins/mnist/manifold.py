"""The metrics that need the real features themselves, not only their sums: KID (torchmetrics'
``KernelInceptionDistance``, polynomial kernel), improved precision/recall (k = 3) and
density/coverage (k = 5) of generated features against the real ones (:mod:`ganbench.metrics`;
docs/metrics.md says what each one means).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics.image.kid import KernelInceptionDistance

from ganbench.metrics import DC_K, PR_K, density_coverage, knn_radii, precision_recall

KID_SEED = 0  # KID draws its subsets at random: seeded in a forked RNG, like IS
KID_SUBSETS = 100  # torchmetrics' (and torch-fidelity's) defaults
KID_SUBSET_SIZE = 1000
#: precision/recall and density/coverage are computed on the backbone's features scaled to unit
#: length. On the raw mnist-classifier features a dozen low-norm real outliers have k-NN balls
#: that hold most of any off-manifold cloud: uniform noise scored precision 0.83 and density
#: 0.40 there (real training digits: 0.85, 0.90); on unit-length features noise scores 0.14 and
#: 0.04, real digits 0.86 (docs/metrics.md). KID, like FID, uses the raw features.
MANIFOLD_METRICS = ("kid", "kid_std", "precision_k3", "recall_k3", "density_k5", "coverage_k5")


class ManifoldMetrics:
    """KID, precision/recall and density/coverage against fixed ``real`` features (float32,
    CPU); their unit-length copy and k-NN radii are computed once, on first use."""

    def __init__(self, real: Tensor, kid_subsets: int, kid_subset_size: int) -> None:
        self.real = real.float()
        self.kid_subsets = int(kid_subsets)
        self.kid_subset_size = int(kid_subset_size)
        self._unit: Tensor | None = None
        self._radii: dict[int, Tensor] = {}

    def _unit_real(self) -> Tensor:
        if self._unit is None:
            self._unit = F.normalize(self.real, dim=1)
        return self._unit

    def __call__(self, fake: Tensor) -> dict[str, Any]:
        """KID (mean and std over subsets), precision/recall (k = 3), density/coverage (k = 5)
        of generated features ``fake``, plus KID's ``kid_subsets`` and ``kid_subset_size``; NaN
        where there are too few samples (k-NN needs more than k points)."""
        real = self.real
        fake = fake.float()
        n = min(len(fake), len(real))
        out: dict[str, Any] = dict.fromkeys(MANIFOLD_METRICS, math.nan)
        size = min(self.kid_subset_size, n)
        out.update(kid_subsets=self.kid_subsets, kid_subset_size=size)
        if size >= 2:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
                kid = KernelInceptionDistance(
                    feature=nn.Identity(), subsets=self.kid_subsets, subset_size=size
                )
            kid.update(real.double(), real=True)
            kid.update(fake.double(), real=False)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(KID_SEED)
                kid_mean, kid_std = kid.compute()
            out.update(kid=float(kid_mean), kid_std=float(kid_std))
        if n > max(PR_K, DC_K):  # unit-length features: see MANIFOLD_METRICS
            fake_u, real_u = F.normalize(fake, dim=1), self._unit_real()
            out["precision_k3"], out["recall_k3"] = precision_recall(fake_u, real_u, PR_K)
            if DC_K not in self._radii:
                self._radii[DC_K] = knn_radii(real_u, DC_K)
            out["density_k5"], out["coverage_k5"] = density_coverage(
                fake_u, real_u, DC_K, self._radii[DC_K]
            )
        return out
