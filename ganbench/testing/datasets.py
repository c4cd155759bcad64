"""The conformance kit's dataset check: :func:`check_dataset`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import Tensor

from ganbench import registry
from ganbench.datasets import Dataset
from ganbench.testing.support import Spec, build, call, fail, one_thread, resolve


@one_thread
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
    factory, label = resolve("dataset", dataset)
    ds = build(factory, label, Dataset, "a ganbench.datasets.Dataset")
    shape = ds.sample_shape
    if not (
        isinstance(shape, tuple)
        and shape
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    ):
        raise fail(label, f"sample_shape must be a tuple of positive ints, got {shape!r}")
    for kind in ("generator", "discriminator"):
        if ds.default_model not in registry.names(kind):
            raise fail(
                label,
                f"default_model {ds.default_model!r} is not a registered {kind}; available: "
                f"{', '.join(registry.names(kind))}",
            )
    if not (isinstance(ds.default_steps, int) and ds.default_steps >= 1):
        raise fail(label, f"default_steps must be an int >= 1, got {ds.default_steps!r}")
    call(label, "load", ds.load, data_dir)
    n = call(label, "len()", len, ds)
    if n < 1:
        raise fail(label, f"len() must be >= 1 after load(), got {n}")

    def first_batches() -> list[Tensor]:
        sample = call(
            label,
            "sampler",
            ds.sampler,
            batch_size,
            torch.Generator().manual_seed(seed),
            torch.device("cpu"),
        )
        return [call(label, "sampler()", sample) for _ in range(2)]

    batches = first_batches()
    for batch in batches:
        if not isinstance(batch, Tensor) or tuple(batch.shape) != (batch_size, *shape):
            got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise fail(label, f"a batch must have shape {(batch_size, *shape)}, got {got}")
        if not batch.is_floating_point() or not torch.isfinite(batch).all():
            raise fail(label, "batches must be finite floating-point values")
        if ds.value_range is not None and (
            batch.min() < ds.value_range[0] or batch.max() > ds.value_range[1]
        ):
            raise fail(
                label,
                f"batch values lie in [{batch.min().item():.4g}, {batch.max().item():.4g}]; "
                f"they must lie in {list(ds.value_range)} (the dataset's value_range)",
            )
    again = first_batches()
    if not all(torch.equal(a, b) for a, b in zip(batches, again, strict=True)):
        raise fail(label, "the sampler gives different batches for the same generator seed")
    with tempfile.TemporaryDirectory() as tmp:  # into a folder that does not exist yet, as
        # a run's first picture goes into OUT/samples/
        call(label, "save_samples", ds.save_samples, batches[0], Path(tmp) / "new" / "samples.png")
