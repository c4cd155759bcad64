"""FID / IS / coverage math, the evaluator's torchmetrics path, and the backbones' caches.

Fast tests use tiny synthetic digits (a bright bar whose position is the class) and a classifier
trained for one or two epochs on them; ``-m slow`` trains the real classifier on real MNIST.
"""

from __future__ import annotations

import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor, nn

from ganbench.default_plugins.mnist import backbones as bb
from ganbench.default_plugins.mnist import classifier, inception
from ganbench.default_plugins.mnist.evaluation import IS_SEED, ImageEvaluator
from ganbench.errors import GanbenchError
from ganbench.metrics import class_coverage, frechet_distance, gaussian_stats, inception_score

_REAL_CACHE = os.environ.get("GANBENCH_CACHE") or str(Path.home() / ".cache" / "ganbench")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "ganbench-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def synthetic_digits(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """uint8 (n,1,28,28) noise images with a bright 10x5 bar whose position encodes the label."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.randint(0, 60, (n, 1, 28, 28), generator=g).to(torch.uint8)
    for c in range(10):
        r, col = (c // 5) * 14 + 2, (c % 5) * 5 + 1
        images[labels == c, 0, r : r + 10, col : col + 5] = 255
    return images, labels


TRAIN = synthetic_digits(300, seed=1)
TEST = synthetic_digits(200, seed=2)


def make_evaluator(cache: Path, **kwargs) -> ImageEvaluator:
    options = dict(
        backbone="mnist-classifier",
        train_images=TRAIN[0],
        train_labels=TRAIN[1],
        test_images=TEST[0],
        test_labels=TEST[1],
        data_checksum="synthetic-1",
        fid_samples=200,
        cache_dir=cache,
        log=lambda m: None,
        batch_size=64,
        classifier_epochs=2,
    )
    options.update(kwargs)
    return ImageEvaluator(**options)


def scipy_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Independent FID: numpy mean/cov (N - 1) and scipy's matrix square root."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    with warnings.catch_warnings():  # dead ReLU units make the covariances singular
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians() -> None:
    g = torch.Generator().manual_seed(0)
    mu1, mu2 = torch.randn(6, generator=g).double(), torch.randn(6, generator=g).double()
    s1 = torch.rand(6, generator=g).double() + 0.1
    s2 = torch.rand(6, generator=g).double() * 3 + 0.1
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum()
    got = frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2))
    assert got == pytest.approx(float(expected), rel=1e-10)
    # 1-d by hand: (0 - 3)^2 + 1 + 4 - 2 * sqrt(1 * 4) = 10
    one = torch.ones(1, 1)
    got = frechet_distance(torch.zeros(1), one, torch.full((1,), 3.0), 4 * one)
    assert got == pytest.approx(10.0, rel=1e-12)


def test_frechet_distance_of_full_covariances_matches_scipy() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g) @ torch.randn(8, 8)
    mu1, s1 = gaussian_stats(a)
    mu2, s2 = gaussian_stats(b + 0.5)
    assert s1.dtype == torch.float64
    expected = scipy_fid(a.double().numpy(), (b + 0.5).double().numpy())
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero() -> None:
    f = torch.randn(300, 16, generator=torch.Generator().manual_seed(2)) * 3 + 1
    mu, sigma = gaussian_stats(f)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8
    assert frechet_distance(mu, sigma, mu + 1, sigma) == pytest.approx(16.0, rel=1e-8)


# ----------------------------------------------------------------------------- Inception Score


def confident(labels: Tensor, k: int = 10) -> Tensor:
    return torch.nn.functional.one_hot(labels, k).double()


def test_inception_score_of_confident_uniform_predictions_is_k() -> None:
    mean, std = inception_score(confident(torch.arange(1000) % 10), splits=10)
    assert mean == pytest.approx(10.0, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_one_class_is_one() -> None:
    mean, std = inception_score(confident(torch.full((1000,), 3)), splits=10)
    assert mean == pytest.approx(1.0, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)
    # uninformative (uniform) predictions score 1 too
    mean, _ = inception_score(torch.full((100, 10), 0.1), splits=10)
    assert mean == pytest.approx(1.0, rel=1e-12)


class _Identity(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save")
def test_torchmetrics_inception_score_equals_ours_on_its_shuffle() -> None:
    from torchmetrics.image.inception import InceptionScore

    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    metric = InceptionScore(feature=_Identity(), splits=10)
    metric.update(logits)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(IS_SEED)
        tm_mean, tm_std = metric.compute()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(IS_SEED)
        perm = torch.randperm(500)
    mean, std = inception_score(logits[perm].softmax(1), splits=10)
    assert float(tm_mean) == pytest.approx(mean, rel=1e-10)
    assert float(tm_std) == pytest.approx(std, rel=1e-8)
    # perfectly confident, uniformly spread logits through torchmetrics: exactly 10 per split
    # only if the shuffle keeps each split uniform, so compare with ours on the same shuffle
    big = 1000 * confident(torch.arange(1000) % 10)
    metric = InceptionScore(feature=_Identity(), splits=10)
    metric.update(big)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(IS_SEED)
        tm_mean, _ = metric.compute()
    assert 9.0 < float(tm_mean) <= 10.0 + 1e-9


# ----------------------------------------------------------------------------- coverage


def test_coverage_uniform_and_single_class() -> None:
    covered, kl = class_coverage(confident(torch.arange(1000) % 10))
    assert covered == 10
    assert kl == pytest.approx(0.0, abs=1e-12)
    covered, kl = class_coverage(confident(torch.full((1000,), 7)))
    assert covered == 1
    assert kl == pytest.approx(math.log(10), rel=1e-12)


def test_coverage_threshold_is_one_percent_for_ten_classes() -> None:
    # 9 of 1000 samples (0.9%) in class 0: not covered; 10 (1.0%) in class 1: covered
    labels = torch.cat([torch.zeros(9), torch.ones(10), torch.full((981,), 2)]).long()
    covered, kl = class_coverage(confident(labels))
    assert covered == 2
    h = torch.tensor([9, 10, 981], dtype=torch.float64) / 1000
    assert kl == pytest.approx(float((h * (h * 10).log()).sum()), rel=1e-10)


# ----------------------------------------------------------------------------- classifier cache


@pytest.fixture
def count_trainings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = bb.train_classifier

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier, "train_classifier", counting)
    return calls


def _load(cache: Path, checksum: str, log: list[str] | None = None) -> bb.MnistClassifier:
    return bb.load_classifier(
        *TRAIN, *TEST, data_checksum=checksum, directory=cache, epochs=1,
        log=(log.append if log is not None else lambda m: None),
    )  # fmt: skip


def test_classifier_cache_reused_and_invalidated(
    tmp_path: Path, count_trainings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    first = _load(tmp_path, "data-A", log)
    assert len(count_trainings) == 1
    assert (tmp_path / "mnist-classifier-v1.pt").exists()
    assert any("trained in" in m and "test accuracy" in m for m in log)
    x = TEST[0][:8].float() / 255
    assert first.features(x).shape == (8, 128)
    assert first.logits(x).shape == (8, 10)

    log.clear()
    again = _load(tmp_path, "data-A", log)
    assert len(count_trainings) == 1, "same data and version: the cache is reused"
    assert any(m.startswith("mnist-classifier: loaded from") for m in log)
    assert again.weights_sha256 == first.weights_sha256
    assert again.test_accuracy == first.test_accuracy
    assert torch.equal(again.logits(x), first.logits(x))

    _load(tmp_path, "data-B")
    assert len(count_trainings) == 2, "data checksum changed: retrained"
    _load(tmp_path, "data-B")
    assert len(count_trainings) == 2

    monkeypatch.setattr(classifier, "CLASSIFIER_VERSION", bb.CLASSIFIER_VERSION + "+test")
    _load(tmp_path, "data-B")
    assert len(count_trainings) == 3, "version tag changed: retrained"
    _load(tmp_path, "data-B")
    assert len(count_trainings) == 3
    # training is deterministic: the same data and recipe give bit-identical weights
    assert _load(tmp_path / "fresh", "data-A").weights_sha256 == first.weights_sha256


def test_classifier_cache_with_tampered_weights_is_retrained(
    tmp_path: Path, count_trainings: list[int]
) -> None:
    _load(tmp_path, "data-A")
    path = tmp_path / bb.CLASSIFIER_FILENAME
    record = torch.load(path, weights_only=True)
    record["state_dict"]["fc2.bias"] += 1.0
    torch.save(record, path)
    _load(tmp_path, "data-A")
    assert len(count_trainings) == 2
    path.write_bytes(b"not a checkpoint")
    _load(tmp_path, "data-A")
    assert len(count_trainings) == 3


def test_cache_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "elsewhere"))
    assert bb.cache_dir() == tmp_path / "elsewhere"
    assert bb.classifier_cache_path() == tmp_path / "elsewhere" / bb.CLASSIFIER_FILENAME


# ----------------------------------------------------------------------------- evaluator


def test_evaluator_fid_equals_independent_scipy_computation(tmp_path: Path) -> None:
    ev = make_evaluator(tmp_path)
    g = torch.Generator().manual_seed(5)
    samples = (TEST[0].float() / 255 + 0.3 * torch.rand(200, 1, 28, 28, generator=g)).clamp(0, 1)
    samples = samples[torch.randperm(200, generator=g)][:150]
    result = ev.score(samples)
    assert set(result) == {
        "fid", "is_mean", "is_std", "classes_covered", "class_kl", "backbone", "fid_samples",
        "kid", "kid_std", "precision_k3", "recall_k3", "density_k5", "coverage_k5", "kid_subsets",
        "kid_subset_size",
    }  # fmt: skip
    assert result["backbone"] == "mnist-classifier"
    assert result["fid_samples"] == 150

    clf = ev.classifier

    def feats(images: Tensor) -> np.ndarray:
        with torch.no_grad():
            out = [clf.features(images[i : i + 64]) for i in range(0, len(images), 64)]
        return torch.cat(out).double().numpy()

    expected = scipy_fid(feats(TEST[0].float() / 255), feats(samples))
    assert expected > 1.0
    assert result["fid"] == pytest.approx(expected, rel=1e-6)

    # IS and coverage equal the pure functions on the classifier's outputs (IS on the same shuffle)
    with torch.no_grad():
        logits = clf.logits(samples).double()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(IS_SEED)
        perm = torch.randperm(150)
    is_mean, is_std = inception_score(logits[perm].softmax(1))
    assert result["is_mean"] == pytest.approx(is_mean, rel=1e-6)
    assert result["is_std"] == pytest.approx(is_std, rel=1e-4)
    assert (result["classes_covered"], result["class_kl"]) == pytest.approx(class_coverage(logits))
    # FID of the reference images themselves is ~0; repeated scoring is reproducible
    assert abs(ev.score(TEST[0].float() / 255)["fid"]) < 1e-6
    assert ev.score(samples) == result


def test_reference_floor_and_stats_cache_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs: list[str] = []
    first = make_evaluator(tmp_path, log=logs.append)
    floor = first.reference()
    assert set(floor) == {
        "fid", "is_mean", "is_std", "classes_covered", "class_kl", "backbone", "fid_samples",
        "kid", "kid_std", "precision_k3", "recall_k3", "density_k5", "coverage_k5", "kid_subsets",
        "kid_subset_size",
    }  # fmt: skip
    assert floor["backbone"] == "mnist-classifier" and floor["fid_samples"] == 200
    assert floor["classes_covered"] == 10 and floor["class_kl"] < 0.01
    assert first.reference_path.exists()

    fed: list[bool] = []
    real_feed = ImageEvaluator._feed

    def counting_feed(self, images, *, real):
        fed.append(real)
        return real_feed(self, images, real=real)

    monkeypatch.setattr(ImageEvaluator, "_feed", counting_feed)
    logs.clear()
    second = make_evaluator(tmp_path, log=logs.append)
    assert fed == [], "reference statistics came from the cache"
    assert any(m.startswith("reference statistics: loaded from") for m in logs)
    assert second.reference() == floor
    assert fed == [], "the floor came from the cache too"
    samples = TEST[0][:100].float() / 255
    assert second.score(samples) == first.score(samples)
    assert fed == [False, False], "a cell extracts only its generated samples"

    # another sample count is another reference
    third = make_evaluator(tmp_path, fid_samples=100)
    assert third.reference_path != first.reference_path
    assert third.n_ref == 100


def test_unknown_backbone_suggests_the_closest(tmp_path: Path, count_trainings: list[int]) -> None:
    with pytest.raises(GanbenchError) as e:
        bb.check_backbone("mnist-clasifier")
    assert str(e.value) == (
        "Unknown backbone 'mnist-clasifier'. Did you mean 'mnist-classifier'? "
        "Available: inception, mnist-classifier"
    )
    with pytest.raises(GanbenchError, match="Did you mean 'inception'"):
        make_evaluator(tmp_path, backbone="incepton")
    assert count_trainings == []
    bb.check_backbone("mnist-classifier")


# ----------------------------------------------------------------------------- inception


def test_inception_offline_without_weights_fails_early_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_trainings: list[int]
) -> None:
    pytest.importorskip("torch_fidelity")
    monkeypatch.setattr(inception, "INCEPTION_URL", "http://127.0.0.1:9/weights-inception.pth")
    with pytest.raises(GanbenchError) as e:
        bb.check_backbone("inception", None)
    message = str(e.value)
    assert "\n" not in message
    assert "--inception-weights PATH" in message
    with pytest.raises(GanbenchError, match="--inception-weights PATH"):
        make_evaluator(tmp_path, backbone="inception")
    assert count_trainings == [], "failed before training anything"
    with pytest.raises(GanbenchError, match="no such file"):
        bb.check_backbone("inception", tmp_path / "missing.pth")


def test_inception_without_torch_fidelity_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inception, "_torch_fidelity_available", lambda: False)
    with pytest.raises(GanbenchError, match="pip install torch-fidelity"):
        bb.check_backbone("inception", None)


def test_inception_backbone_from_a_weights_file(random_inception_weights: Path) -> None:
    bb.check_backbone("inception", random_inception_weights)
    backbone = bb.load_inception(random_inception_weights, log=lambda m: None)
    assert backbone.weights_sha256 == bb.file_sha256(random_inception_weights)
    x = TEST[0][:2].float() / 255
    features, logits = backbone.features_and_logits(x)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all()
    # grayscale is tiled to 3 channels: same as passing the RGB image
    rgb_features, _ = backbone.features_and_logits(x.expand(-1, 3, -1, -1))
    assert torch.allclose(features, rgb_features)


def test_inception_rejects_a_wrong_weights_file(tmp_path: Path) -> None:
    pytest.importorskip("torch_fidelity")
    path = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(10, 128)}, path)
    with pytest.raises(GanbenchError, match="not torch-fidelity InceptionV3 weights"):
        bb.check_backbone("inception", path)


@pytest.mark.slow
def test_inception_evaluator_end_to_end(tmp_path: Path, random_inception_weights: Path) -> None:
    ev = make_evaluator(
        tmp_path, backbone="inception", inception_weights=random_inception_weights, fid_samples=20
    )
    floor = ev.reference()
    assert floor["backbone"] == "inception" and floor["fid_samples"] == 20
    result = ev.score(torch.rand(20, 1, 28, 28))
    assert result["backbone"] == "inception" and math.isfinite(result["fid"])
    assert 1.0 - 1e-9 <= result["is_mean"] <= 1008  # IS >= 1 up to rounding
    # coverage comes from the mnist-classifier, also under inception
    assert 1 <= result["classes_covered"] <= 10


# ----------------------------------------------------------------------------- real MNIST


@pytest.mark.slow
def test_real_classifier_reaches_99_percent_and_floor_is_sane(tmp_path: Path) -> None:
    from ganbench.default_plugins.mnist.data import load_mnist

    real_data = Path(_REAL_CACHE) / "mnist-v1.pt"  # read-only: saves a download
    if real_data.exists():
        target = Path(os.environ["GANBENCH_CACHE"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(real_data, target / real_data.name)
    m = load_mnist()
    logs: list[str] = []
    ev = ImageEvaluator(
        backbone="mnist-classifier",
        train_images=m.train_images,
        train_labels=m.train_labels,
        test_images=m.test_images,
        test_labels=m.test_labels,
        data_checksum=m.checksum,
        cache_dir=tmp_path,
        log=logs.append,
    )
    assert ev.classifier_accuracy >= 0.99, logs
    assert bb.classifier_accuracy(ev.classifier, m.test_images, m.test_labels) >= 0.99
    floor = ev.reference()
    assert floor["fid_samples"] == 10000
    assert floor["classes_covered"] == 10 and floor["class_kl"] < 0.01
    assert floor["is_mean"] > 9.0
    noise = ev.score(torch.rand(10000, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert noise["fid"] > 100 * floor["fid"]


def test_one_backbone_forward_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ev = make_evaluator(tmp_path)
    calls: list[int] = []
    forward = ev.classifier.features_and_logits

    def counting(x: Tensor) -> tuple[Tensor, Tensor]:
        calls.append(len(x))
        return forward(x)

    monkeypatch.setattr(ev.classifier, "features_and_logits", counting)
    ev.score(torch.rand(150, 1, 28, 28))
    assert calls == [64, 64, 22], "FID, IS and coverage share one forward pass per batch"
