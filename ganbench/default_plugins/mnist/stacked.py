"""Stacked MNIST's data and evaluator: three MNIST digits as the three channels of one image,
1000 modes (Metz et al. 2017, "Unrolled Generative Adversarial Networks"; VEEGAN; PacGAN).

A sample's mode is ``100 d0 + 10 d1 + d2``, its channels' digits in order. Real samples stack
three digits drawn independently and uniformly from the training split
(:func:`stack_digits`), as PacGAN's code does for Metz et al.'s setting (``generate_stacked_
mnist`` in ``fjxmlzn/PacGAN``, ``unrolled_GAN_experiment``).

:class:`StackedMnistEvaluator` labels each channel of a generated sample with the MNIST
classifier's argmax and reports, over ``n_samples`` samples (25,600 as in Metz et al. and
PacGAN):

- ``modes_covered``: modes with at least one sample (of 1000);
- ``mode_kl``: ``KL(p_gen || U(1000))`` of the mode histogram, in nats (natural log);
- ``confident_frac``: the share of samples whose three channels are each classified with
  probability at least :data:`CONFIDENT` (argmax labels even noise; this says how many samples
  look like three digits at all);
- ``channel_fid``: FID of the channels as single digits, on the classifier's features, against
  the MNIST test split (the first ``fid_samples`` channels, so it reads like the ``mnist``
  dataset's FID at the same count).

The real-data floor scores ``n_samples`` real stacked samples drawn from a fixed seed: about 1000
modes, KL about 0.02 (a uniform histogram's sampling noise at 25.6 samples a mode), not 0.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from torch import Tensor

from ganbench.metrics import frechet_distance, gaussian_stats
from ganbench.mode_metrics import mode_kl, modes_covered

CHANNELS = 3
MODES = 10**CHANNELS
MODE_SAMPLES = 25600  # samples scored per model (Metz et al. 2017; PacGAN's num_test_sample)
CONFIDENT = 0.9  # a channel counts as a confident digit at this classifier probability
REFERENCE_SEED = 0  # the real stacked samples scored as the real-data floor
METRICS = ("modes_covered", "mode_kl", "confident_frac", "channel_fid")


class DigitClassifier(Protocol):
    """What the evaluator needs of a classifier: ``features_and_logits(x)`` of ``(B, 1, 28,
    28)`` floats in [0, 1], giving ``(B, F)`` features and ``(B, 10)`` logits (the
    ``mnist-classifier`` backbone is one)."""

    max_batch: int

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]: ...


def stack_digits(images: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``n`` stacked samples ``(n, 3, H, W)`` (``images``' dtype): each channel an image of
    ``images`` (``(N, 1, H, W)`` or ``(N, H, W)``) drawn independently and uniformly (with
    replacement) from ``generator``. ``images`` may live on any device; ``generator`` is a CPU
    generator."""
    flat = images.reshape(len(images), *images.shape[-2:])
    idx = torch.randint(0, len(flat), (n * CHANNELS,), generator=generator)
    return flat[idx.to(flat.device)].view(n, CHANNELS, *flat.shape[-2:])


def mode_ids(digits: Tensor) -> Tensor:
    """The mode of each sample from its channels' digits ``(n, 3)``: ``100 d0 + 10 d1 + d2``."""
    weights = torch.tensor([10 ** (CHANNELS - 1 - c) for c in range(CHANNELS)])
    return (digits.long().cpu() * weights).sum(dim=1)


def mode_histogram(digits: Tensor) -> Tensor:
    """Samples per mode ``(1000,)`` (int64) from the channels' digits ``(n, 3)``."""
    return torch.bincount(mode_ids(digits), minlength=MODES)


class StackedMnistEvaluator:
    """Mode coverage and fidelity of stacked-MNIST samples (see the module docstring).

    :param classifier: labels and features of single digits (:class:`DigitClassifier`).
    :param train_images: the training split ``(N, 1, 28, 28)`` uint8: the floor's real samples.
    :param test_images: the test split ``(M, 1, 28, 28)`` uint8: the reference of ``channel_fid``.
    :param n_samples: generated samples :meth:`score` expects (the mode metrics count them all).
    :param fid_samples: single digits ``channel_fid`` compares (at most ``3 n_samples``; the
        reference holds ``min(fid_samples, M)`` test images).
    :param backbone: the classifier's name, recorded in every row.
    """

    metrics = METRICS

    def __init__(
        self,
        classifier: DigitClassifier,
        train_images: Tensor,
        test_images: Tensor,
        *,
        n_samples: int = MODE_SAMPLES,
        fid_samples: int = 10000,
        device: str | torch.device = "cpu",
        backbone: str = "mnist-classifier",
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        self.classifier = classifier
        self.train_images = train_images
        self.n_samples = int(n_samples)
        self.fid_samples = max(2, min(int(fid_samples), CHANNELS * self.n_samples))
        self.device = torch.device(device)
        self.backbone = backbone
        self.batch_size = max(1, min(2000, getattr(classifier, "max_batch", 2000)))
        reference = test_images[: self.fid_samples]
        features, _ = self._classify(reference.reshape(-1, 1, *reference.shape[-2:]))
        self._reference_stats = gaussian_stats(features.double())
        self._floor: dict[str, Any] | None = None

    @torch.no_grad()
    def _classify(self, digits: Tensor) -> tuple[Tensor, Tensor]:
        """Features ``(n, F)`` and class probabilities ``(n, 10)`` (float32, CPU) of single
        digits ``(n, 1, H, W)`` (uint8, or floats clamped to [0, 1])."""
        features, probs = [], []
        for i in range(0, len(digits), self.batch_size):
            x = digits[i : i + self.batch_size].to(self.device)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float().clamp(0.0, 1.0)
            f, logits = self.classifier.features_and_logits(x.contiguous())
            features.append(f.float().cpu())
            probs.append(torch.softmax(logits.float(), dim=1).cpu())
        return torch.cat(features), torch.cat(probs)

    def reference(self) -> dict[str, Any]:
        """The real-data floor: ``n_samples`` real stacked samples (fixed seed) scored like
        generated ones."""
        if self._floor is None:
            generator = torch.Generator().manual_seed(REFERENCE_SEED)
            self._floor = self.score(stack_digits(self.train_images, self.n_samples, generator))
        return dict(self._floor)

    def score(self, samples: Tensor) -> dict[str, Any]:
        """``modes_covered``, ``mode_kl`` (nats), ``confident_frac`` and ``channel_fid`` of
        ``samples`` ``(n, 3, 28, 28)`` (floats in [0, 1], or uint8), plus how they were computed:
        ``backbone``, ``eval_samples`` (n), ``fid_samples`` (channels in ``channel_fid``) and
        ``kl_log_base`` ("e")."""
        if samples.ndim != 4 or samples.shape[1] != CHANNELS:
            raise ValueError(f"expected samples (n, 3, H, W), got {tuple(samples.shape)}")
        n = len(samples)
        digits = samples.reshape(n * CHANNELS, 1, *samples.shape[-2:])  # sample-major
        features, probs = self._classify(digits)
        confidence, labels = probs.max(dim=1)
        histogram = mode_histogram(labels.view(n, CHANNELS))
        confident = (confidence.view(n, CHANNELS) >= CONFIDENT).all(dim=1)
        n_fid = min(self.fid_samples, len(features))
        finite = bool(torch.isfinite(features[:n_fid]).all()) and n_fid >= 2
        fid = (
            frechet_distance(*gaussian_stats(features[:n_fid].double()), *self._reference_stats)
            if finite
            else math.nan
        )
        return {
            "modes_covered": modes_covered(histogram),
            "mode_kl": mode_kl(histogram),
            "confident_frac": float(confident.float().mean()) if n else 0.0,
            "channel_fid": fid,
            "backbone": self.backbone,
            "eval_samples": n,
            "fid_samples": n_fid,
            "kl_log_base": "e",
        }
