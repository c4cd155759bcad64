"""The conformance kit's tiny model pair and its model checks: :func:`check_generator`,
:func:`check_discriminator` and :func:`check_model_pair`."""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from ganbench.models import ConvFeaturesHead
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


# ---- models ----------------------------------------------------------------------------------


@one_thread
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
    factory, label = resolve("generator", generator)
    torch.manual_seed(seed)
    G = build(factory, label, nn.Module, "a torch.nn.Module")
    z_dim = getattr(G, "z_dim", None)
    if not (isinstance(z_dim, int) and not isinstance(z_dim, bool) and z_dim > 0):
        raise fail(label, f"z_dim must be an int > 0, got {z_dim!r}")
    shape = getattr(G, "output_shape", None)
    if not (
        isinstance(shape, tuple)
        and shape
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    ):
        raise fail(label, f"output_shape must be a tuple of positive ints, got {shape!r}")
    if not hasattr(G, "output_range"):
        raise fail(label, "output_range is missing: (low, high), or None for data units")
    out_range = G.output_range
    if out_range is not None and not (
        isinstance(out_range, tuple)
        and len(out_range) == 2
        and all(isinstance(v, int | float) and math.isfinite(v) for v in out_range)
        and out_range[0] < out_range[1]
    ):
        raise fail(label, f"output_range must be None or (low, high), low < high: {out_range!r}")

    z = noise(G, batch_size, seed)
    out = call(label, "forward", G, z)
    expected = (batch_size, *shape)
    if not isinstance(out, Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise fail(
            label, f"G(z) for z of shape {tuple(z.shape)} must have shape {expected}, got {got}"
        )
    if not out.is_floating_point() or not torch.isfinite(out).all():
        raise fail(label, "G(z) must be finite floating-point values")
    if out_range is not None:
        lo, hi = out_range
        if out.min() < lo - 1e-5 or out.max() > hi + 1e-5:
            raise fail(
                label,
                f"G(z) lies in [{out.min().item():.4g}, {out.max().item():.4g}], outside the "
                f"declared output_range {out_range}",
            )
    if torch.equal(out[0], out[1]):
        raise fail(label, "G(z) does not depend on z (two noise vectors, the same sample)")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    G.zero_grad(set_to_none=True)
    (out * weights).sum().backward()
    nonzero, bad = gradient_state(G)
    if bad or not nonzero:
        raise fail(label, "G(z) sends no finite, non-zero gradient to the generator's parameters")
    G.zero_grad(set_to_none=True)

    G.eval()
    with torch.no_grad():
        one = call(label, "forward in eval mode", G, z[:1])
    G.train()
    if tuple(one.shape) != (1, *shape):
        raise fail(label, f"G(z) in eval mode with one sample must have shape {(1, *shape)}")
    if len(shape) == 3:
        G_cl = copy.deepcopy(G).to(memory_format=torch.channels_last)
        with torch.no_grad():
            out_cl = call(label, "forward after .to(memory_format=torch.channels_last)", G_cl, z)
        if tuple(out_cl.shape) != expected:
            raise fail(label, "G(z) changes shape after .to(memory_format=torch.channels_last)")
    return G


@one_thread
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
    factory, label = resolve("discriminator", discriminator)
    torch.manual_seed(seed)
    D = build(factory, label, nn.Module, "a torch.nn.Module")
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((batch_size, *sample_shape), generator=g).requires_grad_(True)
    y = call(label, "forward", D, x)
    if not isinstance(y, Tensor) or tuple(y.shape) != (batch_size,):
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise fail(
            label,
            f"D(x) must return one score per sample, shape ({batch_size},), for x of shape "
            f"{tuple(x.shape)}; got {got}",
        )
    if not y.is_floating_point() or not torch.isfinite(y).all():
        raise fail(label, "D(x) must be finite floating-point scores")
    for method in ("features", "head"):
        if not callable(getattr(D, method, None)):
            raise fail(label, f"{method}() is missing (see register_discriminators)")
    f = call(label, "features", D.features, x)
    if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[0] != batch_size:
        got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise fail(label, f"features(x) must have shape ({batch_size}, n_features), got {got}")
    # compared in eval mode: a training-mode forward may change D's state (spectral norm's
    # power iteration, BatchNorm statistics), so two training-mode calls need not agree
    D.eval()
    with torch.no_grad():
        same = torch.allclose(
            call(label, "head", D.head, D.features(x)), D(x), rtol=1e-4, atol=1e-5
        )
    D.train()
    if not same:
        raise fail(label, "head(features(x)) must equal D(x)")
    weights = torch.randn(y.shape, generator=g)
    (y * weights).sum().backward()
    if x.grad is None or x.grad.abs().sum() == 0:
        raise fail(label, "D(x) sends no gradient to its input x; G could not learn from it")
    nonzero, bad = gradient_state(D)
    if bad or not nonzero:
        raise fail(label, "D(x) sends no finite, non-zero gradient to D's parameters")
    D.zero_grad(set_to_none=True)
    if len(sample_shape) == 3:
        D_cl = copy.deepcopy(D).to(memory_format=torch.channels_last).eval()
        x_cl = x.detach().contiguous(memory_format=torch.channels_last)
        with torch.no_grad():  # eval mode on both sides, as above
            y_cl = call(label, "forward on a channels_last batch", D_cl, x_cl)
            y_ref = D.eval()(x.detach())
        D.train()
        if not torch.allclose(y_cl, y_ref, rtol=1e-4, atol=1e-5):
            raise fail(label, "D(x) differs for a channels_last batch")
    return D


@one_thread
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
        resolve("generator", generator)[1],
        resolve("discriminator", discriminator)[1],
    )
    label = f"{g_label} with {d_label}"
    D.requires_grad_(False)
    scores = call(label, "D(G(z))", lambda: D(G(noise(G, batch_size, seed))))
    if tuple(scores.shape) != (batch_size,):
        raise fail(label, f"D(G(z)) must have shape ({batch_size},), got {tuple(scores.shape)}")
    scores.sum().backward()
    nonzero, _ = gradient_state(G)
    if not nonzero:
        raise fail(label, "D(G(z)) sends no gradient back to the generator")
