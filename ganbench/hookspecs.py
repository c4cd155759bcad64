"""The whole extension surface of ganbench.

A plugin is a module (or object) with functions decorated by ``ganbench.hookimpl`` whose names
match the hook specifications below. Built-in plugins (``ganbench.default_plugins``) and installed
plugin distributions (entry-point group ``"ganbench"``) register through the same hooks.

Every hook receives a ``register(name, factory)`` callback. ``name`` is the public name users type
(``ganbench run --loss NAME``); ``factory`` is a zero-argument callable that builds a *fresh*
object on every call, so each benchmark cell gets its own models, losses and data sources.
A name registered twice (by any plugins) is an error that names both providers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ganbench")
hookimpl = pluggy.HookimplMarker("ganbench")

Register = Callable[[str, Callable[[], Any]], None]


@hookspec
def register_losses(register: Register) -> None:
    """Register GAN objectives.

    Call ``register(name, factory)`` once per objective. ``factory()`` must return a
    :class:`ganbench.losses.Loss` instance. A loss only *scores*: it receives the discriminator
    module and the batches and returns scalar tensors; the trainer owns optimisers, ``zero_grad``,
    ``backward`` and ``step``. A loss declares its paper's defaults through
    :class:`ganbench.losses.Hyperparams` (optimiser, learning rates, betas, ``n_critic``, extras
    such as a clip value); the command line can override any of them.

    :param register: ``register(name: str, factory: Callable[[], Loss]) -> None``.
    :return: nothing; the return value is ignored.

    Example::

        @hookimpl
        def register_losses(register):
            register("hinge", HingeLoss)
    """


@hookspec
def register_generators(register: Register) -> None:
    """Register generator networks.

    ``factory()`` must return a :class:`torch.nn.Module` with the attributes ``z_dim`` (int: the
    noise dimension; the trainer samples ``z ~ N(0, I)`` of shape ``(batch, z_dim)``),
    ``output_shape`` (tuple: the shape of one sample, e.g. ``(1, 28, 28)``) and ``output_range``
    (``(low, high)``: the value range of its output, e.g. ``(0.0, 1.0)`` for a sigmoid or
    ``(-1.0, 1.0)`` for tanh; the trainer scales real data into this range and maps samples back
    to the dataset's ``[0, 1]`` range for evaluation; ``None`` for a generator working in the
    data's own units, e.g. 2-D points, which are then never scaled). ``forward(z)`` returns a
    batch of samples.

    Optionally ``loss_hyperparams``: per-objective defaults for this model, a dict to
    :class:`ganbench.losses.Hyperparams` fields keyed by ``"*"`` (every loss),
    ``"optimizer:<name>"`` (every loss whose default optimiser is ``<name>``, plugin losses
    included) or a loss name, applied in that order, e.g. ``{"optimizer:adam": {"lr_g": 1e-3},
    "wgan": {"lr_d": 1e-3}}``. They apply over the loss's paper defaults and under a search's
    draws and command-line overrides. Optionally ``search_space``: narrower ranges for
    ``ganbench search`` on this model (:mod:`ganbench.search_space`). Optionally ``loss_steps``:
    a dict from loss name to the generator steps that objective needs on this model; a run
    without ``--steps`` that includes it gives every cell the largest such budget (equal terms).
    Optionally the model's recommended setup, used where the command line gives none:
    ``default_steps`` (over the dataset's), ``batch_size`` (else 128), ``ema_decay`` (the EMA
    generator's decay, else 0.999; 0: none) and ``reuse_fake`` (bool: the G step reuses the D
    step's fake batch). Optionally ``cpu_threads``
    (int): the intra-op CPU threads to train with (tiny models are fastest on one); default all.

    :param register: ``register(name: str, factory: Callable[[], nn.Module]) -> None``.
    :return: nothing; the return value is ignored.

    Example::

        @hookimpl
        def register_generators(register):
            register("my-generator", MyGenerator)
    """


@hookspec
def register_discriminators(register: Register) -> None:
    """Register discriminator (critic) networks.

    ``factory()`` must return a :class:`torch.nn.Module` whose ``forward(x)`` returns one raw
    score per sample, shape ``(batch,)`` -- a *logit*, never a probability: logistic losses apply
    ``softplus``/``logsigmoid`` themselves and WGAN uses the raw score. It must also provide
    ``features(x)`` returning an intermediate representation ``(batch, n_features)`` (used by
    feature matching) and ``head(features)`` mapping those features to the logits, so that
    ``forward(x) == head(features(x))``.

    :param register: ``register(name: str, factory: Callable[[], nn.Module]) -> None``.
    :return: nothing; the return value is ignored.

    Example::

        @hookimpl
        def register_discriminators(register):
            register("my-critic", MyCritic)
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register training datasets.

    ``factory()`` must return a :class:`ganbench.datasets.Dataset`: it knows the shape of one
    sample, builds a seeded batch sampler (images: floats in ``[0, 1]``; other data in its own
    units), names its default model pair and step budget, draws the per-cell picture, and
    declares how generated samples are evaluated: ``make_evaluator`` returns a
    :class:`ganbench.datasets.Evaluator`, so a dataset plugin brings its own metrics.

    :param register: ``register(name: str, factory: Callable[[], Dataset]) -> None``.
    :return: nothing; the return value is ignored.

    Example::

        @hookimpl
        def register_datasets(register):
            register("fashion-mnist", FashionMnist)
    """
