"""Every bad input is one line naming the value and what is valid, exit 2, before any training."""

import gzip

import numpy as np
import pytest
import torch
from conftest import write_idx
from torch import nn

from ganbench import plugins
from ganbench.cli import main
from ganbench.default_plugins.dcgan_mnist import DcganMnistGenerator
from ganbench.hookspecs import hookimpl

FAST = ["--steps", "2", "--batch-size", "4", "--fid-samples", "0"]


def run(data_dir, out, *args):
    return main(["run", "--data-dir", str(data_dir), "--out", str(out), *FAST, *args])


def the_error(capsys) -> str:
    """The one error line; also checks nothing else looks like an error or a traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ganbench: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0].removeprefix("ganbench: error: ")


def assert_nothing_trained(out):
    assert not (out / "runs.csv").exists()
    assert not (out / "checkpoints").exists() and not (out / "samples").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "-3"], "--steps must be a positive number, got -3"),
        (["--defaults", "bogus"], "Unknown --defaults 'bogus'. Available: pair, tuned, paper"),
        (["--batch-size", "0"], "--batch-size must be a positive number, got 0"),
        (["--lr", "0"], "--lr must be a positive number, got 0.0"),
        (["--lr", "nan"], "--lr must be a positive number, got nan"),
        (["--seed", "-1"], "--seed must be a whole number in [0, 4294967295], got -1"),
        (
            ["--seed", "99999999999999999999"],
            "--seed must be a whole number in [0, 4294967295], got 99999999999999999999",
        ),
        (["--fid-samples", "1"], "--fid-samples must be 0 (no evaluation) or at least 2, got 1"),
        (
            ["--fid-samples", "10", "--eval-every-samples", "1"],
            "--eval-every-samples must be at least 2, got 1",
        ),
        (
            ["--loss-param", "clp=0.02"],
            "Unknown --loss-param 'clp' for minimax. Valid keys: (none: these losses take no "
            "--loss-param)",
        ),
        (["--lr-d", "nan"], "--lr-d must be a positive number, got nan"),
        (["--n-critic", "0"], "--n-critic must be a positive number, got 0"),
        (["--log-every", "0"], "--log-every must be a positive number, got 0"),
        (
            ["--checkpoint-every", "-1"],
            "--checkpoint-every must be 0 (no checkpoints) or more, got -1",
        ),
        (["--batch-size", "257"], "--batch-size 257 is larger than dataset 'mnist' (256 samples)"),
        (
            ["--dataset", "mnits"],
            "Unknown dataset 'mnits'. Did you mean 'mnist'? Available: grid25, mnist, ring8, "
            "stacked-mnist",
        ),
        (["--device", "tpu"], "Unknown device 'tpu'. Available: auto, cpu, cuda"),
    ],
)
def test_bad_numbers_and_names(tiny_mnist, tmp_path, capsys, args, message):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax", *args) == 2
    assert the_error(capsys) == message
    assert_nothing_trained(out)


def test_unwritable_out(tiny_mnist, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert run(tiny_mnist, blocker / "res", "--loss", "minimax") == 2
    assert the_error(capsys) == (
        f"Output directory '{blocker / 'res'}' is not writable: Not a directory"
    )


# ---- model pairs that do not fit: caught by one dry forward ------------------------------------


class Small(DcganMnistGenerator):
    """Says (1, 28, 28) but makes 14x14 images."""

    def forward(self, z):
        return nn.functional.avg_pool2d(super().forward(z), 2)


class Crashes(DcganMnistGenerator):
    def forward(self, z):
        raise ValueError("weights file missing\nsecond line")


class RgbCritic(nn.Module):
    """Expects 3-channel images."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.LazyLinear(1)

    def features(self, x):
        return torch.flatten(self.conv(x), 1)

    def head(self, f):
        return self.fc(f).squeeze(1)

    def forward(self, x):
        return self.head(self.features(x))


class TwoScores(RgbCritic):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)

    def head(self, f):
        return torch.stack([f.sum(1), f.mean(1)], 1)


class Misfits:
    @hookimpl
    def register_generators(self, register):
        register("small", Small)
        register("crashes", Crashes)

    @hookimpl
    def register_discriminators(self, register):
        register("rgb", RgbCritic)
        register("two-scores", TwoScores)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (
            ["--generator", "small", "--discriminator", "dcgan-mnist"],
            "Generator 'small' makes samples of shape (1, 14, 14), but dataset 'mnist' has "
            "samples of shape (1, 28, 28)",
        ),
        (
            ["--generator", "dcgan-mnist", "--discriminator", "rgb"],
            "Discriminator 'rgb' cannot take generator 'dcgan-mnist''s output of shape "
            "(1, 28, 28): Given groups=1, weight of size [8, 3, 3, 3], expected "
            "input[2, 1, 28, 28] to have 3 channels, but got 1 channels instead",
        ),
        (
            ["--generator", "dcgan-mnist", "--discriminator", "two-scores"],
            "Discriminator 'two-scores' must return one score per sample, shape (batch,), but "
            "returned (2, 2)",
        ),
        (
            ["--generator", "crashes", "--discriminator", "dcgan-mnist"],
            "Generator 'crashes' fails on a dry forward of 2 noise vectors (z_dim 100): "
            "weights file missing",
        ),
    ],
)
def test_model_pair_that_does_not_fit(tiny_mnist, tmp_path, capsys, models, message):
    plugins.add_plugin(Misfits(), "misfits")
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax", *models) == 2
    assert the_error(capsys) == message
    assert_nothing_trained(out)


# ---- broken IDX files, at the command line ------------------------------------------------------


def _truncate(d):
    path = d / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    return f"{path}: truncated: header says 256x28x28 = 200704 bytes of data, file has 200604"


def _bad_magic(d):
    path = d / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x03" + path.read_bytes()[4:])
    return (
        f"{path}: bad magic number 0x00000d03 (data type byte 0x0d, expected 0x08 (unsigned "
        "byte)); expected 0x00000801 (labels) or 0x00000803 (images)"
    )


def _count_mismatch(d):
    (d / "train-labels-idx1-ubyte.gz").unlink()
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(255, np.uint8), compress=True)
    return (
        f"count mismatch: {d / 'train-images-idx3-ubyte'} has 256 images but "
        f"{d / 'train-labels-idx1-ubyte.gz'} has 255 labels"
    )


def _corrupt_gzip(d):
    path = d / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"x" * 100)[:-8] + b"\0" * 8)  # wrong CRC and length
    return f"{path}: corrupt gzip data: "


@pytest.mark.parametrize("damage", [_truncate, _bad_magic, _count_mismatch, _corrupt_gzip])
def test_broken_idx_files(tiny_mnist, tmp_path, capsys, damage):
    expected = damage(tiny_mnist)
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 2
    assert the_error(capsys).startswith(expected)
    assert_nothing_trained(out)
