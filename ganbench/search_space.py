"""Search spaces for ``ganbench search``: the ranges hyperparameters are drawn from.

Every loss searches the same shared space, :data:`SHARED_SPACE` (Lucic et al. 2018, "Are GANs
Created Equal?", wide range: learning rates log-uniform in [1e-5, 1e-2], beta1 in [0, 1),
discriminator steps 1-5; the optimiser and beta2 too). A loss adds only its own extras
(``Loss.search_space``, e.g. WGAN's ``clip``), and a model pair may narrow any range
(``search_space`` on the generator class, :class:`~ganbench.models.PairDefaults`). Draws are
seeded by (search seed, loss name, trial), so a draw never depends on how many trials or which
other losses a search has, and a longer search keeps the draws of a shorter one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganbench.errors import GanbenchError


class Distribution:
    """A range to draw one hyperparameter from."""

    def draw(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def within(self, other: Distribution) -> bool:
        """Whether every value this can draw ``other`` can draw too (narrowing)."""
        raise NotImplementedError


@dataclass(frozen=True)
class LogUniform(Distribution):
    """Log-uniform in ``[low, high]`` (both > 0)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise GanbenchError(f"LogUniform needs 0 < low <= high, got {self.low}, {self.high}")

    def draw(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def within(self, other: Distribution) -> bool:
        return isinstance(other, LogUniform | Uniform) and other.low <= self.low <= self.high <= (
            other.high
        )


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform in ``[low, high)``."""

    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def within(self, other: Distribution) -> bool:
        return isinstance(other, Uniform | LogUniform) and other.low <= self.low <= self.high <= (
            other.high
        )


@dataclass(frozen=True)
class IntRange(Distribution):
    """A whole number in ``[low, high]``, each equally likely."""

    low: int
    high: int

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def within(self, other: Distribution) -> bool:
        return isinstance(other, IntRange) and other.low <= self.low <= self.high <= other.high


@dataclass(frozen=True)
class Choice(Distribution):
    """One of ``options``, each equally likely."""

    options: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def within(self, other: Distribution) -> bool:
        return isinstance(other, Choice) and set(self.options) <= set(other.options)


# The space every loss searches (Lucic et al. 2018's wide range; compare_gan v1). The optimiser
# is drawn once for both models; learning rates are drawn apart (two time-scales included).
SHARED_SPACE: Mapping[str, Distribution] = {
    "optimizer": Choice(("adam", "rmsprop")),
    "lr_g": LogUniform(1e-5, 1e-2),
    "lr_d": LogUniform(1e-5, 1e-2),
    "beta1": Uniform(0.0, 1.0),
    "beta2": Uniform(0.9, 1.0),
    "n_critic": IntRange(1, 5),
}


def compose(
    extras: Mapping[str, Distribution], narrowed: Mapping[str, Distribution] | None = None
) -> dict[str, Distribution]:
    """The space of one loss on one pair: :data:`SHARED_SPACE` with the loss's ``extras`` (keys
    of its ``defaults.extras``), and the pair's ``narrowed`` ranges in place of the wider ones."""
    space: dict[str, Distribution] = dict(SHARED_SPACE)
    for key, dist in {**dict(extras), **dict(narrowed or {})}.items():
        if not isinstance(dist, Distribution):
            raise GanbenchError(
                f"Search space entry {key!r} must be a ganbench.search_space Distribution "
                f"(LogUniform, Uniform, IntRange, Choice), got {dist!r}"
            )
    for key, dist in extras.items():
        if key in SHARED_SPACE:
            raise GanbenchError(
                f"A loss's search_space adds extras only; {key!r} is in the shared space "
                f"({', '.join(SHARED_SPACE)})"
            )
        space[key] = dist
    for key, dist in (narrowed or {}).items():
        if key not in space:  # another loss's extra (a pair narrows for every loss it trains)
            continue
        if not dist.within(space[key]):
            raise GanbenchError(
                f"A pair may only narrow the search space: {key} {dist} is not within {space[key]}"
            )
        space[key] = dist
    return space


def draw_seed(search_seed: int, loss: str, trial: int) -> list[int]:
    """The RNG seed of one draw: (search seed, a stable hash of the loss name, trial)."""
    name = int.from_bytes(hashlib.sha256(loss.encode()).digest()[:4], "big")
    return [int(search_seed), name, int(trial)]


def draw(space: Mapping[str, Distribution], search_seed: int, loss: str, trial: int) -> dict:
    """One draw of every key of ``space`` (in sorted key order), reproducible from its seed."""
    rng = np.random.default_rng(draw_seed(search_seed, loss, trial))
    return {key: space[key].draw(rng) for key in sorted(space)}


def as_overrides(drawn: dict[str, Any]) -> dict[str, Any]:
    """A draw as :class:`~ganbench.losses.Hyperparams` fields: one optimiser for both models,
    the loss's extras under ``extras``."""
    out: dict[str, Any] = {"extras": {}}
    for key, value in drawn.items():
        if key == "optimizer":
            out["optimizer_g"] = out["optimizer_d"] = value
        elif key in ("lr_g", "lr_d", "beta1", "beta2", "n_critic"):
            out[key] = value
        else:
            out["extras"][key] = value
    return out
