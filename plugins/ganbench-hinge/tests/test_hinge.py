import ganbench_hinge
import pytest
import torch

from ganbench import registry
from ganbench.testing import check_loss, plugins_loaded


@pytest.fixture(autouse=True)
def only_this_plugin():
    with plugins_loaded("ganbench-hinge"):
        yield


def test_registered_by_this_package():
    entry = registry.get_loss("hinge")
    assert (entry.provider, entry.plugin) == ("ganbench-hinge", "ganbench_hinge")
    assert entry.factory is ganbench_hinge.Hinge


def test_conformance_on_the_kits_pair_and_the_articles_pair():
    check_loss("hinge")
    check_loss("hinge", generator="dcgan-mnist", steps=1)


def test_sngan_defaults():
    hp = registry.get_loss("hinge").factory().defaults
    assert (hp.optimizer_g, hp.optimizer_d, hp.lr_g, hp.lr_d) == ("adam", "adam", 2e-4, 2e-4)
    assert (hp.beta1, hp.beta2, hp.n_critic, dict(hp.extras)) == (0.0, 0.9, 5, {})


class Scores(torch.nn.Module):
    def forward(self, x):
        return x


def test_hinge_values_and_margins():
    loss = ganbench_hinge.Hinge()
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 1.0])
    # relu(1 - real) = [0, 0.5, 2] -> 2.5/3 ; relu(1 + fake) = [0, 1, 2] -> 1
    assert loss.d_loss(Scores(), real, fake).item() == pytest.approx(2.5 / 3 + 1.0)
    assert loss.g_loss(Scores(), real, fake).item() == pytest.approx(2.0 / 3)
    # beyond the margins (real > 1, fake < -1) D gets no gradient
    r, f = torch.tensor([1.5], requires_grad=True), torch.tensor([-1.5], requires_grad=True)
    loss.d_loss(Scores(), r, f).backward()
    assert (r.grad.item(), f.grad.item()) == (0.0, 0.0)
