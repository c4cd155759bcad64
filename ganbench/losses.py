"""The loss contract and the pure math of the built-in objectives.

Every logistic term is computed from logits with ``softplus``/``logsigmoid`` -- never
``log(sigmoid(.))``, which saturates to ``log(0) = -inf`` once the discriminator is confident.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from ganbench.search_space import Distribution

OPTIMIZERS = ("adam", "rmsprop", "sgd")


@dataclass(frozen=True)
class Hyperparams:
    """An objective's training hyperparameters (its paper's defaults, or overridden).

    ``extras`` holds loss-specific values such as WGAN's clip value ``clip``.
    """

    optimizer_g: str = "adam"
    optimizer_d: str = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.9  # Adam's betas; ignored by RMSprop and SGD
    beta2: float = 0.999
    n_critic: int = 1  # discriminator steps per generator step
    extras: Mapping[str, float] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Hyperparams:
        """A copy with ``changes`` applied; ``extras`` entries are merged, not replaced."""
        extras = dict(self.extras)
        extras.update(changes.pop("extras", {}) or {})
        return dataclasses.replace(self, extras=extras, **changes)

    def problems(self) -> list[str]:
        """What is invalid about these values, one phrase each; empty when all are valid.

        Optimisers must be in :data:`OPTIMIZERS`, learning rates finite and > 0, betas in
        ``[0, 1)``, ``n_critic`` an integer >= 1, and every ``extras`` value a finite number.
        """
        found = []
        for key in ("optimizer_g", "optimizer_d"):
            value = getattr(self, key)
            if value not in OPTIMIZERS:
                found.append(f"{key} must be one of {', '.join(OPTIMIZERS)}, got {value!r}")
        for key in ("lr_g", "lr_d"):
            value = getattr(self, key)
            if not (_is_number(value) and math.isfinite(value) and value > 0):
                found.append(f"{key} must be a finite number > 0, got {value!r}")
        for key in ("beta1", "beta2"):
            value = getattr(self, key)
            if not (_is_number(value) and 0 <= value < 1):
                found.append(f"{key} must be a number in [0, 1), got {value!r}")
        if not (isinstance(self.n_critic, int) and not isinstance(self.n_critic, bool)) or (
            self.n_critic < 1
        ):
            found.append(f"n_critic must be an integer >= 1, got {self.n_critic!r}")
        for key, value in dict(self.extras).items():
            if not (_is_number(value) and math.isfinite(value)):
                found.append(f"extras[{key!r}] must be a finite number, got {value!r}")
        return found


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Loss:
    """Base class of GAN objectives. A loss only scores; the trainer does the mechanics.

    Subclasses set :attr:`defaults` (their paper's hyperparameters) and implement
    :meth:`d_loss` and :meth:`g_loss`. The trainer sets :attr:`hp` (defaults plus any command-line
    overrides) before training, so ``self.hp.extras`` holds the values actually used.

    Keep no training state in a loss (counters, running averages): checkpoints hold the models,
    optimisers and RNG states, and a resumed cell builds a fresh loss.
    """

    defaults: Hyperparams = Hyperparams()
    # ``ganbench search``: ranges for the loss's own extras (keys of ``defaults.extras``), e.g.
    # ``{"clip": LogUniform(1e-3, 1e-1)}``; the optimiser, learning rates, betas and n_critic
    # come from the shared space every loss searches (ganbench.search_space.SHARED_SPACE)
    search_space: Mapping[str, Distribution] = {}
    reference: str = ""  # the paper the objective comes from

    def __init__(self) -> None:
        self.hp: Hyperparams = self.defaults

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """The discriminator's (critic's) loss on a real and a (detached) generated batch."""
        raise NotImplementedError

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """The generator's loss; ``fake`` carries gradients to G, ``real`` is a data batch."""
        raise NotImplementedError

    def after_d_step(self, D: nn.Module) -> None:
        """Called after every discriminator optimiser step (e.g. WGAN's weight clipping)."""


# ---- pure math, on logits / scores -------------------------------------------------------------


def logistic_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``L_D = -1/m Σ [log D(x_i) + log(1 - D(G(z_i)))]`` with ``D = sigmoid(logit)``.

    ``-log sigmoid(l) = softplus(-l)`` and ``-log(1 - sigmoid(l)) = softplus(l)``.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_g_loss(fake_logits: Tensor) -> Tensor:
    """Saturating generator loss ``1/m Σ log(1 - D(G(z_i))) = -1/m Σ softplus(l_i)``."""
    return -F.softplus(fake_logits).mean()


def non_saturating_g_loss(fake_logits: Tensor) -> Tensor:
    """``L_G = -1/m Σ log D(G(z_i)) = 1/m Σ softplus(-l_i)``."""
    return F.softplus(-fake_logits).mean()


def feature_matching_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """``|| E f(x) - E f(G(z)) ||²`` over the batch (Salimans et al. 2016, eq. 4)."""
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).sum()


def wasserstein_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """``-(E D(x) - E D(G(z)))``: the critic maximises the score gap."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_g_loss(fake_scores: Tensor) -> Tensor:
    """``-E D(G(z))``."""
    return -fake_scores.mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, clip: float) -> None:
    """Clamp every parameter of ``module`` to ``[-clip, clip]`` in place (Arjovsky et al. 2017)."""
    for p in module.parameters():
        p.clamp_(-clip, clip)
