import gzip
import struct
import types
from pathlib import Path

import numpy as np
import pytest

from ganbench import plugins
from ganbench.hookspecs import hookimpl


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """No test touches the real cache or sees plugin distributions installed on the machine."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "")
    plugins.reset()
    yield
    plugins.reset()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Write ``array`` (uint8) as an IDX file, like the MNIST distribution files."""
    magic = struct.pack(">HBB", 0, 0x08, array.ndim)
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    data = magic + dims + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def float64():
    """Compare in float64: a batched kernel sums in another order than K small ones, and GAN
    training amplifies float32 rounding within a few Adam steps; in float64 any real
    difference in the math still shows, rounding does not."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A directory with the four MNIST IDX files holding 256 train and 64 test random images."""
    rng = np.random.default_rng(0)
    d = tmp_path / "mnist-idx"
    d.mkdir()
    for prefix, n in (("train", 256), ("t10k", 64)):
        write_idx(d / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(d / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), compress=True)
    return d


@pytest.fixture
def add_plugin():
    """``add_plugin(hook, name, factory, distribution)``: an in-process plugin whose ``hook``
    registers ``factory`` under ``name``, added next to the loaded plugins."""

    def add(hook: str, name: str, factory, distribution: str = "ganbench-test") -> None:
        module = types.ModuleType(f"plugin_{hook}_{name}")

        def impl(register):
            register(name, factory)

        setattr(module, hook, hookimpl(impl))
        plugins.add_plugin(module, module.__name__, distribution)

    return add


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised torch-fidelity InceptionV3 state dict, the format that
    ``feature_extractor_weights_path`` loads (``torch.load`` of the module's ``state_dict()``)."""
    pytest.importorskip("torch_fidelity")
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    class Unloaded(fe.FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # keep the random initialisation
            return None

    original = fe.load_state_dict_from_url
    fe.load_state_dict_from_url = lambda *a, **k: {}
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = Unloaded("inception-v3-compat", ["2048"])
    finally:
        fe.load_state_dict_from_url = original
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path
