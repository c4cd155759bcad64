"""Cheaper DCGAN pairs of the same shape as dcgan-mnist-bn, for a default that trains in minutes.

The shape is DCGAN's for 28x28 (Radford et al. 2016, as in the PyTorch and TF-GAN MNIST
examples): G is z -> Dense 7*7*2w (BatchNorm, ReLU) -> ConvT w 4x4 s2 (BatchNorm, ReLU) ->
ConvT 1 4x4 s2 tanh; D is Conv w 4x4 s2 -> LeakyReLU 0.2 -> Conv 2w 4x4 s2 -> [norm] ->
LeakyReLU 0.2 -> flatten (features, for feature matching) -> Dense 1 (a logit). Against
dcgan-mnist-bn it drops G's two extra layers (Dense 128, the 5x5 ConvT at stride 1) and uses
4x4 kernels, which tile a stride-2 upsampling evenly (no checkerboard); at w = 32 a step
costs about 1/10 of its FLOPs per image (5.4 against 53 GFLOP per step at batch 128).

The variants below are the levers of the ablation in docs/ablation-lite.md. Its stage 3 added
the one it had missed: a Dense layer of 1024 units in G (before the 7x7 one) and in D (before
the logit), as in the MNIST pair of Lucic et al. 2018 ("Are GANs created equal?", InfoGAN's
pair). ``dcgan-lite-dense`` is w = 32 with those layers; ``dcgan-lite-dense-ttur``, the same
pair with D learning 5x slower than G and 2400 steps (its stage 4), is the MNIST default;
``dcgan-lite-lucic`` (w = 64 with them, Lucic et al.'s pair) is MNIST's ``--budget long``.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ganbench.default_plugins.dcgan_mnist import DCGAN_ADAM
from ganbench.default_plugins.equal_tuning import TUNED_SETUP
from ganbench.hookspecs import hookimpl
from ganbench.models import ConvFeaturesHead, init_weights

D_NORMS = ("none", "bn", "sn")
LITE_ADAM = {**DCGAN_ADAM, "lr_g": 1e-3, "lr_d": 1e-3}


class LiteGenerator(nn.Module):
    """z (100) -> [Dense hidden BN ReLU] -> Dense 7*7*2w BN ReLU -> ConvT w 4x4 s2 BN ReLU ->
    ConvT 1 4x4 s2 tanh.

    Output (1, 28, 28) in [-1, 1]. Xavier initialisation, as the other MNIST pairs.
    """

    z_dim = 100
    output_shape = (1, 28, 28)
    output_range = (-1.0, 1.0)
    # the logistic objectives get DCGAN's Adam (Radford et al. 2016), as on dcgan-mnist-bn;
    # WGAN keeps its paper's RMSprop 5e-5, clip 0.01, n_critic 5
    # the pair's recommended setup (ganbench.models.pair_defaults), chosen by the ablation
    # (docs/ablation-lite.md): batch 64, 3000 steps (3.2 epochs; ~3 min for a logistic
    # objective on the 2-core CPU here in fp32), the EMA generator, a fresh fake for the G step
    batch_size = 64
    default_steps = 3000
    ema_decay = 0.999
    reuse_fake = False
    # the logistic objectives get Adam 1e-3, beta1 0.5: DCGAN's Adam (Radford et al. 2016) at the
    # learning rate the ablation found fastest (its FIDs, dated, in docs/ablation-lite.md);
    # WGAN keeps its paper's RMSprop 5e-5, clip 0.01, n_critic 5. Keyed by optimiser, so every
    # Adam objective gets it, a plugin's as much as a built-in one (equal terms)
    loss_hyperparams = {"optimizer:adam": LITE_ADAM}

    def __init__(
        self, width: int = 64, hidden: int = 0, init: str = "xavier", channels: int = 1
    ) -> None:
        super().__init__()
        self.init, self.width = init, width
        self.output_shape = (channels, 28, 28)  # 3: stacked MNIST's pair
        wide = 2 * width
        # hidden > 0: a Dense layer of that size (BatchNorm, ReLU) before the 7x7 one, as in the
        # MNIST pair of Lucic et al. 2018 (InfoGAN's: Dense 1024, Dense 7*7*128)
        head: list[nn.Module] = []
        if hidden:
            head += [nn.Linear(self.z_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        head += [
            nn.Linear(hidden or self.z_dim, wide * 7 * 7),
            nn.BatchNorm1d(wide * 7 * 7),
            nn.ReLU(),
        ]
        self.dense = nn.Sequential(*head)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(wide, width, 4, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),
            nn.Tanh(),
        )
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.dense(z).view(-1, 2 * self.width, 7, 7))


class LiteDiscriminator(ConvFeaturesHead):
    """(1,28,28) -> Conv w 4x4 s2 LReLU -> Conv 2w 4x4 s2 [norm] LReLU -> flatten ->
    [Dense hidden [norm] LReLU] -> Dense 1.

    ``norm``: ``"none"``, ``"bn"`` (BatchNorm after the second conv, Radford et al. 2016) or
    ``"sn"`` (spectral norm on every layer, Miyato et al. 2018).
    """

    def __init__(
        self,
        width: int = 64,
        norm: str = "bn",
        hidden: int = 0,
        init: str = "xavier",
        channels: int = 1,
    ) -> None:
        super().__init__()
        if norm not in D_NORMS:
            raise ValueError(f"Unknown norm {norm!r}. Available: {', '.join(D_NORMS)}")
        self.init, self.norm = init, norm
        wide = 2 * width
        layers: list[nn.Module] = [
            nn.Conv2d(channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, wide, 4, stride=2, padding=1),
        ]
        if norm == "bn":
            layers.append(nn.BatchNorm2d(wide))
        layers.append(nn.LeakyReLU(0.2))
        self.conv = nn.Sequential(*layers)
        # hidden > 0: a Dense layer of that size ([norm], LeakyReLU) before the logit (Lucic et
        # al. 2018's MNIST D); feature matching still matches the conv features
        if hidden:
            dense: list[nn.Module] = [nn.Linear(wide * 7 * 7, hidden)]
            if norm == "bn":
                dense.append(nn.BatchNorm1d(hidden))
            self.fc = nn.Sequential(*dense, nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        else:
            self.fc = nn.Linear(wide * 7 * 7, 1)
        init_weights(self, init)  # before spectral norm, which then wraps the initial weights
        if norm == "sn":  # every conv and linear layer, wherever it sits
            for layer in list(self.modules()):
                if isinstance(layer, nn.Conv2d | nn.Linear):
                    spectral_norm(layer)


def _variant(base: type, name: str, doc: str, setup: dict | None = None, **fixed) -> type:
    """A subclass of ``base`` with some constructor arguments fixed (one registered pair);
    ``setup`` overrides class attributes of the pair's recommended setup (``default_steps``,
    ``loss_hyperparams``, ...; models.PairDefaults)."""

    def __init__(self, init: str = "xavier") -> None:
        base.__init__(self, init=init, **fixed)

    return type(name, (base,), {"__init__": __init__, "__doc__": doc, **(setup or {})})


# dcgan-lite with a Dense 1024 layer in G and in D: G's arguments, D's arguments
DENSE = ({"width": 32, "hidden": 1024}, {"width": 32, "hidden": 1024})

# name -> (G's arguments, D's arguments). dcgan-lite-dense-ttur is the MNIST default; the others are
# the ablation's levers and the long budget's pair (docs/ablation-lite.md)
PAIRS: dict[str, tuple[dict, dict]] = {
    "dcgan-lite": ({"width": 32}, {"width": 32, "norm": "bn"}),
    "dcgan-lite-nonorm": ({"width": 32}, {"width": 32, "norm": "none"}),
    "dcgan-lite-sn": ({"width": 32}, {"width": 32, "norm": "sn"}),
    "dcgan-lite-wide": ({"width": 64}, {"width": 64, "norm": "bn"}),
    "dcgan-lite-dense": DENSE,
    # ... with the Dense layer in G only (D is dcgan-lite's)
    "dcgan-lite-gdense": ({"width": 32, "hidden": 1024}, {"width": 32, "norm": "bn"}),
    # Lucic et al. 2018's MNIST pair: the wide pair with a Dense 1024 layer in G and in D
    "dcgan-lite-lucic": ({"width": 64, "hidden": 1024}, {"width": 64, "hidden": 1024}),
    # dcgan-lite-dense with its own setup (SETUPS below): the MNIST default
    "dcgan-lite-dense-ttur": DENSE,
    # ... with three channels in and out, the same setup: the stacked-mnist default
    "dcgan-lite-dense-ttur-rgb": tuple({**half, "channels": 3} for half in DENSE),
}

# name -> the pair's own setup, where it differs from LiteGenerator's (class attributes of G).
# dcgan-lite-dense-ttur: D learns 5x slower than G (two time-scale learning rates, Heusel et al.
# 2017, the other way round from their usual choice), for 2400 steps; why, and what it measured,
# in docs/ablation-lite.md (Stage 4) and docs/findings.md, where the numbers carry their dates
TTUR_SETUP = {
    "default_steps": 2400,
    "loss_hyperparams": {"optimizer:adam": {**LITE_ADAM, "lr_d": 2e-4}},
}
SETUPS: dict[str, dict] = {
    # the MNIST default, with the equal-tuning study's best settings for --defaults tuned
    "dcgan-lite-dense-ttur": {**TTUR_SETUP, **TUNED_SETUP},
    "dcgan-lite-dense-ttur-rgb": TTUR_SETUP,
}


def _described(kwargs: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in kwargs.items())


GENERATORS = {
    name: _variant(
        LiteGenerator,
        f"Generator[{name}]",
        f"{name}: LiteGenerator, {_described(g)}.",
        setup=SETUPS.get(name),
        **g,
    )
    for name, (g, _) in PAIRS.items()
}
DISCRIMINATORS = {
    name: _variant(
        LiteDiscriminator,
        f"Discriminator[{name}]",
        f"{name}: LiteDiscriminator, {_described(d)}.",
        **d,
    )
    for name, (_, d) in PAIRS.items()
}


@hookimpl
def register_generators(register):
    for name, factory in GENERATORS.items():
        register(name, factory)


@hookimpl
def register_discriminators(register):
    for name, factory in DISCRIMINATORS.items():
        register(name, factory)
