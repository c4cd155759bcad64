"""Pure statistics on arrays of per-seed values: bootstrap intervals, rank tests, Holm, budgets.

Everything here is deterministic: bootstrap resampling draws from a generator seeded with
:data:`BOOTSTRAP_SEED` (or the caller's seed), so the same values always give the same interval.

Why these choices (Lucic et al. 2018, "Are GANs Created Equal?"): GAN objectives differ less than
seed-to-seed variance suggests, so every number comes with its spread over seeds, and a difference
between two objectives is only called significant by a rank test corrected for the number of
pairs compared. A rank test on few seeds has little power: with ``n_a`` and ``n_b`` seeds the
smallest two-sided Mann-Whitney p-value possible is ``2 / C(n_a + n_b, n_a)`` (3 vs 3 seeds:
0.1, never below 0.05), see :func:`min_mann_whitney_p`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
BEST_OF_K_RESAMPLES = 1000
ALPHA = 0.05  # family-wise error rate for the Holm-corrected p-values
MIN_VALUES = 2  # fewer finite values than this on a side: no interval, no test (NaN)


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The finite values as a float array (NaN and inf dropped: failed or unscored runs)."""
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    seed: int = BOOTSTRAP_SEED,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    ``n_resamples`` resamples with replacement (``scipy.stats.bootstrap``, percentile method),
    drawn from ``numpy.random.default_rng(seed)``. Non-finite values are dropped first; with fewer
    than :data:`MIN_VALUES` left the interval is ``(nan, nan)``. With few values the percentile
    interval is narrower than the truth (it cannot see variance the sample did not show).
    """
    x = finite(values)
    if len(x) < MIN_VALUES:
        return math.nan, math.nan
    result = sps.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_diff_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    seed: int = BOOTSTRAP_SEED,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(a) - mean(b)``, resampling each side on its own.

    Same conventions as :func:`bootstrap_ci`; ``(nan, nan)`` when either side has fewer than
    :data:`MIN_VALUES` finite values.
    """
    x, y = finite(a), finite(b)
    if len(x) < MIN_VALUES or len(y) < MIN_VALUES:
        return math.nan, math.nan
    result = sps.bootstrap(
        (x, y),
        _mean_difference,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mann_whitney(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of ``a`` against ``b``: ``(U of a, p-value)``.

    ``scipy.stats.mannwhitneyu`` with its default method (exact for small samples without ties).
    ``(nan, nan)`` when either side has fewer than :data:`MIN_VALUES` finite values.
    """
    x, y = finite(a), finite(b)
    if len(x) < MIN_VALUES or len(y) < MIN_VALUES:
        return math.nan, math.nan
    result = sps.mannwhitneyu(x, y, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def min_mann_whitney_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney test can give: ``2 / C(n_a+n_b, n_a)``.

    With 3 seeds against 3 it is 0.1: no difference can be significant at 0.05, however large.
    """
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def can_be_significant(n_a: int, n_b: int, pairs: int = 1, alpha: float = ALPHA) -> bool:
    """Whether a pair with ``n_a`` against ``n_b`` values can reach a Holm-adjusted p below
    ``alpha`` in a family of ``pairs`` tests: Holm's first step multiplies the smallest p by
    ``pairs``, and the smallest p the test can give is :func:`min_mann_whitney_p`."""
    return pairs * min_mann_whitney_p(n_a, n_b) < alpha


def seeds_for_significance(pairs: int, alpha: float = ALPHA) -> int:
    """The fewest seeds per arm (n against n) with which a difference can be significant after
    Holm's correction over ``pairs`` tests: 4 for one pair, 6 for the 21 pairs of 7 arms (where
    only a perfect separation of the two arms' seeds would do, 7 allow two swapped ranks)."""
    n = 2
    while not can_be_significant(n, n, max(1, pairs), alpha):
        n += 1
    return n


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down), in the input order.

    The ``m`` finite p-values form the family; NaN entries stay NaN and do not count. Sorted
    ascending, the i-th (0-based) is multiplied by ``m - i``, a running maximum keeps the adjusted
    values monotone, and they are capped at 1. Reject where the adjusted value is below alpha.
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return adjusted
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def value_at_budget(
    budgets: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, budget: float
) -> float:
    """Linear interpolation of a curve ``values(budgets)`` at ``budget``; never extrapolates.

    ``budgets`` must increase (e.g. seconds or FLOPs at successive evaluation points). Outside
    ``[budgets[0], budgets[-1]]``, or for an empty curve, the result is NaN.
    """
    x = np.asarray(budgets, dtype=float)
    y = np.asarray(values, dtype=float)
    if len(x) == 0 or not math.isfinite(budget) or budget < x[0] or budget > x[-1]:
        return math.nan
    return float(np.interp(budget, x, y))


def best_of_k(
    values: np.ndarray, rng: np.random.Generator, better_higher: bool
) -> list[dict[str, float]]:
    """For k = 1..n: the best of k of the n ``values`` (lower is better; the caller negates a
    higher-is-better metric and passes ``better_higher`` to undo it), drawn without replacement
    :data:`BEST_OF_K_RESAMPLES` times: the median and the central :data:`CONFIDENCE` band
    (Lucic et al. 2018, Fig. 4). Keys ``k``, ``draws``, ``best_metric_median``, ``_lo``, ``_hi``
    and ``resamples``."""
    n, rows = len(values), []
    for k in range(1, n + 1):
        best = np.array(
            [values[rng.choice(n, size=k, replace=False)].min() for _ in range(BEST_OF_K_RESAMPLES)]
        )
        if better_higher:
            best = -best
        lo, hi = np.percentile(
            best, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)], method="inverted_cdf"
        )
        rows.append(
            {
                "k": k,
                "draws": n,
                "best_metric_median": float(np.percentile(best, 50, method="inverted_cdf")),
                "best_metric_lo": float(lo),
                "best_metric_hi": float(hi),
                "resamples": BEST_OF_K_RESAMPLES,
            }
        )
    return rows
