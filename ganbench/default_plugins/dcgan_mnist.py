"""The source article's MNIST DCGAN pair ("dcgan-mnist"), exactly as the article has it, and
"dcgan-mnist-bn", the same pair with the two DCGAN changes that make it train.

Keras ``padding="same"`` is reproduced with padding 2 for the 5x5 kernels, and
``output_padding=1`` for the stride-2 transposed convolutions (7 -> 14 -> 28).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganbench.hookspecs import hookimpl
from ganbench.models import ConvFeaturesHead, init_weights


class DcganMnistGenerator(nn.Module):
    """z (100) -> Dense 128 relu -> Dense 7*7*128 relu -> (128,7,7) -> ConvT 128 5x5 s1 relu
    -> ConvT 64 5x5 s2 relu -> ConvT 1 5x5 s2 sigmoid -> (1,28,28) in [0, 1].

    Initialisation: Xavier (Glorot uniform, the Keras default the article trains with);
    ``init="he"`` selects He initialisation, the article's other named choice.
    """

    z_dim = 100
    output_shape = (1, 28, 28)
    output_range = (0.0, 1.0)

    def __init__(self, init: str = "xavier", batchnorm: bool = False, tanh: bool = False) -> None:
        super().__init__()
        self.init = init
        if tanh:
            self.output_range = (-1.0, 1.0)

        def block(layer: nn.Module, norm: nn.Module) -> list[nn.Module]:
            # BatchNorm after each hidden layer when asked (Radford et al. 2016), then ReLU
            return [layer, norm, nn.ReLU()] if batchnorm else [layer, nn.ReLU()]

        self.dense = nn.Sequential(
            *block(nn.Linear(self.z_dim, 128), nn.BatchNorm1d(128)),
            *block(nn.Linear(128, 7 * 7 * 128), nn.BatchNorm1d(7 * 7 * 128)),
        )
        self.deconv = nn.Sequential(
            *block(nn.ConvTranspose2d(128, 128, 5, stride=1, padding=2), nn.BatchNorm2d(128)),
            *block(
                nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1),
                nn.BatchNorm2d(64),
            ),
            nn.ConvTranspose2d(64, 1, 5, stride=2, padding=2, output_padding=1),
            nn.Tanh() if tanh else nn.Sigmoid(),
        )
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.dense(z).view(-1, 128, 7, 7))


class DcganMnistDiscriminator(ConvFeaturesHead):
    """(1,28,28) -> Conv 64 5x5 s2 -> LeakyReLU 0.2 -> Conv 128 5x5 s2 -> LeakyReLU 0.2
    -> flatten (6272 features, used by feature matching) -> Dense 1 (a logit).

    The article's final sigmoid lives in the losses (softplus/logsigmoid on the logit).
    """

    def __init__(self, init: str = "xavier") -> None:
        super().__init__()
        self.init = init
        self.conv = nn.Sequential(
            nn.Conv2d(1, 64, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 5, stride=2, padding=2),
            nn.LeakyReLU(0.2),
        )
        self.fc = nn.Linear(128 * 7 * 7, 1)
        init_weights(self, init)


# Radford et al. 2016 (DCGAN): Adam 2e-4, beta1 0.5 for the logistic objectives. WGAN keeps its
# own paper's settings (RMSprop 5e-5, clip 0.01, n_critic 5): Arjovsky et al. trained this kind
# of BatchNorm DCGAN generator with exactly those.
DCGAN_ADAM = {
    "optimizer_g": "adam",
    "optimizer_d": "adam",
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "beta1": 0.5,
}


WGAN_STEPS = 1000


class DcganMnistBnGenerator(DcganMnistGenerator):
    """The article's generator with two changes from DCGAN (Radford et al. 2016), chosen by the
    ablation in docs/ablation.md: BatchNorm after every hidden layer, and a tanh output with the
    data scaled to [-1, 1]. Layer sizes, kernels, strides and the discriminator are unchanged.
    """

    loss_hyperparams = {"optimizer:adam": DCGAN_ADAM}  # every Adam objective, plugins' too
    # WGAN with its paper's clipping and RMSprop 5e-5 learns slowly: no digits at 300 steps, so
    # 1000 steps (its curve, dated, in docs/findings.md). A run with wgan gets this budget for
    # every cell (defaults.default_steps).
    loss_steps = {"wgan": WGAN_STEPS}

    def __init__(self, init: str = "xavier") -> None:
        super().__init__(init=init, batchnorm=True, tanh=True)


@hookimpl
def register_generators(register):
    register("dcgan-mnist", DcganMnistGenerator)
    register("dcgan-mnist-bn", DcganMnistBnGenerator)


@hookimpl
def register_discriminators(register):
    register("dcgan-mnist", DcganMnistDiscriminator)
    register("dcgan-mnist-bn", DcganMnistDiscriminator)
