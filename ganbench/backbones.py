"""Feature extractors ("backbones") that FID and IS are computed on.

Two backbones exist:

``mnist-classifier`` (default)
    A LeNet-style CNN, ``standardise -> conv 3x3 32 -> relu -> maxpool 2 -> conv 3x3 64 -> relu ->
    maxpool 2 -> dense 128 -> relu -> dense 10``, trained by ganbench on the MNIST training split
    the first time it is needed (fixed seed, fixed batch order, deterministic algorithms), cached at
    ``<cache_dir>/mnist-classifier-v1.pt`` with its test accuracy, the checksum of the data it was
    trained on, a version tag and a sha256 of its weights. FID uses its penultimate activations
    (128 features, after the ReLU), IS its 10 logits.

``inception``
    torchmetrics' standard InceptionV3 (``NoTrainInceptionV3``: torch-fidelity's port of the
    TensorFlow FID network), with the 2048-d pool features for FID and the 1008 unbiased logits for
    IS, exactly as torchmetrics' ``FrechetInceptionDistance`` / ``InceptionScore`` defaults use
    them. Weights come from ``--inception-weights PATH`` or torch's hub cache, downloaded there
    when the internet is reachable; offline without them :func:`check_backbone` fails with one line.

Every backbone takes images as floats in ``[0, 1]`` of shape ``(B, 1, H, W)`` and returns
``(features, logits)`` from :meth:`features_and_logits`.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganbench.errors import GanbenchError

Log = Callable[[str], None]

BACKBONES: tuple[str, ...] = ("inception", "mnist-classifier")
DEFAULT_BACKBONE = "mnist-classifier"

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

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_HASH_PREFIX = "6726825d"
INCEPTION_DOWNLOAD_TIMEOUT_S = 30.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """ganbench's cache folder: ``ganbench.mnist.cache_dir()`` where that exists, else
    ``$GANBENCH_CACHE`` or ``~/.cache/ganbench``, read at call time."""
    try:
        from ganbench.mnist import cache_dir as _mnist_cache_dir  # type: ignore[attr-defined]
    except ImportError:
        env = os.environ.get("GANBENCH_CACHE")
        return Path(env).expanduser() if env else Path.home() / ".cache" / "ganbench"
    return Path(_mnist_cache_dir())


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` atomically: temp file in the same folder, fsync, replace."""
    from ganbench.results import atomic_write_with

    atomic_write_with(path, lambda tmp: torch.save(obj, tmp))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise training/extraction of one cache file across processes (no-op without filelock)."""
    try:
        from filelock import FileLock
    except ImportError:  # pragma: no cover - filelock is a dependency
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


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


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


# --------------------------------------------------------------------------- mnist-classifier


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
    log = log or _stderr
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
    log = log or _stderr
    path = classifier_cache_path(directory)
    with _file_lock(path):
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


# --------------------------------------------------------------------------- inception


def _torch_fidelity_available() -> bool:
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        return False
    return True


def inception_hub_path() -> Path:
    """Where torch's hub cache keeps torch-fidelity's InceptionV3 weights (``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME


def _download_inception_weights(dest: Path, url: str | None = None) -> None:
    """Download the weights (default ``INCEPTION_URL``) into ``dest`` (hash-prefix checked, atomic)
    with a socket timeout."""
    url = url or INCEPTION_URL
    dest.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(INCEPTION_DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(
            url, str(dest), hash_prefix=INCEPTION_HASH_PREFIX, progress=False
        )
    finally:
        socket.setdefaulttimeout(previous)


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def resolve_inception_weights(inception_weights: Path | str | None, log: Log | None = None) -> Path:
    """The InceptionV3 weights file to use, or a one-line :class:`GanbenchError` saying what to
    supply. Order: ``inception_weights``; torch's hub cache; a download into the hub cache."""
    log = log or _stderr
    if not _torch_fidelity_available():
        raise GanbenchError(
            "Backbone 'inception' needs the torch-fidelity package: pip install torch-fidelity "
            "(and, offline, --inception-weights PATH)"
        )
    if inception_weights is not None:
        path = Path(inception_weights).expanduser()
        if not path.is_file():
            raise GanbenchError(
                f"--inception-weights {path}: no such file (supply torch-fidelity's "
                f"{INCEPTION_FILENAME}, from {INCEPTION_URL})"
            )
        return path
    path = inception_hub_path()
    if path.is_file():
        return path
    log(f"inception: downloading {INCEPTION_URL} to {path}")
    try:
        _download_inception_weights(path)
    except Exception as e:  # noqa: BLE001 - any failure means: supply the file yourself
        raise GanbenchError(
            f"Backbone 'inception' needs InceptionV3 weights and they could not be downloaded "
            f"({_one_line(e)}); supply --inception-weights PATH (torch-fidelity's "
            f"{INCEPTION_FILENAME}, from {INCEPTION_URL})"
        ) from e
    return path


def _validate_inception_state(path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise GanbenchError(f"--inception-weights {path}: unreadable ({_one_line(e)})") from e
    fc = state.get("fc.weight") if isinstance(state, dict) else None
    if not isinstance(fc, Tensor) or tuple(fc.shape) != (1008, 2048):
        raise GanbenchError(
            f"--inception-weights {path}: not torch-fidelity InceptionV3 weights (a state dict "
            f"with fc.weight of shape (1008, 2048), like {INCEPTION_FILENAME})"
        )


class InceptionBackbone(nn.Module):
    """torchmetrics' ``NoTrainInceptionV3``: 2048-d pool features and 1008 unbiased logits.

    Grayscale is tiled to three channels and ``[0, 1]`` floats become uint8 by
    ``round(255 x)`` (torchmetrics' ``normalize=True`` truncates, ``(255 x).byte()``; rounding
    makes real uint8 images round-trip exactly). Resizing to 299x299 uses torch-fidelity's
    TensorFlow-1-compatible bilinear interpolation (``antialias=False``), as the reference FID
    implementation does (for 28 -> 299 upsampling anti-aliasing would not apply anyway).
    """

    name = "inception"
    num_features = 2048
    max_batch = 50

    def __init__(self, weights_path: Path) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(weights_path),
            antialias=False,
        )
        self.weights_sha256 = file_sha256(weights_path)
        self.source = str(weights_path)
        self.requires_grad_(False).eval()

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(features (B, 2048), logits (B, 1008))`` of ``x`` in [0, 1], ``(B, 1 or 3, H, W)``."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        u8 = (x * 255).round_().clamp_(0, 255).to(torch.uint8)
        features, logits = self.net._torch_fidelity_forward(u8)
        return features.reshape(len(x), -1), logits.reshape(len(x), -1)

    def forward(self, x: Tensor) -> Tensor:
        """Pool features ``(B, 2048)``."""
        return self.features_and_logits(x)[0]


def load_inception(
    inception_weights: Path | str | None = None,
    *,
    device: str | torch.device = "cpu",
    log: Log | None = None,
) -> InceptionBackbone:
    """The ``inception`` backbone on ``device`` (see :func:`resolve_inception_weights`)."""
    log = log or _stderr
    path = resolve_inception_weights(inception_weights, log)
    _validate_inception_state(path)
    backbone = InceptionBackbone(path).to(device)
    log(f"inception: InceptionV3 weights from {path} (sha256 {backbone.weights_sha256[:12]})")
    return backbone


# --------------------------------------------------------------------------- names


def unknown_backbone_error(name: str) -> GanbenchError:
    """``Unknown backbone 'x'. Did you mean 'y'? Available: inception, mnist-classifier``."""
    close = difflib.get_close_matches(name, BACKBONES, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return GanbenchError(f"Unknown backbone '{name}'.{hint} Available: {', '.join(BACKBONES)}")


def check_backbone(
    name: str, inception_weights: Path | str | None = None, log: Log | None = None
) -> None:
    """Fail early (before any training) with a one-line :class:`GanbenchError` when ``name`` is
    unknown or, for ``inception``, when torch-fidelity or the weights cannot be had (this may
    download the weights into torch's hub cache). ``mnist-classifier`` is always available: it is
    trained on first use."""
    if name not in BACKBONES:
        raise unknown_backbone_error(name)
    if name == "inception":
        _validate_inception_state(resolve_inception_weights(inception_weights, log))
