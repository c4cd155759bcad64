"""FID, IS, KID, precision/recall, density/coverage and mode coverage of generated images,
against the MNIST test split.

:class:`ImageEvaluator` runs one backbone (see :mod:`.backbones`) over each batch once and
feeds its outputs to torchmetrics' ``FrechetInceptionDistance`` (features, statistics in float64)
and ``InceptionScore`` (logits, 10 splits), both given the backbone as an injected ``feature``
module (:mod:`.heads`). Mode coverage (:func:`ganbench.metrics.class_coverage`) always comes
from the ``mnist-classifier``'s argmax, also under the ``inception`` backbone, whose 1008 ImageNet
classes say nothing about digits.

The real side of FID is the first ``min(fid_samples, len(test))`` images of the test split. Its
sums (``sum f``, ``sum f f^T``, ``N``: torchmetrics' ``real_features_*`` states) are computed once
and cached under the cache folder, keyed by backbone, split, sample count, data checksum and
weights checksums, then loaded into the metric (``reset_real_features=False``), so each cell only
extracts its generated samples' features. The test split's IS and coverage are cached with them.

KID (torchmetrics' ``KernelInceptionDistance``, polynomial kernel, ``kid_subsets`` subsets of
``kid_subset_size``), improved precision/recall (k = 3) and density/coverage (k = 5) need the real
features themselves, not their sums: those of the same test images are cached beside the sums
(``fid-feats-*.pt``) and scored by :mod:`.manifold`. All of them are computed on the backbone's
features, the ones FID uses (:mod:`ganbench.metrics`; docs/metrics.md says what each one means).

IS shuffles its rows before splitting (torchmetrics does); ganbench seeds that shuffle
(``IS_SEED``) in a forked RNG, so IS is reproducible and the caller's RNG untouched.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from ganbench import files
from ganbench.default_plugins.mnist import Log, log_stderr
from ganbench.default_plugins.mnist import backbones as bb
from ganbench.default_plugins.mnist.heads import Head, SharedForward
from ganbench.default_plugins.mnist.manifold import (
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    MANIFOLD_METRICS,
    ManifoldMetrics,
)
from ganbench.metrics import class_coverage

IS_SPLITS = 10
IS_SEED = 0
REFERENCE_FORMAT = 1
FEATURES_FORMAT = 1
FLOOR_FORMAT = 2  # 2: with KID, precision/recall and density/coverage (unit-length features)
#: the metrics of :meth:`ImageEvaluator.score`, in the order tables show them
METRICS = (
    "fid",
    "is_mean",
    "is_std",
    "classes_covered",
    "class_kl",
    "kid",
    "kid_std",
    "precision_k3",
    "recall_k3",
    "density_k5",
    "coverage_k5",
)


def _key_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class ImageEvaluator:
    """Scores generated MNIST-like images: FID, IS, KID, precision/recall and density/coverage on
    a backbone, mode coverage from the mnist-classifier. Construction loads (or trains) the
    backbone and loads (or computes and caches) the test split's reference statistics, so it is
    the place to fail early.

    ``reference()`` is the real-data floor: FID of the first ``fid_samples`` training images
    against the test reference, and IS / coverage of the test reference images themselves.
    ``score(samples)`` scores generated samples (floats in [0, 1], ``(N, 1, 28, 28)``, normally
    ``N = fid_samples``; the returned ``fid_samples`` is the ``N`` actually scored).
    """

    def __init__(
        self,
        *,
        backbone: str,
        train_images: Tensor,
        train_labels: Tensor,
        test_images: Tensor,
        test_labels: Tensor,
        data_checksum: str,
        fid_samples: int = 10000,
        device: str | torch.device = "cpu",
        cache_dir: Path | None = None,
        inception_weights: Path | None = None,
        log: Log | None = None,
        batch_size: int = 500,
        classifier_epochs: int = bb.CLASSIFIER_EPOCHS,
        kid_subsets: int = KID_SUBSETS,
        kid_subset_size: int = KID_SUBSET_SIZE,
        manifold_metrics: bool = True,
    ) -> None:
        if backbone not in bb.BACKBONES:
            raise bb.unknown_mnist_backbone(backbone)
        if fid_samples < 2:
            raise ValueError(f"fid_samples must be at least 2, got {fid_samples}")
        if kid_subsets < 1 or kid_subset_size < 2:
            raise ValueError(
                f"KID needs at least 1 subset of at least 2 samples, got {kid_subsets} of "
                f"{kid_subset_size}"
            )
        self.manifold = bool(manifold_metrics)  # False: FID, IS and classes only (curves)
        self.metrics = (
            METRICS if self.manifold else tuple(m for m in METRICS if m not in MANIFOLD_METRICS)
        )
        self.kid_subsets = int(kid_subsets)
        self.kid_subset_size = int(kid_subset_size)
        self.log: Log = log or log_stderr
        self.backbone_name = backbone
        self.fid_samples = self.n_samples = int(fid_samples)
        self.device = torch.device(device)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else files.cache_dir()
        self.data_checksum = data_checksum
        self.train_images = train_images
        self.test_images = test_images
        self.n_ref = min(self.fid_samples, len(test_images))

        if backbone == "inception":  # fail on missing weights before training the classifier
            bb.check_backbone(backbone, inception_weights, self.log)
        self.classifier = bb.load_classifier(
            train_images, train_labels, test_images, test_labels,
            data_checksum=data_checksum, directory=self.cache_dir, epochs=classifier_epochs,
            device=self.device, log=self.log,
        )  # fmt: skip
        self.classifier_accuracy = self.classifier.test_accuracy
        if backbone == "inception":
            self.backbone: bb.Backbone = bb.load_inception(
                inception_weights, device=self.device, log=self.log
            )
        else:
            self.backbone = self.classifier
        self.batch_size = max(1, min(batch_size, self.backbone.max_batch))

        self._shared = SharedForward(self.backbone, self.classifier)
        self._fid = FrechetInceptionDistance(
            feature=Head(self._shared, 0, self.backbone.num_features),
            reset_real_features=False,
            normalize=False,
        )
        self._fid.set_dtype(torch.float64)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            self._is = InceptionScore(feature=Head(self._shared, 1), splits=IS_SPLITS)
        self._fid.to(self.device)
        self._is.to(self.device)

        weights = _key_hash(self.backbone.weights_sha256, self.classifier.weights_sha256)
        data = _key_hash(data_checksum)
        stem = f"{backbone}-test{self.n_ref}-{data}-{weights}"
        self.reference_path = self.cache_dir / f"fid-ref-{stem}.pt"
        self.features_path = self.cache_dir / f"fid-feats-{stem}.pt"
        self._real_features: Tensor | None = None
        self._manifold: ManifoldMetrics | None = None
        self.floor_path = self.cache_dir / f"fid-floor-{stem}-train{self.fid_samples}.json"
        self._meta = {
            "format": REFERENCE_FORMAT,
            "backbone": backbone,
            "split": "test",
            "n": self.n_ref,
            "data_checksum": data_checksum,
            "weights_sha256": self.backbone.weights_sha256,
            "classifier_sha256": self.classifier.weights_sha256,
        }
        self._test_metrics = self._load_or_compute_reference()
        if self.manifold:  # KID, P&R and D&C compare against them: loaded (or made) up front
            self.real_features()

    # ------------------------------------------------------------------ internals

    def _batches(self, images: Tensor) -> Iterator[Tensor]:
        """``images`` (uint8, or floats clamped to [0, 1]) as float32 batches on the device."""
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"expected images of shape (N, 1, H, W), got {tuple(images.shape)}")
        for i in range(0, len(images), self.batch_size):
            x = images[i : i + self.batch_size].to(self.device)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float().clamp(0.0, 1.0)
            yield x.contiguous()

    @torch.no_grad()
    def _feed(self, images: Tensor, *, real: bool) -> dict[str, Any]:
        """Feed ``images`` to the FID metric (real or generated side) and to IS; return IS and
        coverage of these images (the FID states stay in the metric)."""
        self._is.reset()
        class_logits, features = [], []
        for x in self._batches(images):
            self._fid.update(x, real=real)
            self._is.update(x)
            features.append(self._shared(x)[0].cpu())
            class_logits.append(self._shared(x)[2].cpu())
        self._shared.clear()
        self._last_features = torch.cat(features)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(IS_SEED)
            is_mean, is_std = self._is.compute()
        self._is.reset()
        covered, kl = class_coverage(torch.cat(class_logits))
        return {
            "is_mean": float(is_mean),
            "is_std": float(is_std),
            "classes_covered": covered,
            "class_kl": kl,
        }

    def _fid_of(self, images: Tensor) -> tuple[float, dict[str, Any]]:
        """FID of ``images`` and their other metrics (IS, coverage, KID, P&R, D&C)."""
        self._fid.reset()  # generated side only: reset_real_features=False keeps the reference
        others = self._feed(images, real=False)
        fid = float(self._fid.compute())
        self._fid.reset()
        if not self.manifold:
            return fid, others
        return fid, {**others, **self._manifold_metrics(self._last_features)}

    def real_features(self) -> Tensor:
        """Backbone features (float32, CPU) of the test images the FID reference is made of,
        cached under the cache folder (computed once, under the reference's lock)."""
        if self._real_features is not None:
            return self._real_features
        meta = {**self._meta, "format": FEATURES_FORMAT}
        with files.file_lock(self.features_path):
            record = None
            if self.features_path.exists():
                try:
                    record = torch.load(self.features_path, map_location="cpu", weights_only=True)
                except Exception:  # noqa: BLE001 - a corrupt cache is recomputed
                    record = None
            ok = isinstance(record, dict) and all(record.get(k) == v for k, v in meta.items())
            if not ok or tuple(record["features"].shape) != (
                self.n_ref,
                self.backbone.num_features,
            ):
                parts = []
                for x in self._batches(self.test_images[: self.n_ref]):
                    with torch.no_grad():
                        parts.append(self.backbone.features_and_logits(x)[0].float().cpu())
                record = {**meta, "features": torch.cat(parts)}
                files.atomic_save(record, self.features_path)
        self._real_features = record["features"].float()
        return self._real_features

    def _manifold_metrics(self, fake: Tensor) -> dict[str, Any]:
        """KID, precision/recall and density/coverage of generated features ``fake``."""
        if self._manifold is None:
            self._manifold = ManifoldMetrics(
                self.real_features(), self.kid_subsets, self.kid_subset_size
            )
        return self._manifold(fake)

    def _read_reference(self) -> dict[str, Any] | None:
        if not self.reference_path.exists():
            return None
        try:
            record = torch.load(self.reference_path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a corrupt cache is recomputed
            return None
        if not isinstance(record, dict) or any(record.get(k) != v for k, v in self._meta.items()):
            return None
        d = self.backbone.num_features
        if tuple(record["real_features_cov_sum"].shape) != (d, d):
            return None
        return record

    def _load_or_compute_reference(self) -> dict[str, Any]:
        with files.file_lock(self.reference_path):
            record = self._read_reference()
            if record is not None:
                self.reference_source = f"cache {self.reference_path}"
                self.log(f"reference statistics: loaded from {self.reference_path}")
            else:
                t0 = time.perf_counter()
                self._fid.reset_real_features = True
                self._fid.reset()
                self._fid.reset_real_features = False
                test_metrics = self._feed(self.test_images[: self.n_ref], real=True)
                record = {
                    **self._meta,
                    "real_features_sum": self._fid.real_features_sum.cpu(),
                    "real_features_cov_sum": self._fid.real_features_cov_sum.cpu(),
                    "real_features_num_samples": self._fid.real_features_num_samples.cpu(),
                    **test_metrics,
                }
                files.atomic_save(record, self.reference_path)
                self.reference_source = f"computed, cached at {self.reference_path}"
                self.log(
                    f"reference statistics: {self.backbone_name} on {self.n_ref} test images in "
                    f"{time.perf_counter() - t0:.1f} s, cached at {self.reference_path}"
                )
        self._fid.real_features_sum = record["real_features_sum"].double().to(self.device)
        self._fid.real_features_cov_sum = record["real_features_cov_sum"].double().to(self.device)
        self._fid.real_features_num_samples = record["real_features_num_samples"].to(self.device)
        return {k: record[k] for k in ("is_mean", "is_std", "classes_covered", "class_kl")}

    # ------------------------------------------------------------------ public

    def reference(self) -> dict[str, Any]:
        """The real-data floor, scored like a cell: ``fid``, KID, precision/recall and
        density/coverage of the first ``fid_samples`` training images against the test
        reference; ``is_mean``/``is_std``/``classes_covered``/``class_kl`` of the test reference
        images; plus ``backbone`` and ``fid_samples``. Cached as JSON."""
        n_train = min(self.fid_samples, len(self.train_images))
        try:
            floor = json.loads(self.floor_path.read_text())
            if (
                not isinstance(floor, dict)  # e.g. a file holding null
                or floor.get("meta") != self._meta
                or floor.get("fid_samples") != n_train
                or floor.get("floor_format") != FLOOR_FORMAT
                or (  # KID's settings matter only where KID is scored
                    self.manifold
                    and (
                        floor.get("kid_subsets") != self.kid_subsets
                        or floor.get("kid_subset_size")
                        != min(self.kid_subset_size, n_train, self.n_ref)
                    )
                )
            ):  # another sample count, or a floor from before KID and the k-NN metrics
                floor = None
        except (OSError, ValueError):
            floor = None
        if floor is None:
            fid, train_metrics = self._fid_of(self.train_images[:n_train])
            floor = {
                "meta": self._meta,
                "floor_format": FLOOR_FORMAT,
                "fid": fid,
                **self._test_metrics,
                **{
                    k: train_metrics[k]
                    for k in (*MANIFOLD_METRICS, "kid_subsets", "kid_subset_size")
                    if k in train_metrics
                },
                "backbone": self.backbone_name,
                "fid_samples": n_train,
            }
            files.atomic_write_bytes(self.floor_path, json.dumps(floor, indent=1).encode())
        return {k: v for k, v in floor.items() if k not in ("meta", "floor_format")}

    def score(self, samples: Tensor) -> dict[str, Any]:
        """``fid`` (vs the test reference), ``is_mean``/``is_std`` (10 splits), ``classes_covered``
        and ``class_kl``, ``kid``/``kid_std``, ``precision``/``recall`` and ``density``/
        ``coverage`` of generated ``samples`` (floats in [0, 1], ``(N, 1, 28, 28)``, N >= 2), plus
        how they were computed: ``backbone``, ``fid_samples`` (= N), ``kid_subsets`` and
        ``kid_subset_size``."""
        if len(samples) < 2:
            raise ValueError("score() needs at least 2 samples")
        fid, others = self._fid_of(samples)
        return {"fid": fid, **others, "backbone": self.backbone_name, "fid_samples": len(samples)}
