import math

import pytest
import torch
from torch import nn

from ganbench import losses as L
from ganbench import registry


def test_logistic_d_loss_is_2log2_when_d_is_half_everywhere():
    zeros = torch.zeros(16)
    assert L.logistic_d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))


def test_logistic_terms_match_probability_form_and_stay_finite_when_saturated():
    logits = torch.tensor([-3.0, 0.5, 2.0])
    d = torch.sigmoid(logits)
    expected = -(torch.log(d).mean() + torch.log(1 - d).mean())
    assert L.logistic_d_loss(logits, logits).item() == pytest.approx(expected.item(), rel=1e-6)
    # log(sigmoid(-200)) underflows to -inf; the softplus form gives the exact 200.
    huge = torch.tensor([-200.0])
    assert L.non_saturating_g_loss(huge).item() == pytest.approx(200.0)
    assert torch.isfinite(L.logistic_d_loss(huge, -huge))


def _grad(fn, logit: float) -> float:
    x = torch.tensor([logit], requires_grad=True)
    fn(x).backward()
    return x.grad.item()


def test_minimax_gradient_vanishes_when_d_rejects_fakes_but_non_saturating_does_not():
    # D(G(z)) = sigmoid(-20) ~ 2e-9: the saturating loss gives G almost no gradient.
    assert abs(_grad(L.minimax_g_loss, -20.0)) < 1e-8
    assert abs(_grad(L.non_saturating_g_loss, -20.0)) == pytest.approx(1.0, rel=1e-6)


def test_minimax_and_non_saturating_values():
    logits = torch.tensor([0.0, 1.0])
    d = torch.sigmoid(logits)
    assert L.minimax_g_loss(logits).item() == pytest.approx(torch.log(1 - d).mean().item())
    assert L.non_saturating_g_loss(logits).item() == pytest.approx(-torch.log(d).mean().item())


def test_feature_matching_is_zero_for_equal_features_and_squared_distance_otherwise():
    f = torch.randn(32, 7)
    assert L.feature_matching_loss(f, f.clone()).item() == 0.0
    shifted = f + torch.tensor([1.0, 0, 0, 2.0, 0, 0, 0])
    assert L.feature_matching_loss(f, shifted).item() == pytest.approx(5.0, rel=1e-5)


def test_wasserstein_losses():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert L.wasserstein_critic_loss(real, fake).item() == pytest.approx(-(3.0 - 0.0))
    assert L.wasserstein_g_loss(fake).item() == pytest.approx(0.0)


def test_wgan_clips_every_critic_weight_after_a_step():
    wgan = registry.get_loss("wgan").factory()
    D = registry.get_discriminator("dcgan-mnist").factory()
    opt = torch.optim.RMSprop(D.parameters(), lr=0.1)
    real, fake = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    loss = wgan.d_loss(D, real, fake)
    loss.backward()
    opt.step()
    assert max(p.abs().max().item() for p in D.parameters()) > 0.01  # the step left the box
    wgan.after_d_step(D)
    assert max(p.abs().max().item() for p in D.parameters()) <= 0.01


def test_paper_defaults():
    wgan = registry.get_loss("wgan").factory().defaults
    assert (wgan.optimizer_d, wgan.lr_d, wgan.n_critic, wgan.extras["clip"]) == (
        "rmsprop",
        5e-5,
        5,
        0.01,
    )
    for name in ("minimax", "non-saturating", "feature-matching"):
        hp = registry.get_loss(name).factory().defaults
        assert (hp.optimizer_g, hp.lr_g, hp.beta1, hp.n_critic) == ("adam", 1e-3, 0.9, 1)


def test_feature_matching_g_loss_uses_discriminator_features_and_reaches_g_only():
    fm = registry.get_loss("feature-matching").factory()
    D = registry.get_discriminator("dcgan-mnist").factory()
    fake_src = torch.rand(4, 1, 28, 28, requires_grad=True)
    real = torch.rand(4, 1, 28, 28)
    loss = fm.g_loss(D, real, fake_src)
    expected = L.feature_matching_loss(D.features(real), D.features(fake_src))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert fake_src.grad is not None and fake_src.grad.abs().sum() > 0


def test_hyperparams_replace_merges_extras():
    hp = L.Hyperparams(extras={"clip": 0.01, "other": 1.0})
    new = hp.replace(lr_g=0.5, extras={"clip": 0.02})
    assert new.lr_g == 0.5 and dict(new.extras) == {"clip": 0.02, "other": 1.0}
    assert dict(hp.extras)["clip"] == 0.01


def test_every_registered_loss_gives_finite_scalars():
    D = registry.get_discriminator("dcgan-mnist").factory()
    real, fake = torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28)
    for name in registry.names("loss"):
        loss = registry.get_loss(name).factory()
        for value in (loss.d_loss(D, real, fake), loss.g_loss(D, real, fake)):
            assert value.shape == () and torch.isfinite(value), name
        assert isinstance(D, nn.Module)
