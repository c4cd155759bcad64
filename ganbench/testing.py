"""The conformance kit: checks a plugin author calls from the plugin's own tests.

Each check builds fresh objects through the plugin's factory, exercises them the way ganbench's
trainer does, on tiny models and data (well under a second), and raises :class:`AssertionError`
with a message that names the object and says what is wrong. ganbench runs the same checks over
every registered loss, model and dataset in its own test suite. Example (a plugin's
``tests/test_my_loss.py``)::

    import pytest
    from ganbench.testing import check_loss, plugins_loaded

    @pytest.fixture(autouse=True)
    def only_this_plugin():
        with plugins_loaded("ganbench-my-loss"):  # built-ins + this distribution only
            yield

    def test_conforms():
        check_loss("my-loss")                          # on the kit's tiny model pair
        check_loss("my-loss", generator="dcgan-mnist")  # and on a registered pair

Every ``check_*`` function takes either a registered name (looked up with
:func:`ganbench.registry.get`, so it also proves the plugin is installed and registered) or a
zero-argument factory such as the class itself (no installation needed).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganbench import plugins, registry
from ganbench.datasets import Dataset
from ganbench.losses import Hyperparams, Loss
from ganbench.models import ConvFeaturesHead
from ganbench.trainer import TrainConfig, from_unit, train

__all__ = [
    "TinyDiscriminator",
    "TinyGenerator",
    "check_dataset",
    "check_discriminator",
    "check_generator",
    "check_loss",
    "check_model_pair",
    "plugins_loaded",
]

Spec = str | Callable[[], Any]  # a registered name or a zero-argument factory


# ---- the kit's tiny model pair ---------------------------------------------------------------


class TinyGenerator(nn.Module):
    """A tiny generator for the checks: z (8) -> Linear 32 ReLU -> Linear 64 sigmoid -> (1, 8, 8).

    Its output lies in ``[0, 1]`` (``output_range``); it follows the ``register_generators``
    contract, so the kit checks itself with it.
    """

    z_dim = 8
    output_shape = (1, 8, 8)
    output_range = (0.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 64), nn.Sigmoid())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.output_shape)


class TinyDiscriminator(ConvFeaturesHead):
    """A tiny critic for (1, 8, 8) samples: Conv 4 3x3 s2 -> LeakyReLU 0.2 -> flatten (64
    features) -> Linear 1 (a logit). Follows the ``register_discriminators`` contract."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.fc = nn.Linear(4 * 4 * 4, 1)


# ---- helpers ---------------------------------------------------------------------------------


def _one_thread(check: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``check`` on one intra-op thread: its tensors are tiny, and a thread pool only adds
    overhead (on a busy machine, 100x)."""

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


def _resolve(kind: str, spec: Spec) -> tuple[Callable[[], Any], str]:
    """A factory and the label that error messages start with."""
    if isinstance(spec, str):
        return registry.get(kind, spec).factory, f"{kind} {spec!r}"
    if isinstance(spec, nn.Module | Loss | Dataset) or not callable(spec):
        raise TypeError(
            f"pass a registered {kind} name or a zero-argument factory (e.g. the class), "
            f"not {spec!r}"
        )
    return spec, f"{kind} {getattr(spec, '__qualname__', repr(spec))}"


def _fail(label: str, message: str) -> AssertionError:
    return AssertionError(f"{label}: {message}")


def _build(factory: Callable[[], Any], label: str, cls: type, what: str) -> Any:
    """Two objects from ``factory``: checks the type and that each call builds a fresh one."""
    try:
        first, second = factory(), factory()
    except Exception as exc:
        raise _fail(label, f"factory() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(first, cls):
        raise _fail(label, f"factory() must return {what}, got {type(first).__name__}")
    if first is second:
        raise _fail(label, "factory() must build a fresh object on every call, got the same one")
    if isinstance(first, nn.Module):
        shared = {id(p) for p in first.parameters()} & {id(p) for p in second.parameters()}
        if shared:
            raise _fail(label, "two factory() calls share parameters; each must build fresh ones")
    return first


def _call(label: str, method: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise _fail(label, f"{method} raised {type(exc).__name__}: {exc}") from exc


def _check_scalar(label: str, method: str, value: Any) -> None:
    if not isinstance(value, Tensor):
        raise _fail(label, f"{method} must return a tensor, got {type(value).__name__}")
    if value.shape != ():
        raise _fail(
            label,
            f"{method} must return a scalar tensor (shape ()), got shape {tuple(value.shape)}; "
            "reduce over the batch, e.g. with .mean()",
        )
    if not value.is_floating_point():
        raise _fail(label, f"{method} must return a floating-point tensor, got {value.dtype}")
    if not torch.isfinite(value):
        raise _fail(label, f"{method} returned {value.item()} on finite inputs; it must be finite")


def _snapshot(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _unchanged(module: nn.Module, before: list[Tensor]) -> bool:
    return all(torch.equal(p.detach(), b) for p, b in zip(module.parameters(), before, strict=True))


def _gradient_state(module: nn.Module) -> tuple[bool, str | None]:
    """(some parameter got a non-zero gradient, name of a parameter with a non-finite one)."""
    nonzero, bad = False, None
    for name, p in module.named_parameters():
        if p.grad is None:
            continue
        if not torch.isfinite(p.grad).all():
            bad = bad or name
        if p.grad.abs().sum() > 0:
            nonzero = True
    return nonzero, bad


def _noise(G: nn.Module, batch_size: int, seed: int) -> Tensor:
    return torch.randn((batch_size, G.z_dim), generator=torch.Generator().manual_seed(seed))


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
    return _resolve("generator", generator)[0](), _resolve("discriminator", discriminator)[0]()


# ---- losses ----------------------------------------------------------------------------------


@_one_thread
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
      the loss's own optimiser defaults) finish with status ``ok`` (finite losses).
    """
    factory, label = _resolve("loss", loss)
    obj = _build(factory, label, Loss, "a ganbench.losses.Loss")
    hp = obj.defaults
    if not isinstance(hp, Hyperparams):
        raise _fail(label, f"defaults must be a Hyperparams, got {type(hp).__name__}")
    problems = hp.problems()
    if problems:
        raise _fail(label, "invalid defaults: " + "; ".join(problems))
    obj.hp = hp
    G, D = _models(generator, discriminator, seed)
    real = _real_batch(G, batch_size, seed)
    check_loss_steps(label, obj, G, D, real, seed)
    _check_training(label, factory, hp, generator, discriminator, steps, batch_size, precision)


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
        fake = G(_noise(G, real.shape[0], seed))
    real_copy, fake_copy = real.clone(), fake.clone()
    d_before, g_before = _snapshot(D), _snapshot(G)
    value = _call(label, "d_loss", loss.d_loss, D, real, fake)
    _check_scalar(label, "d_loss", value)
    if not value.requires_grad:
        raise _fail(
            label,
            "d_loss does not depend on the discriminator's parameters (its result has no "
            "gradient; is D's output detached?)",
        )
    if not torch.equal(real, real_copy) or not torch.equal(fake, fake_copy):
        raise _fail(label, "d_loss modified its real or fake batch in place")
    if not _unchanged(D, d_before) or not _unchanged(G, g_before):
        raise _fail(
            label,
            "d_loss changed model parameters; a loss only scores (the trainer steps optimisers)",
        )
    D.zero_grad(set_to_none=True)
    G.zero_grad(set_to_none=True)
    _call(label, "d_loss(...).backward()", value.backward)
    nonzero, bad = _gradient_state(D)
    if bad:
        raise _fail(label, f"d_loss gives a non-finite gradient to the discriminator ({bad})")
    if not nonzero:
        raise _fail(label, "d_loss sends no gradient to the discriminator's parameters")
    if any(p.grad is not None for p in G.parameters()):
        raise _fail(label, "d_loss sends gradient to the generator; the D loss must train D only")

    # Does it look at both batches? (Inputs as leaves, so autograd can tell.)
    real_leaf = real.clone().requires_grad_(True)
    fake_leaf = fake.clone().requires_grad_(True)
    value = _call(label, "d_loss", loss.d_loss, D, real_leaf, fake_leaf)
    used = torch.autograd.grad(value, [real_leaf, fake_leaf], allow_unused=True)
    for batch, grad in zip(("real", "fake"), used, strict=True):
        if grad is None:
            raise _fail(label, f"d_loss does not use the {batch} batch")

    _call(label, "after_d_step", loss.after_d_step, D)
    if not all(torch.isfinite(p).all() for p in D.parameters()):
        raise _fail(label, "after_d_step left non-finite discriminator parameters")
    D.zero_grad(set_to_none=True)


def _check_g_step(label: str, loss: Loss, G: nn.Module, D: nn.Module, real: Tensor, seed: int):
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    D.requires_grad_(False)  # the trainer freezes D during the G step
    try:
        fake = G(_noise(G, real.shape[0], seed + 2))
        d_before, g_before = _snapshot(D), _snapshot(G)
        value = _call(label, "g_loss", loss.g_loss, D, real, fake)
        _check_scalar(label, "g_loss", value)
        if not value.requires_grad:
            raise _fail(
                label,
                "g_loss sends no gradient to the generator (its result has no gradient; "
                "is `fake` detached?)",
            )
        if not _unchanged(D, d_before) or not _unchanged(G, g_before):
            raise _fail(
                label,
                "g_loss changed model parameters; a loss only scores (the trainer steps "
                "optimisers)",
            )
        _call(label, "g_loss(...).backward()", value.backward)
    finally:
        D.requires_grad_(True)
    nonzero, bad = _gradient_state(G)
    if bad:
        raise _fail(label, f"g_loss gives a non-finite gradient to the generator ({bad})")
    if not nonzero:
        raise _fail(
            label, "g_loss sends no gradient to the generator's parameters (is `fake` detached?)"
        )
    if any(p.grad is not None for p in D.parameters()):
        raise _fail(
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
    result = _call(label, "training", train, G, D, factory(), next_batch, config)
    if result.status != "ok":
        raise _fail(
            label,
            f"training diverged at generator step {result.diverged_at} of {steps} "
            "(non-finite D or G loss)",
        )


# ---- models ----------------------------------------------------------------------------------


@_one_thread
def check_generator(generator: Spec, *, batch_size: int = 4, seed: int = 0) -> nn.Module:
    """Check a generator (``register_generators``); return one built by its factory.

    Checked: ``factory()`` returns a fresh :class:`torch.nn.Module` (no shared parameters);
    ``z_dim`` is an int > 0; ``output_shape`` a tuple of positive ints; ``output_range``
    ``None`` or ``(low, high)`` with ``low < high``; ``G(z)`` for ``z`` of shape
    ``(B, z_dim)`` has shape ``(B, *output_shape)``, is finite, lies in ``output_range``,
    depends on ``z`` and on the parameters (gradients); it works in eval mode with a batch of
    one (sampling) and, for image shapes, after ``G.to(memory_format=torch.channels_last)``
    (the trainer does that).

    :raises AssertionError: naming the generator and what is wrong.
    """
    factory, label = _resolve("generator", generator)
    torch.manual_seed(seed)
    G = _build(factory, label, nn.Module, "a torch.nn.Module")
    z_dim = getattr(G, "z_dim", None)
    if not (isinstance(z_dim, int) and not isinstance(z_dim, bool) and z_dim > 0):
        raise _fail(label, f"z_dim must be an int > 0, got {z_dim!r}")
    shape = getattr(G, "output_shape", None)
    if not (
        isinstance(shape, tuple)
        and shape
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    ):
        raise _fail(label, f"output_shape must be a tuple of positive ints, got {shape!r}")
    if not hasattr(G, "output_range"):
        raise _fail(label, "output_range is missing: (low, high), or None for data units")
    out_range = G.output_range
    if out_range is not None and not (
        isinstance(out_range, tuple)
        and len(out_range) == 2
        and all(isinstance(v, int | float) and math.isfinite(v) for v in out_range)
        and out_range[0] < out_range[1]
    ):
        raise _fail(label, f"output_range must be None or (low, high), low < high: {out_range!r}")

    z = _noise(G, batch_size, seed)
    out = _call(label, "forward", G, z)
    expected = (batch_size, *shape)
    if not isinstance(out, Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise _fail(
            label, f"G(z) for z of shape {tuple(z.shape)} must have shape {expected}, got {got}"
        )
    if not out.is_floating_point() or not torch.isfinite(out).all():
        raise _fail(label, "G(z) must be finite floating-point values")
    if out_range is not None:
        lo, hi = out_range
        if out.min() < lo - 1e-5 or out.max() > hi + 1e-5:
            raise _fail(
                label,
                f"G(z) lies in [{out.min().item():.4g}, {out.max().item():.4g}], outside the "
                f"declared output_range {out_range}",
            )
    if torch.equal(out[0], out[1]):
        raise _fail(label, "G(z) does not depend on z (two noise vectors, the same sample)")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    G.zero_grad(set_to_none=True)
    (out * weights).sum().backward()
    nonzero, bad = _gradient_state(G)
    if bad or not nonzero:
        raise _fail(label, "G(z) sends no finite, non-zero gradient to the generator's parameters")
    G.zero_grad(set_to_none=True)

    G.eval()
    with torch.no_grad():
        one = _call(label, "forward in eval mode", G, z[:1])
    G.train()
    if tuple(one.shape) != (1, *shape):
        raise _fail(label, f"G(z) in eval mode with one sample must have shape {(1, *shape)}")
    if len(shape) == 3:
        G_cl = copy.deepcopy(G).to(memory_format=torch.channels_last)
        with torch.no_grad():
            out_cl = _call(label, "forward after .to(memory_format=torch.channels_last)", G_cl, z)
        if tuple(out_cl.shape) != expected:
            raise _fail(label, "G(z) changes shape after .to(memory_format=torch.channels_last)")
    return G


@_one_thread
def check_discriminator(
    discriminator: Spec, sample_shape: tuple[int, ...], *, batch_size: int = 4, seed: int = 0
) -> nn.Module:
    """Check a discriminator (``register_discriminators``) on samples of ``sample_shape``.

    Checked: ``factory()`` returns a fresh :class:`torch.nn.Module`; ``D(x)`` for ``x`` of
    shape ``(B, *sample_shape)`` has shape ``(B,)`` and is finite; ``features(x)`` has shape
    ``(B, n_features)`` and ``head(features(x))`` equals ``D(x)``; the score sends gradient to
    the input (a generator learns through it) and to D's parameters; for image shapes the
    score is the same for a ``channels_last`` batch (the trainer uses that layout).

    :raises AssertionError: naming the discriminator and what is wrong.
    """
    factory, label = _resolve("discriminator", discriminator)
    torch.manual_seed(seed)
    D = _build(factory, label, nn.Module, "a torch.nn.Module")
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((batch_size, *sample_shape), generator=g).requires_grad_(True)
    y = _call(label, "forward", D, x)
    if not isinstance(y, Tensor) or tuple(y.shape) != (batch_size,):
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise _fail(
            label,
            f"D(x) must return one score per sample, shape ({batch_size},), for x of shape "
            f"{tuple(x.shape)}; got {got}",
        )
    if not y.is_floating_point() or not torch.isfinite(y).all():
        raise _fail(label, "D(x) must be finite floating-point scores")
    for method in ("features", "head"):
        if not callable(getattr(D, method, None)):
            raise _fail(label, f"{method}() is missing (see register_discriminators)")
    f = _call(label, "features", D.features, x)
    if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[0] != batch_size:
        got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise _fail(label, f"features(x) must have shape ({batch_size}, n_features), got {got}")
    # compared in eval mode: a training-mode forward may change D's state (spectral norm's
    # power iteration, BatchNorm statistics), so two training-mode calls need not agree
    D.eval()
    with torch.no_grad():
        same = torch.allclose(
            _call(label, "head", D.head, D.features(x)), D(x), rtol=1e-4, atol=1e-5
        )
    D.train()
    if not same:
        raise _fail(label, "head(features(x)) must equal D(x)")
    weights = torch.randn(y.shape, generator=g)
    (y * weights).sum().backward()
    if x.grad is None or x.grad.abs().sum() == 0:
        raise _fail(label, "D(x) sends no gradient to its input x; G could not learn from it")
    nonzero, bad = _gradient_state(D)
    if bad or not nonzero:
        raise _fail(label, "D(x) sends no finite, non-zero gradient to D's parameters")
    D.zero_grad(set_to_none=True)
    if len(sample_shape) == 3:
        D_cl = copy.deepcopy(D).to(memory_format=torch.channels_last).eval()
        x_cl = x.detach().contiguous(memory_format=torch.channels_last)
        with torch.no_grad():  # eval mode on both sides, as above
            y_cl = _call(label, "forward on a channels_last batch", D_cl, x_cl)
            y_ref = D.eval()(x.detach())
        D.train()
        if not torch.allclose(y_cl, y_ref, rtol=1e-4, atol=1e-5):
            raise _fail(label, "D(x) differs for a channels_last batch")
    return D


@_one_thread
def check_model_pair(
    generator: Spec, discriminator: Spec | None = None, *, batch_size: int = 4, seed: int = 0
) -> None:
    """Check a generator and a discriminator, and that they fit together.

    ``discriminator`` defaults to the generator's name (a registered pair shares its name).
    Runs :func:`check_generator`, :func:`check_discriminator` on the generator's
    ``output_shape``, then checks that ``D(G(z))`` has shape ``(B,)`` and sends gradient
    through D back to G's parameters.

    :raises AssertionError: naming the model and what is wrong.
    """
    if discriminator is None:
        if not isinstance(generator, str):
            raise TypeError("give discriminator= too when generator is a factory")
        discriminator = generator
    G = check_generator(generator, batch_size=batch_size, seed=seed)
    D = check_discriminator(discriminator, G.output_shape, batch_size=batch_size, seed=seed)
    g_label, d_label = (
        _resolve("generator", generator)[1],
        _resolve("discriminator", discriminator)[1],
    )
    label = f"{g_label} with {d_label}"
    D.requires_grad_(False)
    scores = _call(label, "D(G(z))", lambda: D(G(_noise(G, batch_size, seed))))
    if tuple(scores.shape) != (batch_size,):
        raise _fail(label, f"D(G(z)) must have shape ({batch_size},), got {tuple(scores.shape)}")
    scores.sum().backward()
    nonzero, _ = _gradient_state(G)
    if not nonzero:
        raise _fail(label, "D(G(z)) sends no gradient back to the generator")


# ---- datasets --------------------------------------------------------------------------------


@_one_thread
def check_dataset(
    dataset: Spec, data_dir: Path | None = None, *, batch_size: int = 8, seed: int = 0
) -> None:
    """Check a dataset (``register_datasets``); ``data_dir`` is passed to ``load``.

    Checked: ``factory()`` returns a fresh :class:`~ganbench.datasets.Dataset`;
    ``sample_shape`` is a tuple of positive ints; ``default_model`` names a registered
    generator and discriminator; ``default_steps`` is an int >= 1; after ``load(data_dir)``
    ``len()`` is >= 1; ``sampler(B, generator, cpu)()`` returns ``(B, *sample_shape)`` finite
    floats within ``value_range`` (``[0, 1]`` for images), the same batches for the same seed;
    ``save_samples`` accepts a batch and writes into a folder that does not exist yet.

    :raises AssertionError: naming the dataset and what is wrong.
    """
    factory, label = _resolve("dataset", dataset)
    ds = _build(factory, label, Dataset, "a ganbench.datasets.Dataset")
    shape = ds.sample_shape
    if not (
        isinstance(shape, tuple)
        and shape
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    ):
        raise _fail(label, f"sample_shape must be a tuple of positive ints, got {shape!r}")
    for kind in ("generator", "discriminator"):
        if ds.default_model not in registry.names(kind):
            raise _fail(
                label,
                f"default_model {ds.default_model!r} is not a registered {kind}; available: "
                f"{', '.join(registry.names(kind))}",
            )
    if not (isinstance(ds.default_steps, int) and ds.default_steps >= 1):
        raise _fail(label, f"default_steps must be an int >= 1, got {ds.default_steps!r}")
    _call(label, "load", ds.load, data_dir)
    n = _call(label, "len()", len, ds)
    if n < 1:
        raise _fail(label, f"len() must be >= 1 after load(), got {n}")

    def first_batches() -> list[Tensor]:
        sample = _call(
            label,
            "sampler",
            ds.sampler,
            batch_size,
            torch.Generator().manual_seed(seed),
            torch.device("cpu"),
        )
        return [_call(label, "sampler()", sample) for _ in range(2)]

    batches = first_batches()
    for batch in batches:
        if not isinstance(batch, Tensor) or tuple(batch.shape) != (batch_size, *shape):
            got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise _fail(label, f"a batch must have shape {(batch_size, *shape)}, got {got}")
        if not batch.is_floating_point() or not torch.isfinite(batch).all():
            raise _fail(label, "batches must be finite floating-point values")
        if ds.value_range is not None and (
            batch.min() < ds.value_range[0] or batch.max() > ds.value_range[1]
        ):
            raise _fail(
                label,
                f"batch values lie in [{batch.min().item():.4g}, {batch.max().item():.4g}]; "
                f"they must lie in {list(ds.value_range)} (the dataset's value_range)",
            )
    again = first_batches()
    if not all(torch.equal(a, b) for a, b in zip(batches, again, strict=True)):
        raise _fail(label, "the sampler gives different batches for the same generator seed")
    with tempfile.TemporaryDirectory() as tmp:  # into a folder that does not exist yet, as
        # a run's first picture goes into OUT/samples/
        _call(label, "save_samples", ds.save_samples, batches[0], Path(tmp) / "new" / "samples.png")


# ---- plugin loading --------------------------------------------------------------------------


@contextlib.contextmanager
def plugins_loaded(*distributions: str) -> Iterator[None]:
    """Load only the built-ins and the installed ``distributions`` inside the block.

    Sets ``GANBENCH_LOAD_PLUGINS`` and rebuilds the plugin manager, so other installed plugins
    cannot interfere with a plugin's tests; restores both afterwards.

    :raises AssertionError: if a named distribution is not installed or failed to load.
    """
    old = os.environ.get("GANBENCH_LOAD_PLUGINS")
    os.environ["GANBENCH_LOAD_PLUGINS"] = ",".join(distributions)
    plugins.reset()
    try:
        loaded = {info.distribution: info for info in plugins.plugin_infos()}
        for dist in distributions:
            if dist not in loaded:
                raise AssertionError(
                    f"plugin distribution {dist!r} is not installed (no entry point in group "
                    f"{plugins.ENTRY_POINT_GROUP!r}); install it, e.g. `pip install -e .`"
                )
            if loaded[dist].broken:
                raise AssertionError(f"plugin {dist} failed to load: {loaded[dist].error}")
        yield
    finally:
        if old is None:
            os.environ.pop("GANBENCH_LOAD_PLUGINS", None)
        else:
            os.environ["GANBENCH_LOAD_PLUGINS"] = old
        plugins.reset()
