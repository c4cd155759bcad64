"""The model contract (:class:`Generator`, :class:`Discriminator`, the optional
:class:`PairDefaults` a generator class may recommend) and helpers shared by model plugins:
weight initialisation schemes, a conv discriminator base."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

INIT_SCHEMES = ("xavier", "he", "normal", "dcgan-tf")


@runtime_checkable
class Generator(Protocol):
    """What ``register_generators`` factories return: an ``nn.Module`` mapping noise
    ``z ~ N(0, I)`` of shape ``(batch, z_dim)`` to samples ``(batch, *output_shape)``.

    ``output_range`` is ``(low, high)`` of the output (``(0, 1)`` for a sigmoid, ``(-1, 1)`` for
    tanh; the trainer maps real data into it for D and samples back to ``[0, 1]`` to score
    them), or ``None`` for a generator working in the data's own units (the 2-D mixtures).
    Recommendations for its pair are optional class attributes, read by :func:`pair_defaults`.
    """

    z_dim: int
    output_shape: tuple[int, ...]
    output_range: tuple[float, float] | None

    def __call__(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    """What ``register_discriminators`` factories return: an ``nn.Module`` giving one score (a
    logit, or a critic value) per sample, shape ``(batch,)``. Feature matching also needs
    ``features(x)`` (the layer it matches) and ``head(features)`` (the rest of D)."""

    def __call__(self, x: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class PairDefaults:
    """What a generator class recommends for its pair, as optional class attributes of the
    same names (docs/plugins.md); ``None`` where it recommends nothing.

    ``loss_hyperparams``: per-loss hyperparameter defaults (``{"wgan": {"lr_d": 1e-4}}``),
    applied between the loss's and the command line's; ``loss_steps``: the steps an objective
    needs on this pair; ``default_steps``, ``batch_size``, ``ema_decay``, ``reuse_fake``: the
    setup a run without those options gets; ``init``: the initialisation its constructor
    applies (recorded in rows); ``cpu_threads``: torch threads to train it with on a CPU;
    ``search_space``: ranges ``ganbench search`` draws from on this pair, each within the
    shared one (a pair may narrow the space, the same for every loss); ``tuned_hyperparams``,
    ``tuned_by``, ``tuned_step_unit``: what ``--defaults tuned`` gives each loss the study
    ``tuned_by`` tuned on this pair, and the budget unit it tuned them at.
    """

    loss_hyperparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    loss_steps: Mapping[str, int] = field(default_factory=dict)
    default_steps: int | None = None
    batch_size: int | None = None
    ema_decay: float | None = None
    reuse_fake: bool | None = None
    init: str = ""
    cpu_threads: int | None = None
    # ``ganbench search``: narrower ranges on this pair (ganbench.search_space), for every loss
    search_space: Mapping[str, Any] = field(default_factory=dict)
    # ``--defaults tuned``: per-loss settings a committed search study found best on this pair,
    # that study (its folder, named in every row's hp_sources) and the unit its budget counted
    tuned_hyperparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tuned_by: str = ""
    tuned_step_unit: str = ""


def model_class(factory: Callable[[], Any]) -> type:
    """The class a registry factory builds: the factory itself when it is a class (or a
    ``functools.partial`` of one), else the type of one object it builds (cached)."""
    if isinstance(factory, type):
        return factory
    if isinstance(factory, functools.partial) and isinstance(factory.func, type):
        return factory.func
    return _built_type(factory)


@functools.lru_cache(maxsize=64)
def _built_type(factory: Callable[[], Any]) -> type:
    return type(factory())


def pair_defaults(generator: type | nn.Module) -> PairDefaults:
    """The :class:`PairDefaults` a generator (class or instance) declares."""
    declared = {
        f.name: getattr(generator, f.name)
        for f in dataclasses.fields(PairDefaults)
        if getattr(generator, f.name, None) is not None
    }
    return PairDefaults(**declared)


class ConvFeaturesHead(nn.Module):
    """A discriminator of the form ``self.conv`` -> flatten (the features feature matching
    uses) -> ``self.fc`` -> one logit per sample; subclasses build ``conv`` and ``fc``."""

    conv: nn.Module
    fc: nn.Module

    def features(self, x: Tensor) -> Tensor:
        return torch.flatten(self.conv(x), 1)

    def head(self, features: Tensor) -> Tensor:
        return self.fc(features).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise every conv and linear layer of ``module``; biases to zero.

    ``xavier``: Glorot uniform (Keras' default, so the article's models start as in Keras).
    ``he``: Kaiming uniform for ReLU-family activations (He et al. 2015).
    ``normal``: N(0, 0.02), DCGAN's (Radford et al. 2016; the PyTorch DCGAN example).
    ``dcgan-tf``: as DCGAN-tensorflow's ``ops.py`` (which PacGAN's Stacked MNIST code uses):
    N(0, 0.02) for linear and transposed conv layers, N(0, 0.02) truncated at 2 standard
    deviations (TF's ``truncated_normal_initializer``) for conv layers.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"Unknown init {scheme!r}. Available: {', '.join(INIT_SCHEMES)}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "dcgan-tf" and type(m) is nn.Conv2d:
                nn.init.trunc_normal_(m.weight, 0.0, 0.02, a=-0.04, b=0.04)
            elif scheme in ("normal", "dcgan-tf"):
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
