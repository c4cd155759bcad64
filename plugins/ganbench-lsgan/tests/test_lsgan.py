import ganbench_lsgan
import pytest
import torch

from ganbench import registry
from ganbench.testing import check_loss, plugins_loaded


@pytest.fixture(autouse=True)
def only_this_plugin():
    with plugins_loaded("ganbench-lsgan"):
        yield


def test_registered_by_this_package():
    entry = registry.get_loss("lsgan")
    assert (entry.provider, entry.plugin) == ("ganbench-lsgan", "ganbench_lsgan")
    assert entry.factory is ganbench_lsgan.LSGAN


def test_conformance_on_the_kits_pair_and_the_articles_pair():
    check_loss("lsgan")
    check_loss("lsgan", generator="dcgan-mnist", steps=2)


def test_paper_defaults():
    hp = registry.get_loss("lsgan").factory().defaults
    assert (hp.optimizer_g, hp.optimizer_d, hp.lr_g, hp.lr_d) == ("adam", "adam", 2e-4, 2e-4)
    assert (hp.beta1, hp.beta2, hp.n_critic) == (0.5, 0.999, 1)
    assert dict(hp.extras) == {"a": 0.0, "b": 1.0, "c": 1.0}


class Scores(torch.nn.Module):
    """A "discriminator" that returns its input as the score."""

    def forward(self, x):
        return x


def test_losses_are_half_mean_squared_distances_to_the_labels():
    loss = ganbench_lsgan.LSGAN()
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    # D: 1/2 mean((real - 1)^2) + 1/2 mean((fake - 0)^2) = 1/2 * 2 + 1/2 * 2
    assert loss.d_loss(Scores(), real, fake).item() == pytest.approx(2.0)
    # G: 1/2 mean((fake - 1)^2) = 1/2 * 1
    assert loss.g_loss(Scores(), real, fake).item() == pytest.approx(0.5)
    loss.hp = loss.defaults.replace(extras={"a": -1.0, "c": 0.0})
    assert loss.d_loss(Scores(), real, fake).item() == pytest.approx(1.0 + 0.5 * (1 + 9) / 2)
    assert loss.g_loss(Scores(), real, fake).item() == pytest.approx(0.5 * 2.0)
