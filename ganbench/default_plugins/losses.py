"""The four objectives of the source article: minimax, non-saturating, feature matching, WGAN."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganbench import losses as L
from ganbench.hookspecs import hookimpl
from ganbench.search_space import LogUniform

# The article's example compiles both models with Keras' "adam": lr 1e-3, betas (0.9, 0.999).
ARTICLE_ADAM = L.Hyperparams(optimizer_g="adam", optimizer_d="adam", lr_g=1e-3, lr_d=1e-3)


class Minimax(L.Loss):
    """The original minimax game (Goodfellow et al. 2014): G minimises ``log(1 - D(G(z)))``."""

    defaults = ARTICLE_ADAM
    reference = "Goodfellow et al. 2014, Generative Adversarial Nets"

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return L.logistic_d_loss(D(real), D(fake))

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return L.minimax_g_loss(D(fake))


class NonSaturating(Minimax):
    """The non-saturating variant (Goodfellow et al. 2014, sec. 3): G maximises ``log D(G(z))``."""

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return L.non_saturating_g_loss(D(fake))


class FeatureMatching(Minimax):
    """Feature matching (Salimans et al. 2016): G matches D's mean intermediate features.

    D keeps the logistic loss.
    """

    reference = "Salimans et al. 2016, Improved Techniques for Training GANs"

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        with torch.no_grad():
            real_features = D.features(real)
        return L.feature_matching_loss(real_features, D.features(fake))


class WGAN(L.Loss):
    """Wasserstein GAN with weight clipping (Arjovsky et al. 2017), the paper's defaults.

    The critic outputs raw scores (no sigmoid); its weights are clipped to ``[-clip, clip]``
    after every critic step; ``n_critic`` = 5; RMSprop with lr 5e-5.
    """

    defaults = L.Hyperparams(
        optimizer_g="rmsprop",
        optimizer_d="rmsprop",
        lr_g=5e-5,
        lr_d=5e-5,
        n_critic=5,
        extras={"clip": 0.01},
    )
    search_space = {"clip": LogUniform(1e-3, 1e-1)}  # the clip value, a decade around 0.01
    reference = "Arjovsky et al. 2017, Wasserstein GAN"

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return L.wasserstein_critic_loss(D(real), D(fake))

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return L.wasserstein_g_loss(D(fake))

    def after_d_step(self, D: nn.Module) -> None:
        L.clip_weights_(D, float(self.hp.extras["clip"]))


@hookimpl
def register_losses(register):
    register("minimax", Minimax)
    register("non-saturating", NonSaturating)
    register("feature-matching", FeatureMatching)
    register("wgan", WGAN)
