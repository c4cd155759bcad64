import ganbench_wgan_gp
import pytest
import torch
from torch import nn

from ganbench import registry
from ganbench.testing import check_loss, plugins_loaded


@pytest.fixture(autouse=True)
def only_this_plugin():
    with plugins_loaded("ganbench-wgan-gp"):
        yield


def test_registered_by_this_package():
    entry = registry.get_loss("wgan-gp")
    assert (entry.provider, entry.plugin) == ("ganbench-wgan-gp", "ganbench_wgan_gp")
    assert entry.factory is ganbench_wgan_gp.WGANGP


def test_conformance_on_the_kits_pair_and_the_articles_pair():
    check_loss("wgan-gp")
    check_loss("wgan-gp", generator="dcgan-mnist", steps=1)


def test_conformance_under_bf16_autocast():
    check_loss("wgan-gp", precision="bf16", steps=2)


def test_paper_defaults():
    hp = registry.get_loss("wgan-gp").factory().defaults
    assert (hp.optimizer_g, hp.optimizer_d, hp.lr_g, hp.lr_d) == ("adam", "adam", 1e-4, 1e-4)
    assert (hp.beta1, hp.beta2, hp.n_critic, dict(hp.extras)) == (0.0, 0.9, 5, {"lambda": 10.0})


class Linear(nn.Module):
    """D(x) = w·x: its input gradient is w everywhere, so the penalty is (||w|| - 1)^2."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_penalty_of_a_linear_critic_is_exact_and_reaches_its_weights():
    D = Linear([3.0, 4.0])  # ||w|| = 5
    real, fake = torch.rand(6, 2), torch.rand(6, 2)
    penalty = ganbench_wgan_gp.gradient_penalty(D, real, fake, torch.rand(6, 1))
    assert penalty.item() == pytest.approx(16.0)
    penalty.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert D.w.grad.tolist() == pytest.approx([2 * 4 * 3 / 5, 2 * 4 * 4 / 5])


def test_critic_loss_is_wasserstein_gap_plus_lambda_times_penalty():
    D = Linear([0.6, 0.8])  # ||w|| = 1: zero penalty
    loss = ganbench_wgan_gp.WGANGP()
    real, fake = torch.ones(4, 2), torch.zeros(4, 2)
    assert loss.d_loss(D, real, fake).item() == pytest.approx(0.0 - 1.4)
    D2 = Linear([3.0, 4.0])
    assert loss.d_loss(D2, real, fake).item() == pytest.approx(-7.0 + 10 * 16.0)
    assert loss.g_loss(D2, real, fake).item() == pytest.approx(0.0)


def test_penalty_is_computed_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    D = registry.get_discriminator("dcgan-mnist").factory()
    real, fake, eps = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28), torch.rand(4, 1, 1, 1)
    fp32 = ganbench_wgan_gp.gradient_penalty(D, real, fake, eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        same_inputs = ganbench_wgan_gp.gradient_penalty(D, real, fake, eps)
        bf16_fake = ganbench_wgan_gp.gradient_penalty(D, real, fake.bfloat16(), eps)
    assert same_inputs.dtype == bf16_fake.dtype == torch.float32
    assert same_inputs.item() == pytest.approx(fp32.item(), rel=1e-6)
    assert bf16_fake.item() == pytest.approx(fp32.item(), rel=1e-2)  # only fake's rounding
