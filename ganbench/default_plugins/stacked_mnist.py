"""The ``stacked-mnist`` dataset (1000 modes, image space) and Metz et al.'s small-discriminator
pairs it is tested on.

Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN) puts three MNIST digits in the three channels
of one 28x28 image, so a model that drops modes shows it in image space, where the 2-D rings
show it in the plane. The data, the mode labels and the evaluator are in
:mod:`ganbench.default_plugins.mnist.stacked`; the protocol and its published anchors in
docs/stacked-mnist.md.

The pairs are Metz et al.'s small-discriminator DCGAN as PacGAN's code builds it
(``fjxmlzn/PacGAN``, ``stacked_MNIST_experiments/unrolled_GAN_experiment``, ``model.py``):

- G: z (256, N(0, I)) -> Linear 4*4*64 -> BN ReLU -> ConvT 32 3x3 s2 (7x7) -> BN ReLU -> ConvT 16
  3x3 s2 (14x14) -> BN ReLU -> ConvT 8 3x3 s2 (28x28) -> BN ReLU -> Conv 3 3x3 s1 -> tanh;
- D: Conv 3x3 s2 -> BN -> LeakyReLU 0.3, three times, with 2/4/8 filters (``metz-small-d``, D at
  about 1/4 of G's size) or 4/8/16 (``metz-half-d``, 1/2), -> Linear 1 (a logit);
- weights as DCGAN-tensorflow's ``ops.py`` (``--init dcgan-tf``: N(0, 0.02), truncated at 2
  standard deviations in the conv layers), biases 0; Adam D 2e-4, G 1e-4, betas (0.5, 0.99),
  batch 128 (``config.py``) for every Adam objective; the G step reuses the D step's noise (and
  so its fake batch), as PacGAN's training loop feeds both steps the same z.

PacGAN trains them 500,000 steps; ganbench's default budget here is far smaller (docs say by how
much). The dataset's default pair is the MNIST default pair with three channels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganbench.datasets import EvalOptions, Evaluator, ImageTensorDataset
from ganbench.default_plugins.mnist.backbones import DEFAULT_BACKBONE
from ganbench.hookspecs import hookimpl
from ganbench.models import ConvFeaturesHead, init_weights

# PacGAN's config.py for Metz et al.'s setting (both D sizes)
METZ_ADAM = {
    "optimizer_g": "adam",
    "optimizer_d": "adam",
    "lr_g": 1e-4,
    "lr_d": 2e-4,
    "beta1": 0.5,
    "beta2": 0.99,
}
METZ_D_FILTERS = {"metz-small-d": (2, 4, 8), "metz-half-d": (4, 8, 16)}


class StackedMnist(ImageTensorDataset):
    """Three MNIST training digits per image, one per channel, drawn independently and
    uniformly on the fly from the seeded generator (3, 28, 28); 1000 modes."""

    sample_shape = (3, 28, 28)
    default_model = "dcgan-lite-dense-ttur-rgb"
    default_steps = 300  # pairs that declare no budget of their own; the default pair: 2400
    headline_metric = "mode_kl"
    mode_samples = 25600  # Metz et al. 2017, PacGAN: samples the mode metrics count
    backbones = (DEFAULT_BACKBONE,)  # the classifier labels each channel

    def load(self, data_dir: Path | None = None) -> None:
        if self.train_images is not None:
            return
        from ganbench.default_plugins.mnist.data import load_mnist

        self.arrays = load_mnist(data_dir)
        self.train_images = self.arrays.train_images
        self.source = f"stacked from {self.arrays.source}"
        self.data_id = self.arrays.checksum

    def __len__(self) -> int:
        """An epoch's images (``--epochs``): as many as training digits. (Batches are drawn
        afresh, so no image is "seen"; (training digits) ** 3 distinct ones exist, and an epoch
        of those, ~1.7e12 steps, would mean nothing.)"""
        assert self.train_images is not None, "call load() first"
        return len(self.train_images)

    def sampler(
        self, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> Callable[[], Tensor]:
        from ganbench.default_plugins.mnist.stacked import stack_digits

        assert self.train_images is not None, "call load() first"
        if device not in self._on_device:  # uint8 on the device, as ImageTensorDataset keeps it
            self._on_device[device] = self.train_images.to(device)
        images = self._on_device[device]

        def next_batch() -> Tensor:
            return stack_digits(images, batch_size, generator).float().div_(255.0)

        return next_batch

    def make_evaluator(self, options: EvalOptions) -> Evaluator | None:
        from ganbench.default_plugins.mnist.backbones import load_classifier
        from ganbench.default_plugins.mnist.stacked import StackedMnistEvaluator
        from ganbench.files import cache_dir

        a = self.arrays
        classifier = load_classifier(
            a.train_images, a.train_labels, a.test_images, a.test_labels,
            data_checksum=a.checksum, directory=cache_dir(), device=options.device,
        )  # fmt: skip
        return StackedMnistEvaluator(
            classifier,
            a.train_images,
            a.test_images,
            n_samples=options.mode_samples or self.mode_samples,
            fid_samples=options.fid_samples,
            device=options.device,
            backbone=DEFAULT_BACKBONE,
        )


class MetzGenerator(nn.Module):
    """Metz et al.'s small DCGAN generator for stacked MNIST (module docstring): z (256) ->
    (3, 28, 28) in [-1, 1]."""

    z_dim = 256
    output_shape = (3, 28, 28)
    output_range = (-1.0, 1.0)
    batch_size = 128
    default_steps = 5000
    ema_decay = 0.0  # none: the paper setting has no EMA generator
    # the G step reuses the D step's fake (PacGAN feeds both steps the same z, G unchanged between)
    reuse_fake = True
    init = "dcgan-tf"  # DCGAN-tensorflow's initialisers, as PacGAN's code (models.init_weights)
    loss_hyperparams = {"optimizer:adam": METZ_ADAM}

    def __init__(self, init: str = "dcgan-tf") -> None:
        super().__init__()
        self.dense = nn.Linear(self.z_dim, 4 * 4 * 64)
        self.deconv = nn.Sequential(
            nn.BatchNorm2d(64),  # on the 4x4x64 map, per channel (PacGAN's g_bn0)
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1),  # 4 -> 7
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),  # 7 -> 14
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),  # 14 -> 28
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 3, 3, padding=1),
            nn.Tanh(),
        )
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.dense(z).view(-1, 64, 4, 4))


class MetzDiscriminator(ConvFeaturesHead):
    """Metz et al.'s small discriminator: three Conv 3x3 s2 -> BN -> LeakyReLU 0.3 with
    ``filters`` channels (28 -> 14 -> 7 -> 4), flatten (the features), Linear 1."""

    def __init__(self, filters: tuple[int, int, int], init: str = "dcgan-tf") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in filters:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.3),
            ]
            channels = width
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(channels * 4 * 4, 1)
        init_weights(self, init)


def _discriminator(name: str) -> type:
    filters = METZ_D_FILTERS[name]

    def __init__(self, init: str = "dcgan-tf") -> None:
        MetzDiscriminator.__init__(self, filters, init=init)

    doc = f"{name}: MetzDiscriminator with {'/'.join(map(str, filters))} filters."
    attributes = {"__init__": __init__, "__doc__": doc}
    return type(f"Discriminator[{name}]", (MetzDiscriminator,), attributes)


DISCRIMINATORS = {name: _discriminator(name) for name in METZ_D_FILTERS}


@hookimpl
def register_datasets(register):
    register("stacked-mnist", StackedMnist)


@hookimpl
def register_generators(register):
    for name in METZ_D_FILTERS:  # one generator, registered under each pair's name
        register(name, MetzGenerator)


@hookimpl
def register_discriminators(register):
    for name, factory in DISCRIMINATORS.items():
        register(name, factory)
