"""LSGAN for ganbench: least-squares losses on the discriminator's raw output.

Install with ``pip install ./plugins/ganbench-lsgan``; then ``ganbench run --loss lsgan``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganbench import Hyperparams, Loss, hookimpl

__version__ = "0.1.0"


def least_squares_d_loss(real_scores: Tensor, fake_scores: Tensor, a: float, b: float) -> Tensor:
    """``1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]`` (Mao et al. 2017, eq. 2)."""
    return 0.5 * (real_scores - b).pow(2).mean() + 0.5 * (fake_scores - a).pow(2).mean()


def least_squares_g_loss(fake_scores: Tensor, c: float) -> Tensor:
    """``1/2 E[(D(G(z)) - c)^2]`` (Mao et al. 2017, eq. 2)."""
    return 0.5 * (fake_scores - c).pow(2).mean()


class LSGAN(Loss):
    """LSGAN: Mao et al. 2017, "Least Squares Generative Adversarial Networks" (ICCV).

    D minimises ``1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]`` and G minimises
    ``1/2 E[(D(G(z)) - c)^2]`` on D's raw (linear) output -- no sigmoid. Defaults: the paper's
    0-1 coding ``a = 0, b = 1, c = 1`` (its eq. 9; extras ``a``, ``b``, ``c``, so
    ``--loss-param a=-1 --loss-param c=0`` gives the Pearson χ² coding of its eq. 8); one D
    step per G step; Adam with ``lr = 2e-4``, ``β1 = 0.5`` (``β2`` Adam's 0.999): the setting of
    its 28x28 handwritten-character experiment, the closest to MNIST (its 112x112 scene
    experiments used ``lr = 1e-3``).
    """

    defaults = Hyperparams(
        optimizer_g="adam",
        optimizer_d="adam",
        lr_g=2e-4,
        lr_d=2e-4,
        beta1=0.5,
        beta2=0.999,
        n_critic=1,
        extras={"a": 0.0, "b": 1.0, "c": 1.0},
    )
    reference = "Mao et al. 2017, Least Squares Generative Adversarial Networks"

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        x = self.hp.extras
        return least_squares_d_loss(D(real), D(fake), a=x["a"], b=x["b"])

    def g_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return least_squares_g_loss(D(fake), c=self.hp.extras["c"])


@hookimpl
def register_losses(register):
    register("lsgan", LSGAN)
