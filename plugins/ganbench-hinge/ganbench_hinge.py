"""The hinge GAN loss for ganbench, as SNGAN and BigGAN train with it.

Install with ``pip install ./plugins/ganbench-hinge``; then ``ganbench run --loss hinge``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ganbench import Hyperparams, Loss, hookimpl

__version__ = "0.1.0"


def hinge_d_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`` (Miyato et al. 2018, eq. 16)."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def hinge_g_loss(fake_scores: Tensor) -> Tensor:
    """``-E[D(G(z))]`` (Miyato et al. 2018, eq. 17)."""
    return -fake_scores.mean()


class Hinge(Loss):
    """Hinge loss: Miyato et al. 2018, "Spectral Normalization for Generative Adversarial
    Networks" (SNGAN, eqs. 16-17), also used by Brock et al. 2019 (BigGAN).

    D minimises ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`` on its raw score; G minimises
    ``-E[D(G(z))]``. Defaults: the authors' released SNGAN hinge configuration (CIFAR-10,
    ``pfnet-research/sngan_projection``): ``n_critic = 5`` (n_dis), Adam with ``lr = 2e-4``,
    ``β1 = 0``, ``β2 = 0.9``. Only the loss: spectral normalisation is a property of the
    discriminator, which the model pair decides (``dcgan-mnist`` has none).
    """

    defaults = Hyperparams(
        optimizer_g="adam",
        optimizer_d="adam",
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.0,
        beta2=0.9,
        n_critic=5,
    )
    reference = "Miyato et al. 2018, Spectral Normalization for Generative Adversarial Networks"

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return hinge_d_loss(D(real), D(fake))

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return hinge_g_loss(D(fake))


@hookimpl
def register_losses(register):
    register("hinge", Hinge)
