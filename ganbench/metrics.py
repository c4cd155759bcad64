"""Pure metric functions on tensors (no models, no I/O).

The evaluator computes FID and IS through torchmetrics (``FrechetInceptionDistance``,
``InceptionScore``) with an injected feature extractor; the functions here state the same formulas
independently (tests compare them) and cover what torchmetrics has no metric for: mode coverage.
All logarithms are natural.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: A class counts as covered when it receives at least this fraction of its uniform share 1/K of
#: the argmax predictions: 0.1 -> at least 1% of the samples for K = 10 (100 of 10 000).
COVERAGE_THRESHOLD = 0.1


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``mu = (1/N) sum_i f_i`` and unbiased covariance
    ``Sigma = (sum_i f_i f_i^T - N mu mu^T) / (N - 1)`` of ``(N, D)`` features, in float64."""
    f = features.double()
    n = f.shape[0]
    if n < 2:
        raise ValueError("need at least 2 feature vectors for a covariance")
    mu = f.mean(0)
    centered = f - mu
    return mu, centered.T @ centered / (n - 1)


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Fréchet distance between the Gaussians N(mu1, Sigma1) and N(mu2, Sigma2), in float64:

        d^2 = ||mu1 - mu2||^2 + Tr(Sigma1 + Sigma2 - 2 (Sigma1 Sigma2)^(1/2))

    ``Tr((Sigma1 Sigma2)^(1/2))`` is computed as the sum of the square roots of the eigenvalues of
    ``Sigma1 Sigma2`` (real parts), as torchmetrics does; those eigenvalues are real and >= 0 for
    covariance matrices up to rounding. FID is this distance between feature statistics."""
    mu1, mu2 = mu1.double(), mu2.double()
    sigma1, sigma2 = sigma1.double(), sigma2.double()
    mean_term = (mu1 - mu2).square().sum()
    tr_sqrt = torch.linalg.eigvals(sigma1 @ sigma2).sqrt().real.sum()
    return float(mean_term + sigma1.trace() + sigma2.trace() - 2 * tr_sqrt)


def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score of class probabilities ``probs`` (N, K), rows summing to 1:

        IS = exp( E_x KL(p(y|x) || p(y)) ),   p(y) = mean_x p(y|x),

    computed on each of ``splits`` consecutive chunks (``torch.chunk``, as torchmetrics does, which
    shuffles the rows first) and returned as ``(mean, std)`` over the chunks, the std with N - 1
    (torch's default; torchmetrics returns the same). ``0 log 0 = 0``. Ranges from 1 (every sample
    the same distribution) to K (confident predictions spread evenly over K classes)."""
    p = probs.double()
    scores = []
    for chunk in p.chunk(splits, dim=0):
        marginal = chunk.mean(0, keepdim=True)
        kl = (torch.xlogy(chunk, chunk) - torch.xlogy(chunk, marginal)).sum(1).mean()
        scores.append(kl.exp())
    s = torch.stack(scores)
    std = float(s.std()) if len(scores) > 1 else 0.0
    return float(s.mean()), std


def class_histogram(probs: Tensor, num_classes: int | None = None) -> Tensor:
    """Fraction of the rows of ``probs`` (N, K) (probabilities or logits: only the argmax is used)
    predicted as each class: ``h_c = #{i: argmax_k probs_ik = c} / N``, float64 (K,)."""
    k = num_classes if num_classes is not None else probs.shape[1]
    counts = torch.bincount(probs.argmax(1).cpu(), minlength=k).double()
    return counts / max(len(probs), 1)


def class_coverage(probs: Tensor, threshold: float = COVERAGE_THRESHOLD) -> tuple[int, float]:
    """Mode coverage of samples from their classifier outputs ``probs`` (N, K) (probabilities or
    logits: only the argmax is used). With ``h`` the argmax class histogram
    (:func:`class_histogram`):

    - ``classes_covered = #{c : h_c >= threshold / K}``: classes that receive at least
      ``threshold`` times their uniform share (default 0.1: >= 1% of samples for K = 10);
    - ``class_kl = KL(h || uniform) = sum_c h_c log(K h_c) = log K - H(h)``: 0 for a perfectly
      uniform histogram, ``log K`` (2.303 for K = 10) when every sample is one class.
    """
    h = class_histogram(probs)
    k = h.numel()
    covered = int((h >= threshold / k - 1e-12).sum())
    kl = float(torch.xlogy(h, h * k).sum())
    return covered, kl


# ---- fidelity and diversity apart: k-nearest-neighbour manifolds ---------------------------------

PR_K = 3  # improved precision and recall (Kynkaanniemi et al. 2019): k = 3
DC_K = 5  # density and coverage (Naeem et al. 2020): k = 5
KNN_CHUNK = 2500  # rows of a distance matrix held at once: 2500 x 10000 floats = 100 MB


def _as_features(x: Tensor) -> Tensor:
    return x.detach().reshape(len(x), -1).to(torch.float32)


def knn_radii(features: Tensor, k: int, chunk: int = KNN_CHUNK) -> Tensor:
    """Distance of each row of ``features`` (N, D) to its ``k``-th nearest other row: the radius
    of its k-NN ball (the row itself, at distance 0, is not counted), chunked so N x N never
    exists at once."""
    f = _as_features(features)
    if len(f) <= k:
        raise ValueError(f"k-NN radii with k = {k} need more than {k} points, got {len(f)}")
    return torch.cat(
        [torch.cdist(part, f).kthvalue(k + 1, dim=1).values for part in f.split(chunk)]
    )


def precision_recall(fake: Tensor, real: Tensor, k: int = PR_K) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of ``fake`` against ``real``
    features, by torch-fidelity's chunked implementation:

    - precision: the fraction of fake points inside the k-NN ball of at least one real point
      (fidelity: how many samples look real);
    - recall: the fraction of real points inside the k-NN ball of at least one fake point
      (diversity: how much of the real manifold the samples reach).

    A point on a ball's boundary counts as inside (torch-fidelity's ``<=``).
    """
    from torch_fidelity.metric_prc import calculate_precision_recall_part

    return calculate_precision_recall_part(_as_features(fake), _as_features(real), k, KNN_CHUNK)


def density_coverage(
    fake: Tensor, real: Tensor, k: int = DC_K, real_radii: Tensor | None = None
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of ``fake`` against ``real`` features, as in
    the authors' ``prdc`` package (``clovaai/generative-evaluation-prdc``), chunked:

    - density = (1 / kM) sum_j #{i : ||y_j - x_i|| < r_i}: how many real k-NN balls (radius
      ``r_i``, :func:`knn_radii` of the real points) hold each of the M fake points, over k;
      about 1 when fakes are spread like the reals, above 1 where they crowd dense regions;
    - coverage = (1 / N) #{i : min_j ||y_j - x_i|| < r_i}: the fraction of the N real points
      whose ball holds at least one fake point (diversity, robust to outliers).

    ``real_radii``: the real points' radii for this ``k`` when the caller has them cached.
    """
    x, y = _as_features(real), _as_features(fake)
    r = knn_radii(x, k) if real_radii is None else real_radii.to(torch.float32)
    inside_per_fake = torch.zeros(len(y), dtype=torch.float64)
    covered = torch.zeros(len(x), dtype=torch.bool)
    for start in range(0, len(x), KNN_CHUNK):
        d = torch.cdist(x[start : start + KNN_CHUNK], y)  # (chunk of reals, M)
        inside = d < r[start : start + KNN_CHUNK, None]
        inside_per_fake += inside.sum(0, dtype=torch.float64)
        covered[start : start + KNN_CHUNK] = inside.any(1)
    return float(inside_per_fake.mean() / k), float(covered.double().mean())
