"""Feature extractors ("backbones") that FID and IS are computed on.

Two backbones exist:

``mnist-classifier`` (default; :mod:`.classifier`)
    A LeNet-style CNN, ``standardise -> conv 3x3 32 -> relu -> maxpool 2 -> conv 3x3 64 -> relu ->
    maxpool 2 -> dense 128 -> relu -> dense 10``, trained by ganbench on the MNIST training split
    the first time it is needed (fixed seed, fixed batch order, deterministic algorithms), cached at
    ``<cache_dir>/mnist-classifier-v1.pt`` with its test accuracy, the checksum of the data it was
    trained on, a version tag and a sha256 of its weights. FID uses its penultimate activations
    (128 features, after the ReLU), IS its 10 logits.

``inception`` (:mod:`.inception`)
    torchmetrics' standard InceptionV3 (``NoTrainInceptionV3``: torch-fidelity's port of the
    TensorFlow FID network), with the 2048-d pool features for FID and the 1008 unbiased logits for
    IS, exactly as torchmetrics' ``FrechetInceptionDistance`` / ``InceptionScore`` defaults use
    them. Weights come from ``--inception-weights PATH`` or torch's hub cache, downloaded there
    when the internet is reachable; offline without them :func:`check_backbone` fails with one line.

Every backbone takes images as floats in ``[0, 1]`` of shape ``(B, 1, H, W)`` and returns
``(features, logits)`` from :meth:`features_and_logits`. This module is the backbones' one
import: their names, the check, and the public names of both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from torch import Tensor

from ganbench.datasets import unknown_backbone_error as _unknown
from ganbench.default_plugins.mnist import Log
from ganbench.default_plugins.mnist.classifier import (
    CLASSIFIER_EPOCHS,
    CLASSIFIER_FILENAME,
    CLASSIFIER_VERSION,
    MIN_CLASSIFIER_ACCURACY,
    MnistClassifier,
    cache_dir,
    classifier_accuracy,
    classifier_cache_path,
    load_classifier,
    state_sha256,
    train_classifier,
)
from ganbench.default_plugins.mnist.inception import (
    INCEPTION_FILENAME,
    INCEPTION_URL,
    InceptionBackbone,
    check_inception,
    file_sha256,
    inception_hub_path,
    load_inception,
    resolve_inception_weights,
)
from ganbench.errors import GanbenchError

__all__ = [
    "BACKBONES",
    "CLASSIFIER_EPOCHS",
    "CLASSIFIER_FILENAME",
    "CLASSIFIER_VERSION",
    "DEFAULT_BACKBONE",
    "INCEPTION_FILENAME",
    "INCEPTION_URL",
    "MIN_CLASSIFIER_ACCURACY",
    "Backbone",
    "InceptionBackbone",
    "Log",
    "MnistClassifier",
    "cache_dir",
    "check_backbone",
    "classifier_accuracy",
    "classifier_cache_path",
    "file_sha256",
    "inception_hub_path",
    "load_classifier",
    "load_inception",
    "resolve_inception_weights",
    "state_sha256",
    "train_classifier",
    "unknown_mnist_backbone",
]

BACKBONES: tuple[str, ...] = ("inception", "mnist-classifier")
DEFAULT_BACKBONE = "mnist-classifier"


class Backbone(Protocol):
    """What the evaluator needs of a feature extractor."""

    name: str
    num_features: int
    weights_sha256: str  # identifies the weights, part of every cache key built on its features
    max_batch: int

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x``: floats in [0, 1], ``(B, 1, H, W)``. Returns ``(B, num_features)`` features and
        ``(B, K)`` logits from one forward pass."""
        ...


def unknown_mnist_backbone(name: str) -> GanbenchError:
    """``Unknown backbone 'x'. Did you mean 'y'? Available: inception, mnist-classifier``."""
    return _unknown(name, BACKBONES)


def check_backbone(
    name: str, inception_weights: Path | str | None = None, log: Log | None = None
) -> None:
    """Fail early (before any training) with a one-line :class:`GanbenchError` when ``name`` is
    unknown or, for ``inception``, when torch-fidelity or the weights cannot be had (this may
    download the weights into torch's hub cache). ``mnist-classifier`` is always available: it is
    trained on first use."""
    if name not in BACKBONES:
        raise unknown_mnist_backbone(name)
    if name == "inception":
        check_inception(inception_weights, log)
