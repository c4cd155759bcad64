"""WGAN-GP for ganbench: the Wasserstein critic loss with a gradient penalty.

Install with ``pip install ./plugins/ganbench-wgan-gp``; then ``ganbench run --loss wgan-gp``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganbench import Hyperparams, Loss, hookimpl
from ganbench import losses as L  # the pure math functions of the built-in objectives
from ganbench.search_space import LogUniform

__version__ = "0.1.0"


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """``E[(||∇_x̂ D(x̂)||_2 - 1)^2]`` at ``x̂ = eps·real + (1 - eps)·fake`` (one ``eps`` per sample).

    Computed in float32 with autocast disabled, so the penalty is the same under
    ``--precision bf16``. ``create_graph=True`` keeps the graph of the input gradient, so the
    penalty's own gradient reaches D's parameters (a double backward).
    """
    with torch.autocast(real.device.type, enabled=False):
        x_hat = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_()
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        # sqrt(sum + tiny): the plain 2-norm has an undefined gradient where grad == 0
        norm = (grad.flatten(1).pow(2).sum(1) + 1e-12).sqrt()
        return (norm - 1).pow(2).mean()


class WGANGP(Loss):
    """WGAN-GP: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1.

    Critic loss ``E D(G(z)) - E D(x) + λ E[(||∇_x̂ D(x̂)||_2 - 1)^2]`` with
    ``x̂ = ε x + (1 - ε) G(z)``, ``ε ~ U[0, 1]`` per sample; generator loss ``-E D(G(z))``.
    The critic outputs raw scores (no sigmoid) and is not clipped.

    Paper defaults (Algorithm 1): ``λ = 10`` (extras ``lambda``), ``n_critic = 5``, Adam with
    ``lr = 1e-4``, ``β1 = 0``, ``β2 = 0.9`` for both networks. The paper also drops batch
    normalisation from the critic (the penalty is per sample); the article's ``dcgan-mnist``
    critic has none.
    """

    defaults = Hyperparams(
        optimizer_g="adam",
        optimizer_d="adam",
        lr_g=1e-4,
        lr_d=1e-4,
        beta1=0.0,
        beta2=0.9,
        n_critic=5,
        extras={"lambda": 10.0},
    )
    # ganbench search draws the penalty weight too (Lucic et al. 2018: log-uniform in [0.1, 100])
    search_space = {"lambda": LogUniform(0.1, 100.0)}
    reference = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        eps = torch.rand(eps_shape, device=real.device)
        penalty = gradient_penalty(D, real, fake, eps)
        return L.wasserstein_critic_loss(D(real), D(fake)) + self.hp.extras["lambda"] * penalty

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return L.wasserstein_g_loss(D(fake))


@hookimpl
def register_losses(register):
    register("wgan-gp", WGANGP)
