"""Stacked MNIST: the data, the evaluator on known answers, Metz et al.'s pairs, and a run.

The known answers use a template classifier on made-up "digits" (10 fixed random patterns), so
the evaluator's arithmetic is checked exactly, without real MNIST: real stacked samples cover
about all 1000 modes, ten repeated triples give 10 modes and KL = ln 100, and uniform noise
gives almost no confident samples. The same checks with the real classifier on real MNIST are
in the slow test at the end.
"""

import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from ganbench import registry
from ganbench.cli import main
from ganbench.default_plugins.mnist.stacked import (
    MODES,
    StackedMnistEvaluator,
    mode_histogram,
    mode_ids,
    stack_digits,
)
from ganbench.defaults import generator_defaults

REAL_CACHE = os.environ.get("GANBENCH_CACHE") or str(Path.home() / ".cache" / "ganbench")


class TemplateClassifier:
    """Labels a 28x28 image by its nearest of 10 binary templates (softmax of minus the squared
    distance / 50): sure of a template's digit, unsure of uniform noise (about equally far from
    every template). Features: the logits."""

    max_batch = 512

    def __init__(self, templates: torch.Tensor) -> None:
        self.templates = templates.flatten(1).float()  # (10, 784) in {0, 1}

    def features_and_logits(self, x):
        logits = -torch.cdist(x.flatten(1), self.templates).square() / 50.0
        return logits, logits


@pytest.fixture(scope="module")
def digits():
    """(templates, train images uint8 (N, 1, 28, 28), their labels, test images)."""
    g = torch.Generator().manual_seed(0)
    templates = (torch.rand(10, 28, 28, generator=g) > 0.5).float()

    def images(n):
        labels = torch.arange(n) % 10
        noise = 0.05 * torch.rand(n, 28, 28, generator=g)
        x = (templates[labels] * 0.9 + noise).clamp(0, 1)
        return (x * 255).round().to(torch.uint8).unsqueeze(1), labels

    train, train_labels = images(600)
    test, _ = images(300)
    return templates, train, train_labels, test


def evaluator(digits, n_samples=25600):
    templates, train, _, test = digits
    return StackedMnistEvaluator(
        TemplateClassifier(templates), train, test, n_samples=n_samples, fid_samples=300
    )


def test_stacked_samples_are_three_independent_digits_and_their_mode_ids():
    images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 1, 2, 2)
    a = stack_digits(images, 1000, torch.Generator().manual_seed(1))
    b = stack_digits(images, 1000, torch.Generator().manual_seed(1))
    assert a.shape == (1000, 3, 2, 2) and torch.equal(a, b)  # seeded
    channels = a[:, :, 0, 0].long()
    assert set(channels.unique().tolist()) == set(range(5))
    assert not torch.equal(channels[:, 0], channels[:, 1])  # drawn apart per channel
    assert mode_ids(torch.tensor([[3, 0, 7], [0, 0, 0], [9, 9, 9]])).tolist() == [307, 0, 999]
    assert mode_histogram(torch.tensor([[1, 2, 3], [1, 2, 3]]))[123] == 2


def test_real_stacked_digits_cover_about_all_1000_modes(digits):
    ev = evaluator(digits)
    floor = ev.reference()
    # 25,600 uniform draws over 1000 modes miss one with probability e^-25.6: all are covered;
    # the histogram's sampling noise alone leaves KL about (K-1) / 2n = 0.0195 nats
    assert floor["modes_covered"] == MODES
    assert 0.005 < floor["mode_kl"] < 0.04
    assert floor["confident_frac"] > 0.99
    assert floor["eval_samples"] == 25600 and floor["kl_log_base"] == "e"
    assert floor["channel_fid"] < 1.0  # digits like the reference's (300 a side: not 0)


def test_ten_repeated_triples_give_10_modes_and_kl_ln_100(digits):
    templates, train, train_labels, _ = digits
    ev = evaluator(digits, n_samples=1000)
    triples = torch.randint(0, 10, (10, 3), generator=torch.Generator().manual_seed(2))
    first = {d: int((train_labels == d).nonzero()[0]) for d in range(10)}
    one = torch.stack([torch.cat([train[first[int(d)]] for d in t]) for t in triples])
    samples = one.repeat(100, 1, 1, 1).float() / 255  # each triple 100 times: uniform over 10
    scores = ev.score(samples)
    assert scores["modes_covered"] == 10
    assert scores["mode_kl"] == pytest.approx(math.log(100), abs=1e-9)
    assert scores["confident_frac"] == 1.0


def test_uniform_noise_gives_few_confident_samples_and_a_large_channel_fid(digits):
    ev = evaluator(digits, n_samples=2000)
    noise = torch.rand(2000, 3, 28, 28, generator=torch.Generator().manual_seed(3))
    scores = ev.score(noise)
    assert scores["confident_frac"] < 0.01
    assert scores["channel_fid"] > 100 * ev.reference()["channel_fid"]


def test_the_evaluator_refuses_samples_that_are_not_three_channels(digits):
    with pytest.raises(ValueError, match=r"\(n, 3, H, W\)"):
        evaluator(digits, n_samples=10).score(torch.rand(10, 1, 28, 28))


@pytest.mark.parametrize(("name", "filters"), [("metz-small-d", 8), ("metz-half-d", 16)])
def test_metz_pairs_are_the_papers_shapes(name, filters):
    G = registry.get_generator(name).factory()
    D = registry.get_discriminator(name).factory()
    z = torch.randn(4, G.z_dim)
    x = G(z)
    assert G.z_dim == 256 and x.shape == (4, 3, 28, 28)
    assert x.abs().max() <= 1  # tanh
    assert D.features(x).shape == (4, filters * 4 * 4) and D(x).shape == (4,)
    convs = [m for m in D.conv if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [filters // 4, filters // 2, filters]
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) for c in convs)
    assert any(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.3 for m in D.conv)
    deconv = next(m for m in G.deconv if isinstance(m, torch.nn.ConvTranspose2d))
    assert deconv.weight.std().item() == pytest.approx(0.02, rel=0.2)  # N(0, 0.02), DCGAN's
    assert G.dense.weight.std().item() == pytest.approx(0.02, rel=0.2)
    # DCGAN-tensorflow's conv2d: N(0, 0.02) truncated at 2 sd (std ~0.0176), D's convs and G's last
    for conv in [*convs, G.deconv[-2]]:
        assert type(conv) is torch.nn.Conv2d and conv.weight.abs().max() <= 0.04
    wide = torch.cat([c.weight.flatten() for c in convs] + [G.deconv[-2].weight.flatten()])
    assert wide.std().item() == pytest.approx(0.0176, rel=0.25)
    assert deconv.weight.abs().max() > 0.04  # not truncated: DCGAN-tensorflow's deconv2d
    # PacGAN feeds the D and G steps the same z: the G step reuses the D step's fake
    assert generator_defaults(name).reuse_fake is True
    assert generator_defaults(name).init == "dcgan-tf"


def test_a_stacked_mnist_run_prints_modes_kl_and_fidelity_with_a_colour_grid(
    tiny_mnist, tmp_path, capsys
):
    out = tmp_path / "out"
    args = ["run", "--dataset", "stacked-mnist", "--data-dir", str(tiny_mnist), "--out", str(out)]
    args += ["--loss", "non-saturating", "--loss", "wgan", "--generator", "metz-small-d"]
    args += ["--steps", "4", "--batch-size", "16", "--mode-samples", "300"]
    args += ["--fid-samples", "100", "--eval-every", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "modes" in printed and "mode KL" in printed and "confident" in printed
    assert "Ranked by mode_kl" in printed
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["status"]) == {"ok"}
    assert (runs["eval_samples"] == 300).all() and (runs["kl_log_base"] == "e").all()
    assert runs["modes_covered"].between(1, 300).all()
    assert runs["confident_frac"].between(0, 1).all()
    curves = pd.read_csv(out / "curves.csv")
    assert {"modes_covered", "mode_kl"} <= set(curves["metric"])  # modes against steps
    summary = pd.read_csv(out / "summary.csv")
    assert {"mode_kl_ci_low", "modes_covered_ci_high", "confident_frac_mean"} <= set(summary)
    comparisons = pd.read_csv(out / "comparisons.csv")  # tested on the headline metric
    assert "mode_kl_diff" in comparisons and "fid_diff" not in comparisons
    real = summary[summary["loss"] == "(real data)"]
    assert len(real) == 1 and float(real["eval_samples"].iloc[0]) == 300  # the floor, same n
    grid = next((out / "samples").glob("*.png"))
    assert Image.open(grid).mode == "RGB"
    assert main(["evaluate", str(out)]) == 0  # rescored on the samples the row counted
    rescored = pd.read_csv(out / "runs.csv")
    assert (rescored["eval_samples"] == 300).all()
    assert list(rescored["modes_covered"]) == list(runs["modes_covered"])
    assert main(["report", str(out)]) == 0  # modes against steps, drawn
    report = (out / "report.md").read_text()
    for metric in ("modes_covered", "mode_kl", "confident_frac"):
        assert (out / "plots" / f"{metric}_vs_step.png").is_file()
        assert f"plots/{metric}_vs_step.png" in report
    assert not (out / "plots" / "fid_vs_step.png").exists()  # no FID on this dataset


def test_a_stacked_mnist_search_ranks_by_mode_kl_without_being_told(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "search"
    args = ["search", "--dataset", "stacked-mnist", "--data-dir", str(tiny_mnist)]
    args += ["--out", str(out), "--loss", "non-saturating", "--generator", "metz-small-d"]
    args += ["--trials", "2", "--seeds-best", "1", "--steps", "4", "--batch-size", "16"]
    args += ["--mode-samples", "200", "--fid-samples", "100"]
    assert main(args) == 0
    search = pd.read_csv(out / "search.csv")
    assert "mode_kl" in search and "fid" not in search and len(search) == 2
    picked = search[search["best"]]
    assert len(picked) == 1 and picked["mode_kl"].iloc[0] == search["mode_kl"].min()
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs[runs["search_phase"] == "best"]["trial"]) == list(picked["trial"])


def test_mode_samples_is_refused_where_there_are_no_modes(tiny_mnist, tmp_path, capsys):
    args = ["run", "--data-dir", str(tiny_mnist), "--out", str(tmp_path / "o"), "--loss"]
    assert main([*args, "minimax", "--mode-samples", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mode-samples 100" in err[0] and "'mnist'" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_real_stacked_mnist_with_the_real_classifier(monkeypatch):
    """The floor of real MNIST under ganbench's classifier: ~1000 modes, KL ~0.02, and uniform
    noise is almost never three confident digits."""
    monkeypatch.setenv("GANBENCH_CACHE", REAL_CACHE)  # MNIST and its classifier, as elsewhere
    dataset = registry.get_dataset("stacked-mnist").factory()
    dataset.load()
    from ganbench.datasets import EvalOptions

    ev = dataset.make_evaluator(EvalOptions())
    floor = ev.reference()
    assert floor["modes_covered"] >= 995 and floor["mode_kl"] < 0.05
    assert floor["confident_frac"] > 0.9
    noise = ev.score(torch.rand(2000, 3, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert noise["confident_frac"] < 0.1


def test_an_epoch_is_as_many_stacked_images_as_training_digits(tiny_mnist):
    from ganbench.defaults import with_defaults
    from ganbench.spec import RunSpec

    spec = RunSpec(losses=("minimax",), dataset="stacked-mnist", epochs=2, data_dir=tiny_mnist)
    filled = with_defaults(spec, device=torch.device("cpu"))
    assert filled.batch_size == 64 and filled.steps == 8  # 2 x 256 digits / 64
