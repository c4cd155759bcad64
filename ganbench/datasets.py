"""The dataset contract: a seeded batch sampler and the evaluator that scores generated samples."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import torch
from torch import Tensor

from ganbench.errors import GanbenchError, did_you_mean
from ganbench.files import atomic_write_with


@dataclass(frozen=True)
class EvalOptions:
    """How generated samples are scored, as the command line asked.

    Image datasets read all of it (FID/IS backbone and sample count); a dataset with its own
    metrics may ignore what does not apply (the 2-D datasets score a fixed 2500 samples).
    ``backbone`` must be one of the dataset's :attr:`Dataset.backbones` where it lists any.
    """

    backbone: str = "mnist-classifier"
    fid_samples: int = 10000
    device: str = "cpu"
    inception_weights: Path | None = None
    kid_subsets: int = 100  # KID: the mean and std over this many random subsets ...
    kid_subset_size: int = 1000  # ... of this many samples each (fewer when there are fewer)
    # KID and the k-NN metrics; off for --eval-every curve points, which need FID only (time
    # to quality) and would otherwise pay seconds of k-NN distances at every point
    manifold_metrics: bool = True
    # samples a dataset with modes scores its mode metrics on (None: the dataset's own
    # ``Dataset.mode_samples``); refused on datasets without modes
    mode_samples: int | None = None


class Evaluator(Protocol):
    """Scores generated samples. Built by the dataset (:meth:`Dataset.make_evaluator`), so a
    dataset plugin brings its own metrics: MNIST gets FID/IS, the toy 2-D mixtures mode coverage,
    and an external dataset whatever evaluator it returns.

    The runner stores every key of :meth:`score` as a ``runs.csv`` column and :meth:`reference`
    as the ``(real data)`` summary row. An evaluator may set ``metrics``: the names of the score
    keys that are metrics (numbers to average over seeds, in the order tables show them); the
    other keys describe how they were computed (a backbone name, a sample count). Without it,
    every numeric key is a metric.
    """

    n_samples: int  # how many generated samples :meth:`score` expects

    def reference(self) -> dict[str, Any]:
        """Metrics of real data scored like generated data (the real-data floor)."""
        ...

    def score(self, samples: Tensor) -> dict[str, Any]:
        """Metrics of ``n_samples`` generated samples, in the dataset's units (what its sampler
        yields: floats in ``[0, 1]`` for images, raw points for the 2-D mixtures)."""
        ...


# metrics where more is better (the MNIST evaluator's and the 2-D ones'); every other metric
# (fid, kid, class_kl, mode_kl, ...) is better lower
HIGHER_IS_BETTER = frozenset(
    {
        "is_mean",
        "classes_covered",
        "precision_k3",
        "recall_k3",
        "density_k5",
        "coverage_k5",
        "modes_covered",
        "high_quality_frac",
        "confident_frac",
    }
)


def headline_metric(dataset: str) -> str:
    """The metric tables rank by and a search picks by for dataset ``dataset`` (its class's
    ``headline_metric``; "fid" where it names none or is not registered here)."""
    from ganbench import registry

    try:
        factory = registry.get_dataset(dataset).factory
    except Exception:  # noqa: BLE001 - an unknown dataset (a plugin not installed here)
        return "fid"
    return str(getattr(factory, "headline_metric", "") or "fid")


def metric_names(evaluator: Evaluator, scores: dict[str, Any]) -> list[str]:
    """The keys of ``scores`` that are metrics: the evaluator's ``metrics``, else numeric keys."""
    declared = getattr(evaluator, "metrics", None)
    if declared is not None:
        return [name for name in declared if name in scores]
    return [k for k, v in scores.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)]


class Dataset:
    """Base class of training datasets (see ``register_datasets``).

    ``default_model`` names the generator/discriminator pair ``ganbench run`` uses when none is
    given, and ``default_steps`` the generator steps per cell, so each dataset runs sensibly by
    default. ``cpu_precision`` is what ``--precision auto`` (the default) trains in on a CPU with
    native bf16 instructions: set it to ``"bf16"`` only once bf16 has been shown to give the fp32
    scores within seed noise on the dataset's default pair.
    """

    sample_shape: tuple[int, ...] = ()
    default_model: str = ""
    default_steps: int = 1000
    # named training setups beyond the default one, for ``--budget NAME``: each maps run options
    # ("generator", "steps" or "epochs", "batch_size") to values; the command line's own options
    # win over a budget's. "default" (the dataset's default setup) is always a valid name
    budgets: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
    cpu_precision: str = "fp32"
    # the metric a search picks by where --metric is not given (lower or higher is better as
    # HIGHER_IS_BETTER says); "": the evaluator's first metric
    headline_metric: str = "fid"
    # the model pairs ``cpu_precision`` was validated on (None: every pair); elsewhere fp32
    cpu_precision_pairs: tuple[str, ...] | None = None
    # the range batches lie in: [0, 1] for images; None for data in its own units (2-D points),
    # which generators with ``output_range = None`` produce directly
    value_range: tuple[float, float] | None = (0.0, 1.0)
    preview_samples: int = 64  # samples drawn (from fixed noise) for the per-cell picture
    source: str = ""  # where the data came from, once loaded
    reads_data_dir: bool = True  # False: --data-dir means nothing to it (sampled on the fly)
    # what identifies the loaded data (e.g. a checksum of --data-dir's files): part of every
    # cell's config_hash when --data-dir is given, so other data never resumes a cell
    data_id: str = ""
    # the feature backbones its evaluator accepts as ``EvalOptions.backbone`` (--backbone); ()
    # for an evaluator that reads none. A class attribute: read before any dataset is made, to
    # reject a --backbone no registered dataset knows (:func:`unknown_backbone_error`)
    backbones: tuple[str, ...] = ()
    # a dataset scored by mode coverage: the samples its mode metrics count by default
    # (--mode-samples overrides it); None: it has no modes, and --mode-samples is refused
    mode_samples: int | None = None

    def load(self, data_dir: Path | None = None) -> None:
        """Make the data available (idempotent). ``data_dir`` is the user's ``--data-dir``."""

    def __len__(self) -> int:
        """Number of training samples (sampled on the fly datasets: a nominal size)."""
        raise NotImplementedError

    def sampler(
        self, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> Callable[[], Tensor]:
        """A function returning one training batch per call, drawn from ``generator`` (seeded).

        Images are floats in [0, 1]; data in its own units (e.g. 2-D points) is returned as is,
        for generators whose ``output_range`` is ``None``.
        """
        raise NotImplementedError

    def make_evaluator(self, options: EvalOptions) -> Evaluator | None:
        """The evaluator for samples of this dataset; ``None`` when it has none."""
        return None

    def save_samples(self, samples: Tensor, path: Path) -> None:
        """Write a picture of ``samples`` (a fixed noise batch) to ``path`` (PNG)."""


def unknown_backbone_error(name: str, known: Iterable[str]) -> GanbenchError:
    """``Unknown backbone 'x'. Did you mean 'y'? Available: a, b``: ``name`` is none of ``known``
    (the :attr:`Dataset.backbones` it was checked against)."""
    known = list(known)
    return GanbenchError(
        f"Unknown backbone '{name}'.{did_you_mean(name, known)} Available: {', '.join(known)}"
    )


class ImageTensorDataset(Dataset):
    """Images held in memory as one uint8 tensor ``(N, C, H, W)``; batches drawn uniformly.

    Batches are drawn with replacement (``randint``), as the source article's loop does.
    """

    def __init__(self) -> None:
        self.train_images: Tensor | None = None
        self._on_device: dict[torch.device, Tensor] = {}

    def __len__(self) -> int:
        assert self.train_images is not None, "call load() first"
        return self.train_images.shape[0]

    def sampler(
        self, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> Callable[[], Tensor]:
        assert self.train_images is not None, "call load() first"
        if device not in self._on_device:  # uint8 on the device: 47 MB for MNIST, no host copies
            self._on_device[device] = self.train_images.to(device)
        images = self._on_device[device]
        n = images.shape[0]

        pin = device.type == "cuda"

        def next_batch() -> Tensor:
            idx = torch.randint(0, n, (batch_size,), generator=generator)
            if pin:  # pinned + non_blocking: the copy does not wait for the queued steps
                idx = idx.pin_memory().to(device, non_blocking=True)
            return images[idx.to(device)].float().div_(255.0)

        return next_batch

    def save_samples(self, samples: Tensor, path: Path) -> None:
        """An 8-column grid of the images."""
        from torchvision.utils import save_image

        atomic_write_with(path, lambda tmp: save_image(samples, tmp, nrow=8, padding=2))
