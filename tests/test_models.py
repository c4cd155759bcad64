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
