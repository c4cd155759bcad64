"""How fast a cell got to a quality, and whether it was still getting better when it stopped.

Both read a cell's FID curve (the ``--eval-every`` points, on ``--eval-every-samples`` samples)
and its training budget curves (``wall_s``, ``train_gflop``, at every log point).

- **Time to quality**: the training wall seconds and counted training GFLOP at the first curve
  point whose FID is at most ``k`` times the real-data floor, for ``k`` in :data:`FLOOR_MULTIPLES`
  (columns ``s_to_<k>x_floor`` and ``gflop_to_<k>x_floor``; NaN: not reached within the budget).
  The floor is the real-data FID at the curve's own sample count (FID is biased upward at small
  sample counts, and the floor with it), so curve points and threshold are computed alike.
- **Still improving**: whether FID fell by more than :data:`IMPROVING_FRACTION` of its value
  over the last quarter of the curve: from the last point at or before 3/4 of the final step to
  the final point (columns ``fid_drop_last_quarter``, the fraction, and ``still_improving``). A
  cell still improving when its budget ended might rank differently with a longer one.

Each is computed for G (``fid``) and for the EMA generator (``fid_ema``, columns ``..._ema``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

FLOOR_MULTIPLES = (2, 5)
IMPROVING_FRACTION = 0.05
BUDGETS = {"s": "wall_s", "gflop": "train_gflop"}


def _curve(curves: Iterable[tuple[int, str, float]], metric: str) -> tuple[np.ndarray, np.ndarray]:
    points = sorted({step: value for step, name, value in curves if name == metric}.items())
    if not points:
        return np.empty(0), np.empty(0)
    steps, values = zip(*points, strict=True)
    return np.asarray(steps, float), np.asarray(values, float)


def time_to_quality(
    curves: list[tuple[int, str, float]], metric: str, floor: float, suffix: str = ""
) -> dict[str, float]:
    """``s_to_<k>x_floor<suffix>`` and ``gflop_to_<k>x_floor<suffix>`` for every ``k`` (NaN
    where the ``metric`` curve never reaches ``k * floor``, or there is no curve or floor)."""
    steps, values = _curve(curves, metric)
    out = {f"{b}_to_{k}x_floor{suffix}": math.nan for k in FLOOR_MULTIPLES for b in BUDGETS}
    if not len(steps) or not (math.isfinite(floor) and floor > 0):
        return out
    for b, budget in BUDGETS.items():
        bx, by = _curve(curves, budget)
        if not len(bx):
            continue
        for k in FLOOR_MULTIPLES:
            reached = np.flatnonzero(values <= k * floor)
            if len(reached):  # the budget spent by that step, from (step 0, budget 0)
                at = steps[reached[0]]
                out[f"{b}_to_{k}x_floor{suffix}"] = float(np.interp(at, np.r_[0, bx], np.r_[0, by]))
    return out


def still_improving(
    curves: list[tuple[int, str, float]], metric: str, suffix: str = ""
) -> dict[str, Any]:
    """``fid_drop_last_quarter<suffix>`` (the fraction FID fell over the last quarter) and
    ``still_improving<suffix>`` (that fraction > :data:`IMPROVING_FRACTION`); NaN and None
    with fewer than two curve points."""
    steps, values = _curve(curves, metric)
    drop, improving = math.nan, None
    if len(steps) >= 2 and np.all(np.isfinite(values)):
        before = np.flatnonzero(steps <= 0.75 * steps[-1])
        start = values[before[-1]] if len(before) else values[0]
        if start > 0:
            drop = float((start - values[-1]) / start)
            improving = bool(drop > IMPROVING_FRACTION)
    return {f"fid_drop_last_quarter{suffix}": drop, f"still_improving{suffix}": improving}


def convergence_columns(
    curves: list[tuple[int, str, float]], floor: float, suffixes: Iterable[str] = ("",)
) -> dict[str, Any]:
    """Both, for the ``fid<suffix>`` curve of each generator (``""``: G; ``"_ema"``: EMA-G)."""
    out: dict[str, Any] = {}
    for suffix in suffixes:
        if not len(_curve(curves, f"fid{suffix}")[0]):
            continue
        out.update(time_to_quality(curves, f"fid{suffix}", floor, suffix))
        out.update(still_improving(curves, f"fid{suffix}", suffix))
    return out
