"""The ``inception`` backbone: torchmetrics' standard InceptionV3 (``NoTrainInceptionV3``:
torch-fidelity's port of the TensorFlow FID network), its weights from ``--inception-weights PATH``
or torch's hub cache, downloaded there when the internet is reachable (see :mod:`.backbones`).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import torch
from torch import Tensor, nn

from ganbench.default_plugins.mnist import Log, log_stderr
from ganbench.errors import GanbenchError, describe

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_HASH_PREFIX = "6726825d"
INCEPTION_DOWNLOAD_TIMEOUT_S = 30.0


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def resolve_inception_weights(inception_weights: Path | str | None, log: Log | None = None) -> Path:
    """The InceptionV3 weights file to use, or a one-line :class:`GanbenchError` saying what to
    supply. Order: ``inception_weights``; torch's hub cache; a download into the hub cache."""
    log = log or log_stderr
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
            f"({describe(e, whole=True)}); supply --inception-weights PATH (torch-fidelity's "
            f"{INCEPTION_FILENAME}, from {INCEPTION_URL})"
        ) from e
    return path


def _validate_inception_state(path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        why = describe(e, whole=True)
        raise GanbenchError(f"--inception-weights {path}: unreadable ({why})") from e
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
    log = log or log_stderr
    path = resolve_inception_weights(inception_weights, log)
    _validate_inception_state(path)
    backbone = InceptionBackbone(path).to(device)
    log(f"inception: InceptionV3 weights from {path} (sha256 {backbone.weights_sha256[:12]})")
    return backbone


def check_inception(inception_weights: Path | str | None = None, log: Log | None = None) -> None:
    """Fail early with a one-line :class:`GanbenchError` when torch-fidelity or usable weights
    cannot be had (this may download the weights into torch's hub cache)."""
    _validate_inception_state(resolve_inception_weights(inception_weights, log))
