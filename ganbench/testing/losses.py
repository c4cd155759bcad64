"""The conformance kit's loss checks: :func:`check_loss` (a loss against the loss contract) and
:func:`check_loss_steps` (one D and one G step, which ``ganbench run`` also calls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ganbench.losses import Hyperparams, Loss
from ganbench.testing.models import TinyDiscriminator, TinyGenerator
from ganbench.testing.support import (
    Spec,
    build,
    call,
    fail,
    gradient_state,
    noise,
    one_thread,
    resolve,
)
from ganbench.trainer import TrainConfig, from_unit, train


def _check_scalar(label: str, method: str, value: Any) -> None:
    if not isinstance(value, Tensor):
        raise fail(label, f"{method} must return a tensor, got {type(value).__name__}")
    if value.shape != ():
        raise fail(
            label,
            f"{method} must return a scalar tensor (shape ()), got shape {tuple(value.shape)}; "
            "reduce over the batch, e.g. with .mean()",
        )
    if not value.is_floating_point():
        raise fail(label, f"{method} must return a floating-point tensor, got {value.dtype}")
    if not torch.isfinite(value):
        raise fail(label, f"{method} returned {value.item()} on finite inputs; it must be finite")


def _snapshot(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _unchanged(module: nn.Module, before: list[Tensor]) -> bool:
    return all(torch.equal(p.detach(), b) for p, b in zip(module.parameters(), before, strict=True))


def _real_batch(G: nn.Module, batch_size: int, seed: int) -> Tensor:
    """Data as the trainer hands it to a loss: uniform in [0, 1], mapped into G's range."""
    g = torch.Generator().manual_seed(seed + 1)
    return from_unit(torch.rand((batch_size, *G.output_shape), generator=g), G.output_range)


def _models(generator: Spec | None, discriminator: Spec | None, seed: int):
    """Fresh, seeded (G, D): the kit's tiny pair, or the given ones (D defaults to G's pair)."""
    torch.manual_seed(seed)
    if generator is None:
        if discriminator is not None:
            raise TypeError("give generator= too when giving discriminator=")
        return TinyGenerator(), TinyDiscriminator()
    if discriminator is None:
        if not isinstance(generator, str):
            raise TypeError("give discriminator= too when generator= is a factory")
        discriminator = generator
    return resolve("generator", generator)[0](), resolve("discriminator", discriminator)[0]()


@one_thread
def check_loss(
    loss: Spec,
    *,
    generator: Spec | None = None,
    discriminator: Spec | None = None,
    steps: int = 3,
    batch_size: int = 8,
    precision: str = "fp32",
    seed: int = 0,
) -> None:
    """Check a loss (``register_losses``) against the loss contract.

    :param loss: a registered loss name, or a zero-argument factory (e.g. the :class:`Loss`
        subclass).
    :param generator: the generator to check with (name or factory); default: the kit's
        :class:`TinyGenerator` with :class:`TinyDiscriminator`.
    :param discriminator: default: the pair of ``generator`` (the same name).
    :param steps: generator steps of the short training run.
    :param precision: ``"fp32"`` or ``"bf16"`` (autocast) for the training run.
    :raises AssertionError: naming the loss and what is wrong.

    What is checked:

    - ``factory()`` returns a fresh :class:`~ganbench.losses.Loss` on every call;
    - ``defaults`` is a :class:`~ganbench.losses.Hyperparams` with valid values
      (:meth:`~ganbench.losses.Hyperparams.problems`: known optimisers, learning rates > 0,
      betas in [0, 1), ``n_critic`` >= 1, numeric extras);
    - the D step, as the trainer runs it (``fake`` generated under ``no_grad``):
      ``d_loss(D, real, fake)`` is a finite floating-point scalar that depends on D's
      parameters and on both batches; its gradient reaches D (non-zero, finite) and never G;
      it changes neither its inputs nor any parameter (a loss only scores); ``after_d_step(D)``
      runs and leaves D's parameters finite;
    - the G step, as the trainer runs it (D frozen with ``requires_grad_(False)``, ``fake``
      carrying G's graph): ``g_loss(D, real, fake)`` is a finite scalar whose gradient reaches
      G (non-zero, finite) and no parameter of D, and it changes no parameter;
    - ``steps`` generator steps of :func:`ganbench.trainer.train` (``n_critic`` D steps each,
      the loss's own optimiser defaults) finish with status ``ok`` (finite losses);
    - its search space (``search_space``, for ``ganbench search``) adds only keys of its
      ``defaults.extras``, each a :class:`ganbench.search_space.Distribution`, and draws from the
      whole space (the shared one with its extras) are valid hyperparameters.
    """
    factory, label = resolve("loss", loss)
    obj = build(factory, label, Loss, "a ganbench.losses.Loss")
    hp = obj.defaults
    if not isinstance(hp, Hyperparams):
        raise fail(label, f"defaults must be a Hyperparams, got {type(hp).__name__}")
    problems = hp.problems()
    if problems:
        raise fail(label, "invalid defaults: " + "; ".join(problems))
    check_search_space(label, type(obj))
    obj.hp = hp
    G, D = _models(generator, discriminator, seed)
    real = _real_batch(G, batch_size, seed)
    check_loss_steps(label, obj, G, D, real, seed)
    _check_training(label, factory, hp, generator, discriminator, steps, batch_size, precision)


def check_search_space(label: str, loss_class: type[Loss], draws: int = 20) -> None:
    """A loss's ``search_space`` against the search contract (see :func:`check_loss`)."""
    from ganbench.search_space import Distribution, as_overrides, compose, draw

    space = loss_class.search_space
    extras = dict(loss_class.defaults.extras)
    for key, dist in dict(space).items():
        if key not in extras:
            raise fail(
                label,
                f"search_space key {key!r} is not one of its defaults.extras "
                f"({', '.join(extras) or 'none'}); the shared space covers the optimiser, "
                "learning rates, betas and n_critic",
            )
        if not isinstance(dist, Distribution):
            raise fail(label, f"search_space[{key!r}] must be a Distribution, got {dist!r}")
    try:
        full = compose(space)
    except Exception as exc:
        raise fail(label, f"search_space does not compose with the shared space: {exc}") from None
    for trial in range(draws):
        drawn = as_overrides(draw(full, 0, label, trial))
        problems = loss_class.defaults.replace(**drawn).problems()
        if problems:
            raise fail(label, f"search draw {trial} is invalid: {'; '.join(problems)}")


def check_loss_steps(
    label: str, loss: Loss, G: nn.Module, D: nn.Module, real: Tensor, seed: int = 0
) -> None:
    """One D step and one G step of ``loss`` (its ``hp`` set) on ``G``, ``D`` and a ``real``
    batch, as the trainer runs them, with :func:`check_loss`'s checks (a finite scalar with a
    gradient to the right model only, nothing changed in place). ``ganbench run`` calls this on a
    tiny batch before any training. Raises AssertionError ``"<label>: <what is wrong>"``."""
    _check_d_step(label, loss, G, D, real, seed)
    _check_g_step(label, loss, G, D, real, seed)


def _check_d_step(label: str, loss: Loss, G: nn.Module, D: nn.Module, real: Tensor, seed: int):
    with torch.no_grad():
        fake = G(noise(G, real.shape[0], seed))
    real_copy, fake_copy = real.clone(), fake.clone()
    d_before, g_before = _snapshot(D), _snapshot(G)
    value = call(label, "d_loss", loss.d_loss, D, real, fake)
    _check_scalar(label, "d_loss", value)
    if not value.requires_grad:
        raise fail(
            label,
            "d_loss does not depend on the discriminator's parameters (its result has no "
            "gradient; is D's output detached?)",
        )
    if not torch.equal(real, real_copy) or not torch.equal(fake, fake_copy):
        raise fail(label, "d_loss modified its real or fake batch in place")
    if not _unchanged(D, d_before) or not _unchanged(G, g_before):
        raise fail(
            label,
            "d_loss changed model parameters; a loss only scores (the trainer steps optimisers)",
        )
    D.zero_grad(set_to_none=True)
    G.zero_grad(set_to_none=True)
    call(label, "d_loss(...).backward()", value.backward)
    nonzero, bad = gradient_state(D)
    if bad:
        raise fail(label, f"d_loss gives a non-finite gradient to the discriminator ({bad})")
    if not nonzero:
        raise fail(label, "d_loss sends no gradient to the discriminator's parameters")
    if any(p.grad is not None for p in G.parameters()):
        raise fail(label, "d_loss sends gradient to the generator; the D loss must train D only")

    # Does it look at both batches? (Inputs as leaves, so autograd can tell.)
    real_leaf = real.clone().requires_grad_(True)
    fake_leaf = fake.clone().requires_grad_(True)
    value = call(label, "d_loss", loss.d_loss, D, real_leaf, fake_leaf)
    used = torch.autograd.grad(value, [real_leaf, fake_leaf], allow_unused=True)
    for batch, grad in zip(("real", "fake"), used, strict=True):
        if grad is None:
            raise fail(label, f"d_loss does not use the {batch} batch")

    call(label, "after_d_step", loss.after_d_step, D)
    if not all(torch.isfinite(p).all() for p in D.parameters()):
        raise fail(label, "after_d_step left non-finite discriminator parameters")
    D.zero_grad(set_to_none=True)


def _check_g_step(label: str, loss: Loss, G: nn.Module, D: nn.Module, real: Tensor, seed: int):
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    D.requires_grad_(False)  # the trainer freezes D during the G step
    try:
        fake = G(noise(G, real.shape[0], seed + 2))
        d_before, g_before = _snapshot(D), _snapshot(G)
        value = call(label, "g_loss", loss.g_loss, D, real, fake)
        _check_scalar(label, "g_loss", value)
        if not value.requires_grad:
            raise fail(
                label,
                "g_loss sends no gradient to the generator (its result has no gradient; "
                "is `fake` detached?)",
            )
        if not _unchanged(D, d_before) or not _unchanged(G, g_before):
            raise fail(
                label,
                "g_loss changed model parameters; a loss only scores (the trainer steps "
                "optimisers)",
            )
        call(label, "g_loss(...).backward()", value.backward)
    finally:
        D.requires_grad_(True)
    nonzero, bad = gradient_state(G)
    if bad:
        raise fail(label, f"g_loss gives a non-finite gradient to the generator ({bad})")
    if not nonzero:
        raise fail(
            label, "g_loss sends no gradient to the generator's parameters (is `fake` detached?)"
        )
    if any(p.grad is not None for p in D.parameters()):
        raise fail(
            label,
            "g_loss sends gradient to the discriminator's parameters; the trainer freezes D "
            "during the G step and the G loss must train G only",
        )
    G.zero_grad(set_to_none=True)


def _check_training(
    label: str,
    factory: Callable[[], Any],
    hp: Hyperparams,
    generator: Spec | None,
    discriminator: Spec | None,
    steps: int,
    batch_size: int,
    precision: str,
) -> None:
    G, D = _models(generator, discriminator, seed=1)
    pool = torch.rand((4 * batch_size, *G.output_shape), generator=torch.Generator().manual_seed(1))
    picks = torch.Generator().manual_seed(2)

    def next_batch() -> Tensor:
        return pool[torch.randint(0, len(pool), (batch_size,), generator=picks)]

    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        seed=0,
        hp=hp,
        precision=precision,
        log_every=1,
        warmup=0,
        progress=False,
    )
    result = call(label, "training", train, G, D, factory(), next_batch, config)
    if result.status != "ok":
        raise fail(
            label,
            f"training diverged at generator step {result.diverged_at} of {steps} "
            "(non-finite D or G loss)",
        )
