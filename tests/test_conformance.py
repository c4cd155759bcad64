"""The conformance kit (ganbench.testing) over every registered loss, model and dataset -- the
built-ins and the three example plugins in plugins/, loaded in-process -- and against
deliberately wrong objects, which must fail with a message that says what is wrong."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ganbench import losses as L
from ganbench import plugins, registry
from ganbench.datasets import Dataset
from ganbench.default_plugins.losses import NonSaturating
from ganbench.errors import GanbenchError
from ganbench.testing import (
    TinyDiscriminator,
    TinyGenerator,
    check_dataset,
    check_discriminator,
    check_generator,
    check_loss,
    check_model_pair,
    plugins_loaded,
)

EXAMPLES = sorted((Path(__file__).parents[1] / "plugins").glob("ganbench-*/ganbench_*.py"))


def add_examples() -> None:
    """Register the example plugin modules in-process, each under its distribution's name."""
    for path in EXAMPLES:
        name = f"example_{path.stem}"
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        plugins.add_plugin(sys.modules[name], name, distribution=path.parent.name)


def registered(kind: str) -> list[str]:
    with plugins_loaded():  # built-ins only, whatever is installed on this machine
        add_examples()
        return registry.names(kind)


@pytest.fixture(autouse=True)
def examples():
    add_examples()


def test_the_three_examples_are_found_and_registered():
    assert [p.parent.name for p in EXAMPLES] == [
        "ganbench-hinge",
        "ganbench-lsgan",
        "ganbench-wgan-gp",
    ]
    providers = {n: registry.get_loss(n).provider for n in ("hinge", "lsgan", "wgan-gp")}
    assert providers == {n: f"ganbench-{n}" for n in providers}


@pytest.mark.parametrize("name", registered("loss"))
def test_every_registered_loss_conforms(name):
    check_loss(name)


def test_gradient_penalty_conforms_on_the_articles_conv_pair_in_fp32_and_bf16():
    check_loss("wgan-gp", generator="dcgan-mnist", steps=1)
    check_loss("wgan-gp", precision="bf16", steps=1)


@pytest.mark.parametrize("name", registered("generator"))
def test_every_registered_model_pair_conforms(name):
    check_model_pair(name)


def test_the_kits_own_tiny_pair_conforms():
    check_model_pair(TinyGenerator, TinyDiscriminator)


@pytest.mark.parametrize("name", registered("dataset"))
def test_every_registered_dataset_conforms(name, tiny_mnist):
    check_dataset(name, tiny_mnist)


# ---- deliberately wrong losses -----------------------------------------------------------------


class VectorD(NonSaturating):
    def d_loss(self, D, real, fake):
        return nn.functional.softplus(-D(real)) + nn.functional.softplus(D(fake))


class NanD(NonSaturating):
    def d_loss(self, D, real, fake):
        return super().d_loss(D, real, fake) * float("nan")


class DetachedG(NonSaturating):
    def g_loss(self, D, real, fake):
        return L.non_saturating_g_loss(D(fake.detach()))


class DetachedD(NonSaturating):
    def d_loss(self, D, real, fake):
        return L.logistic_d_loss(D(real).detach(), D(fake).detach())


class IgnoresFake(NonSaturating):
    def d_loss(self, D, real, fake):
        return nn.functional.softplus(-D(real)).mean()


class StepsD(NonSaturating):
    def d_loss(self, D, real, fake):
        with torch.no_grad():
            next(D.parameters()).add_(1.0)
        return super().d_loss(D, real, fake)


class UnfreezesD(NonSaturating):
    def g_loss(self, D, real, fake):
        D.requires_grad_(True)
        return super().g_loss(D, real, fake)


class ZeroCritic(NonSaturating):
    defaults = L.Hyperparams(n_critic=0)


class AdamW(NonSaturating):
    defaults = L.Hyperparams(optimizer_d="adamw")


class Raises(NonSaturating):
    def d_loss(self, D, real, fake):
        raise RuntimeError("boom")


class Explodes(NonSaturating):
    """Fine for the single-call checks; huge steps make training overflow."""

    defaults = L.Hyperparams(optimizer_d="sgd", lr_d=1e38)


def not_a_loss():
    return object()


_SHARED = NonSaturating()


def shared_loss():
    return _SHARED


WRONG_LOSSES = [
    (
        VectorD,
        "loss VectorD: d_loss must return a scalar tensor (shape ()), got shape (8,); "
        "reduce over the batch, e.g. with .mean()",
    ),
    (NanD, "loss NanD: d_loss returned nan on finite inputs; it must be finite"),
    (
        DetachedG,
        "loss DetachedG: g_loss sends no gradient to the generator (its result has no "
        "gradient; is `fake` detached?)",
    ),
    (
        DetachedD,
        "loss DetachedD: d_loss does not depend on the discriminator's parameters (its result "
        "has no gradient; is D's output detached?)",
    ),
    (IgnoresFake, "loss IgnoresFake: d_loss does not use the fake batch"),
    (
        StepsD,
        "loss StepsD: d_loss changed model parameters; a loss only scores (the trainer steps "
        "optimisers)",
    ),
    (
        UnfreezesD,
        "loss UnfreezesD: g_loss sends gradient to the discriminator's parameters; the trainer "
        "freezes D during the G step and the G loss must train G only",
    ),
    (ZeroCritic, "loss ZeroCritic: invalid defaults: n_critic must be an integer >= 1, got 0"),
    (
        AdamW,
        "loss AdamW: invalid defaults: optimizer_d must be one of adam, rmsprop, sgd, got 'adamw'",
    ),
    (Raises, "loss Raises: d_loss raised RuntimeError: boom"),
    (
        Explodes,
        "loss Explodes: training diverged at generator step 1 of 3 (non-finite D or G loss)",
    ),
    (not_a_loss, "loss not_a_loss: factory() must return a ganbench.losses.Loss, got object"),
    (
        shared_loss,
        "loss shared_loss: factory() must build a fresh object on every call, got the same one",
    ),
]


@pytest.mark.parametrize(
    ("factory", "message"), WRONG_LOSSES, ids=[factory.__name__ for factory, _ in WRONG_LOSSES]
)
def test_a_wrong_loss_fails_with_a_message_that_says_what_is_wrong(factory, message):
    with pytest.raises(AssertionError) as err:
        check_loss(factory)
    assert str(err.value) == message


def test_a_wrong_loss_is_named_by_its_registered_name(add_plugin):
    add_plugin("register_losses", "detached", DetachedG)
    with pytest.raises(AssertionError, match=r"^loss 'detached': g_loss sends no gradient"):
        check_loss("detached")


def test_check_loss_refuses_an_instance_and_unknown_names():
    with pytest.raises(TypeError, match="not <ganbench.default_plugins.losses.NonSaturating"):
        check_loss(NonSaturating())
    with pytest.raises(GanbenchError, match="Unknown loss 'nope'"):
        check_loss("nope")


# ---- deliberately wrong models and datasets ----------------------------------------------------


class FlatGenerator(TinyGenerator):
    def forward(self, z):
        return self.net(z)


class TanhGenerator(TinyGenerator):
    def forward(self, z):
        return torch.tanh(self.net[:3](z)).view(-1, 1, 8, 8)


class ColumnCritic(TinyDiscriminator):
    def head(self, features):
        return self.fc(features)


class ViewCritic(TinyDiscriminator):
    def features(self, x):
        return self.conv(x).view(len(x), -1)


class OffsetHead(TinyDiscriminator):
    def head(self, features):  # forward does not go through head
        return self.fc(features).squeeze(1) + 1.0

    def forward(self, x):
        return self.fc(self.features(x)).squeeze(1)


class Bytes(Dataset):
    sample_shape = (1, 8, 8)
    default_model = "dcgan-mnist"

    def __len__(self):
        return 10

    def sampler(self, batch_size, generator, device):
        return lambda: torch.randint(0, 256, (batch_size, 1, 8, 8), generator=generator).float()


def test_wrong_generators_fail_with_what_is_wrong():
    with pytest.raises(AssertionError) as err:
        check_generator(FlatGenerator)
    assert str(err.value) == (
        "generator FlatGenerator: G(z) for z of shape (4, 8) must have shape (4, 1, 8, 8), "
        "got (4, 64)"
    )
    pattern = r"^generator TanhGenerator: G\(z\) lies in \[-0\.\d+, 0\.\d+\], outside the "
    pattern += re.escape("declared output_range (0.0, 1.0)") + "$"
    with pytest.raises(AssertionError, match=pattern):
        check_generator(TanhGenerator)


def test_wrong_discriminators_fail_with_what_is_wrong():
    with pytest.raises(AssertionError) as err:
        check_discriminator(ColumnCritic, (1, 8, 8))
    assert str(err.value) == (
        "discriminator ColumnCritic: D(x) must return one score per sample, shape (4,), for x "
        "of shape (4, 1, 8, 8); got (4, 1)"
    )
    with pytest.raises(AssertionError, match=r"^discriminator ViewCritic: forward on a "):
        check_discriminator(ViewCritic, (1, 8, 8))
    with pytest.raises(AssertionError) as err:
        check_discriminator(OffsetHead, (1, 8, 8))
    assert str(err.value) == "discriminator OffsetHead: head(features(x)) must equal D(x)"
    with pytest.raises(AssertionError, match="D.x. must return one score per sample"):
        check_model_pair(TinyGenerator, ColumnCritic)


def test_a_wrong_dataset_fails_with_what_is_wrong():
    with pytest.raises(AssertionError) as err:
        check_dataset(Bytes)
    assert re.fullmatch(
        r"dataset Bytes: batch values lie in \[0, 25\d\]; they must lie in \[0.0, 1.0\] "
        r"\(the dataset.s value_range\)",
        str(err.value),
    ), str(err.value)


def test_plugins_loaded_names_a_distribution_that_is_not_installed():
    with pytest.raises(AssertionError) as err:
        with plugins_loaded("ganbench-not-installed"):
            pass
    assert str(err.value) == (
        "plugin distribution 'ganbench-not-installed' is not installed (no entry point in "
        "group 'ganbench'); install it, e.g. `pip install -e .`"
    )


class AssumesSamplesFolder(Dataset):
    """Writes its picture with plain open(), assuming the folder exists."""

    sample_shape = (1, 8, 8)
    default_model = "dcgan-mnist"

    def __len__(self):
        return 10

    def sampler(self, batch_size, generator, device):
        return lambda: torch.rand((batch_size, 1, 8, 8), generator=generator)

    def save_samples(self, samples, path):
        with open(path, "wb") as f:
            f.write(b"picture")


def test_a_dataset_whose_save_samples_assumes_the_folder_fails_the_kit():
    with pytest.raises(AssertionError, match="save_samples raised FileNotFoundError"):
        check_dataset(AssumesSamplesFolder)
