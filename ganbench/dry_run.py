"""Before any training: build the run's models and losses once and take one tiny step with
each, so a plugin's mistake is one line naming the plugin, not a traceback in the first cell."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ganbench import registry
from ganbench.datasets import Dataset
from ganbench.defaults import checked_hyperparams
from ganbench.errors import GanbenchError, first_line, message_of
from ganbench.generator_files import state_bytes
from ganbench.losses import Hyperparams
from ganbench.spec import RunSpec
from ganbench.testing import check_loss_steps
from ganbench.trainer import from_unit

DRY_BATCH = 4


def built(entry: registry.Entry) -> Any:
    """``entry``'s factory() result; a one-line error naming its plugin if it raises."""
    try:
        return entry.factory()
    except Exception as exc:
        raise GanbenchError(
            f"{entry.kind.capitalize()} {entry.name!r} (from {entry.provider}) cannot be built: "
            f"{type(exc).__name__}: {message_of(exc)}"
        ) from None


@dataclass(frozen=True)
class DryRun:
    """What the dry run resolved for the plan: each loss's hyperparameters and their sources,
    and the bytes of one generator's state (what each kept generator file holds)."""

    hyperparams: dict[str, tuple[Hyperparams, dict[str, str]]]
    generator_bytes: int


def dry_run(spec: RunSpec, dataset: Dataset, losses: dict[str, registry.Entry]) -> DryRun:
    """Before any training: G's output fits D and the dataset (one tiny forward pass), and each
    loss's D and G steps pass the conformance kit's checks on a tiny real batch
    (:func:`ganbench.testing.check_loss_steps`) with the hyperparameters it will train with;
    any failure is one line naming the plugin. Returns those hyperparameters and their sources,
    per loss name (the plan's, resolved here once), and the size of G's state."""
    G, D = dry_forward(spec, dataset)
    batch = dataset.sampler(DRY_BATCH, torch.Generator().manual_seed(0), torch.device("cpu"))()
    real = from_unit(batch, G.output_range)
    resolved = {}
    for name, entry in losses.items():
        loss = built(entry)
        resolved[name] = checked_hyperparams(entry, G, spec)
        loss.hp = resolved[name][0]
        label = f"Loss {name!r} (from {entry.provider})"
        try:
            with torch.random.fork_rng(devices=[]):
                check_loss_steps(label, loss, G, D, real)
        except AssertionError as exc:
            raise GanbenchError(
                f"{first_line(exc)} (found by a dry step before training; "
                "ganbench.testing.check_loss runs every check)"
            ) from None
    return DryRun(resolved, state_bytes(G))


def dry_forward(spec: RunSpec, dataset: Dataset) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Check that G's output fits D and the dataset, with one tiny forward pass; return the
    (G, D) it built."""
    G = built(registry.get_generator(spec.generator))
    D = built(registry.get_discriminator(spec.discriminator))
    with torch.no_grad():
        try:
            x = G(torch.randn(2, G.z_dim))
        except Exception as exc:
            raise GanbenchError(
                f"Generator {spec.generator!r} fails on a dry forward of 2 noise vectors "
                f"(z_dim {G.z_dim}): {message_of(exc)}"
            ) from None
        if tuple(x.shape[1:]) != tuple(dataset.sample_shape):
            raise GanbenchError(
                f"Generator {spec.generator!r} makes samples of shape {tuple(x.shape[1:])}, but "
                f"dataset {spec.dataset!r} has samples of shape {tuple(dataset.sample_shape)}"
            )
        try:
            y = D(x)
        except Exception as exc:
            raise GanbenchError(
                f"Discriminator {spec.discriminator!r} cannot take generator "
                f"{spec.generator!r}'s output of shape {tuple(x.shape[1:])}: {message_of(exc)}"
            ) from None
        if tuple(y.shape) != (2,):
            raise GanbenchError(
                f"Discriminator {spec.discriminator!r} must return one score per sample, shape "
                f"(batch,), but returned {tuple(y.shape)}"
            )
    return G, D
