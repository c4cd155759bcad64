"""The ``mnist-classifier`` backbone: a LeNet-style CNN trained by ganbench on the MNIST training
split the first time it is needed (fixed seed, fixed batch order, deterministic algorithms) and
cached at ``<cache_dir>/mnist-classifier-v1.pt`` with its test accuracy, the checksum of the data
it was trained on, a version tag and a sha256 of its weights (see :mod:`.backbones`).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganbench.default_plugins.mnist import Log, log_stderr
from ganbench.files import atomic_save, cache_dir, file_lock

#: The classifier's recipe. Change it (and this tag) together: a cached classifier whose tag differs
#: is retrained.
CLASSIFIER_VERSION = (
    "mnist-classifier/1: norm-c32-pool-c64-pool-fc128-fc10, adam+onecycle(3e-3), bs128"
)
CLASSIFIER_FILENAME = "mnist-classifier-v1.pt"
CLASSIFIER_EPOCHS = 3
#: Mean and std of the MNIST training pixels in [0, 1]: the classifier standardises its input.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CLASSIFIER_SEED = 0
CLASSIFIER_BATCH = 128
CLASSIFIER_MAX_LR = 3e-3
#: The accuracy the issue asks of the classifier on the MNIST test split.
MIN_CLASSIFIER_ACCURACY = 0.99


def state_sha256(state_dict: dict[str, Tensor]) -> str:
    """sha256 over a state dict: for each key in sorted order, its name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class MnistClassifier(nn.Module):
    """LeNet-style MNIST classifier; input floats in [0, 1] of shape (B, 1, 28, 28)."""

    name = "mnist-classifier"
    num_features = 128
    num_classes = 10
    max_batch = 2000

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        # Set by load_classifier / train_classifier.
        self.test_accuracy: float = float("nan")
        self.weights_sha256: str = ""
        self.source: str = "untrained"

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``relu(fc1(...))``: ``(B, 128)``."""
        x = ((x - MNIST_MEAN) / MNIST_STD).contiguous(memory_format=torch.channels_last)
        # relu(maxpool(.)) == maxpool(relu(.)) exactly; pooling first runs relu on 4x fewer values.
        x = F.relu(F.max_pool2d(self.conv1(x), 2), inplace=True)
        x = F.relu(F.max_pool2d(self.conv2(x), 2), inplace=True)
        return F.relu(self.fc1(x.flatten(1)), inplace=True)

    def logits(self, x: Tensor) -> Tensor:
        """Class logits ``(B, 10)``."""
        return self.fc2(self.features(x))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(features (B, 128), logits (B, 10))`` from one forward pass."""
        f = self.features(x)
        return f, self.fc2(f)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(B, 10)``."""
        return self.logits(x)


def _to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; floats pass through."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def classifier_accuracy(
    model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000
) -> float:
    """Fraction of ``images`` (uint8 or [0, 1] floats, (N,1,28,28)) whose argmax is the label."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        x = _to_float(images[i : i + batch_size]).to(device)
        correct += int((model(x).argmax(1).cpu() == labels[i : i + batch_size]).sum())
    return correct / max(len(images), 1)


def train_classifier(
    train_images: Tensor,
    train_labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    *,
    epochs: int = CLASSIFIER_EPOCHS,
    seed: int = CLASSIFIER_SEED,
    batch_size: int = CLASSIFIER_BATCH,
    device: str | torch.device = "cpu",
    log: Log | None = None,
) -> tuple[MnistClassifier, float]:
    """Train a :class:`MnistClassifier` deterministically; return it (eval mode, on CPU) and its
    accuracy on the test split.

    Recipe: cross-entropy, Adam with a one-cycle learning rate (peak 3e-3), batch 128, ``epochs``
    passes over the training split in an order fixed by ``seed``; weights initialised under
    ``torch.manual_seed(seed)`` inside a forked RNG (the caller's RNG state is untouched) and with
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` for the duration.
    """
    log = log or log_stderr
    device = torch.device(device)
    n = len(train_images)
    steps_per_epoch = max(1, (n + batch_size - 1) // batch_size)
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MnistClassifier().to(device).to(memory_format=torch.channels_last)
            order = torch.Generator().manual_seed(seed)
            opt = torch.optim.Adam(model.parameters(), lr=CLASSIFIER_MAX_LR / 25)
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=CLASSIFIER_MAX_LR, total_steps=epochs * steps_per_epoch
            )
            t0 = time.perf_counter()
            for epoch in range(epochs):
                model.train()
                perm = torch.randperm(n, generator=order)
                total = 0.0
                for i in range(steps_per_epoch):
                    idx = perm[i * batch_size : (i + 1) * batch_size]
                    x = _to_float(train_images[idx]).to(device)
                    y = train_labels[idx].long().to(device)
                    loss = F.cross_entropy(model(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += loss.item()
                log(
                    f"mnist-classifier: epoch {epoch + 1}/{epochs} loss "
                    f"{total / steps_per_epoch:.4f} ({time.perf_counter() - t0:.0f} s)"
                )
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    accuracy = classifier_accuracy(model, test_images, test_labels)
    return model, accuracy


def classifier_cache_path(directory: Path | None = None) -> Path:
    """Where the trained classifier is cached."""
    return (directory if directory is not None else cache_dir()) / CLASSIFIER_FILENAME


def _read_cached_classifier(path: Path, data_checksum: str, epochs: int) -> tuple[Any, str]:
    """The cached record if it is valid for this data, version and recipe, else ``(None, why)``."""
    if not path.exists():
        return None, "no cached classifier"
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a corrupt cache file is retrained, not fatal
        return None, f"cached classifier unreadable ({type(e).__name__})"
    if not isinstance(record, dict):
        return None, "cached classifier malformed"
    if record.get("version") != CLASSIFIER_VERSION:
        return None, f"cached classifier has version {record.get('version')!r}"
    if record.get("epochs") != epochs:
        return None, f"cached classifier was trained for {record.get('epochs')} epochs"
    if record.get("data_checksum") != data_checksum:
        return None, "cached classifier was trained on other data (checksum differs)"
    state = record.get("state_dict")
    if not isinstance(state, dict) or state_sha256(state) != record.get("state_sha256"):
        return None, "cached classifier weights fail their checksum"
    return record, ""


def load_classifier(
    train_images: Tensor,
    train_labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    *,
    data_checksum: str,
    directory: Path | None = None,
    epochs: int = CLASSIFIER_EPOCHS,
    device: str | torch.device = "cpu",
    log: Log | None = None,
) -> MnistClassifier:
    """The ``mnist-classifier`` backbone: loaded from the cache when its version tag, epochs, data
    checksum and weights checksum all match, else trained with :func:`train_classifier` and
    cached atomically. Says on ``log`` (default stderr) where it came from and its test accuracy.
    Returned in eval mode on ``device``, with ``test_accuracy``, ``weights_sha256``, ``source``."""
    log = log or log_stderr
    path = classifier_cache_path(directory)
    with file_lock(path):
        record, why = _read_cached_classifier(path, data_checksum, epochs)
        if record is not None:
            model = MnistClassifier()
            model.load_state_dict(record["state_dict"])
            model.test_accuracy = float(record["test_accuracy"])
            model.weights_sha256 = str(record["state_sha256"])
            model.source = f"cache {path}"
            log(
                f"mnist-classifier: loaded from {path} "
                f"(test accuracy {model.test_accuracy:.2%}, sha256 {model.weights_sha256[:12]})"
            )
        else:
            log(
                f"mnist-classifier: {why}; training on {len(train_images)} images "
                f"({epochs} epochs, seed {CLASSIFIER_SEED}; about 25 s an epoch on 2 CPU cores)"
            )
            t0 = time.perf_counter()
            model, accuracy = train_classifier(
                train_images, train_labels, test_images, test_labels,
                epochs=epochs, device=device, log=log,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            model.test_accuracy = accuracy
            model.weights_sha256 = state_sha256(state)
            model.source = f"trained, cached at {path}"
            atomic_save(
                {
                    "version": CLASSIFIER_VERSION,
                    "epochs": epochs,
                    "data_checksum": data_checksum,
                    "state_dict": state,
                    "state_sha256": model.weights_sha256,
                    "test_accuracy": accuracy,
                    "train_seconds": seconds,
                    "torch_version": str(torch.__version__),
                },
                path,
            )
            log(
                f"mnist-classifier: trained in {seconds:.0f} s, test accuracy {accuracy:.2%}, "
                f"cached at {path}"
            )
    if model.test_accuracy < MIN_CLASSIFIER_ACCURACY:
        log(
            f"mnist-classifier: WARNING test accuracy {model.test_accuracy:.2%} is below "
            f"{MIN_CLASSIFIER_ACCURACY:.0%}; its FID/IS are not comparable with the reference"
        )
    # channels_last: about 1.5x faster convolutions on CPU (oneDNN); same weights and outputs.
    return model.to(device).to(memory_format=torch.channels_last).eval().requires_grad_(False)
