import pytest
import torch

from ganbench import registry
from ganbench.models import init_weights


@pytest.fixture
def pair():
    torch.manual_seed(0)
    return (
        registry.get_generator("dcgan-mnist").factory(),
        registry.get_discriminator("dcgan-mnist").factory(),
    )


def test_generator_shapes_at_every_layer_match_keras_same_padding(pair):
    G, _ = pair
    x = G.dense(torch.randn(3, 100)).view(-1, 128, 7, 7)
    shapes = []
    for layer in G.deconv:
        x = layer(x)
        if isinstance(layer, torch.nn.ConvTranspose2d):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(128, 7, 7), (64, 14, 14), (1, 28, 28)]


def test_generator_output_in_unit_range(pair):
    G, _ = pair
    out = G(torch.randn(5, 100) * 10)
    assert out.shape == (5, 1, 28, 28)
    assert out.min() >= 0 and out.max() <= 1
    assert G.output_range == (0.0, 1.0) and G.z_dim == 100


def test_discriminator_shapes_features_and_logit(pair):
    _, D = pair
    x = torch.rand(4, 1, 28, 28)
    h = D.conv[0](x)
    assert h.shape == (4, 64, 14, 14)
    f = D.features(x)
    assert f.shape == (4, 128 * 7 * 7)
    logits = D(x)
    assert logits.shape == (4,)
    assert torch.allclose(logits, D.head(f))
    # a logit, not a probability: a large input drives it outside [0, 1]
    assert not isinstance(D.fc, torch.nn.Sigmoid)


def test_init_schemes_differ_and_zero_biases():
    torch.manual_seed(0)
    G = registry.get_generator("dcgan-mnist").factory()
    torch.manual_seed(0)
    init_weights(G, "he")
    w = G.dense[2].weight
    # He uniform bound sqrt(6/fan_in) = sqrt(6/128); Xavier bound sqrt(6/(128+6272)) is 7x smaller.
    assert w.abs().max() > 0.1
    assert G.dense[2].bias.abs().max() == 0
    with pytest.raises(ValueError, match="Unknown init 'lecun'. Available: xavier, he"):
        init_weights(G, "lecun")


def test_bn_pair_differs_from_the_article_only_by_batchnorm_and_tanh():
    torch.manual_seed(0)
    article = registry.get_generator("dcgan-mnist").factory()
    bn = registry.get_generator("dcgan-mnist-bn").factory()
    assert bn.output_range == (-1.0, 1.0) and article.output_range == (0.0, 1.0)
    kinds = [type(m).__name__ for m in bn.modules() if not isinstance(m, torch.nn.Sequential)]
    assert kinds.count("BatchNorm1d") == 2 and kinds.count("BatchNorm2d") == 2
    assert kinds[-1] == "Tanh"
    # every other layer is the article's, with the same shapes
    strip = ("BatchNorm1d", "BatchNorm2d", "Tanh", "Sigmoid")
    shapes = [p.shape for n, p in bn.named_parameters() if "weight" in n and p.dim() > 1]
    assert shapes == [p.shape for n, p in article.named_parameters() if "weight" in n]
    article_kinds = [
        type(m).__name__ for m in article.modules() if not isinstance(m, torch.nn.Sequential)
    ]
    assert [k for k in kinds if k not in strip][1:] == [k for k in article_kinds if k not in strip][
        1:
    ]
    out = bn.eval()(torch.randn(3, 100) * 5)
    assert out.shape == (3, 1, 28, 28) and out.min() >= -1 and out.max() <= 1
    D_bn = registry.get_discriminator("dcgan-mnist-bn").factory()
    D_article = registry.get_discriminator("dcgan-mnist").factory()
    assert type(D_bn) is type(D_article)


def test_bn_pair_carries_dcgan_adam_for_logistic_losses_and_wgan_keeps_its_paper():
    from ganbench.defaults import hyperparams_for
    from ganbench.spec import RunSpec

    G = registry.get_generator("dcgan-mnist-bn").factory()
    spec = RunSpec(losses=("minimax",))
    ns = hyperparams_for(registry.get_loss("non-saturating"), G, spec)
    assert (ns.optimizer_g, ns.lr_g, ns.lr_d, ns.beta1) == ("adam", 2e-4, 2e-4, 0.5)
    wgan = hyperparams_for(registry.get_loss("wgan"), G, spec)
    assert (wgan.optimizer_d, wgan.lr_d, wgan.n_critic, wgan.extras["clip"]) == (
        "rmsprop",
        5e-5,
        5,
        0.01,
    )
    override = hyperparams_for(
        registry.get_loss("minimax"), G, RunSpec(("minimax",), overrides={"lr_g": 1e-3})
    )
    assert (override.lr_g, override.lr_d) == (1e-3, 2e-4)


def test_lite_pairs_keep_their_layout_and_the_lucic_pair_adds_dense_1024_layers():
    """Adding the hidden option left the earlier lite pairs' layers (and so their committed
    generator files) as they were; dcgan-lite-lucic is the wide pair with a Dense 1024 layer in
    G and in D (Lucic et al. 2018), dcgan-lite-dense the same at w = 32."""
    G = registry.get_generator("dcgan-lite-wide").factory()
    D = registry.get_discriminator("dcgan-lite-wide").factory()
    assert [k for k in G.state_dict() if k.endswith("weight")] == [
        "dense.0.weight",
        "dense.1.weight",
        "deconv.0.weight",
        "deconv.1.weight",
        "deconv.3.weight",
    ]
    assert isinstance(D.fc, torch.nn.Linear) and D.fc.in_features == 128 * 7 * 7

    G = registry.get_generator("dcgan-lite-lucic").factory()
    D = registry.get_discriminator("dcgan-lite-lucic").factory()
    assert (G.dense[0].in_features, G.dense[0].out_features) == (100, 1024)
    assert (G.dense[3].in_features, G.dense[3].out_features) == (1024, 128 * 7 * 7)
    dense = [m for m in D.fc if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(128 * 7 * 7, 1024), (1024, 1)]
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28) and D(x).shape == (3,)
    assert D.features(x).shape == (3, 128 * 7 * 7)  # feature matching's features: the convs'
    G = registry.get_generator("dcgan-lite-dense").factory()
    assert (G.width, G.dense[0].out_features, G.dense[3].out_features) == (32, 1024, 64 * 7 * 7)
