"""The toy 2-D benchmarks: mode metrics on hand-built samples, the mixtures, mlp-2d, a tiny run."""

import math

import pandas as pd
import pytest
import torch

from ganbench import registry
from ganbench.cli import main
from ganbench.datasets import metric_names
from ganbench.mode_metrics import (
    ModeCoverageEvaluator,
    mode_histogram,
    mode_kl,
    mode_metrics,
    modes_covered,
)


@pytest.fixture
def ring8():
    return registry.get_dataset("ring8").factory()


@pytest.fixture
def grid25():
    return registry.get_dataset("grid25").factory()


def at_centres(centres, per_mode, jitter=0.0):
    """``per_mode[k]`` points at centre k, each moved by ``jitter`` along x."""
    points = [centres[k] + torch.tensor([jitter, 0.0]) for k, n in enumerate(per_mode)]
    return torch.cat([p.repeat(n, 1) for p, n in zip(points, per_mode, strict=True)])


def test_all_modes_equally_filled(ring8):
    samples = at_centres(ring8.centres, [10] * 8, jitter=2.9 * ring8.std)  # inside 3 std
    assert mode_metrics(samples, ring8.centres, ring8.std) == {
        "modes_covered": 8,
        "high_quality_frac": 1.0,
        "mode_kl": 0.0,
    }


def test_one_mode_is_total_collapse(ring8):
    samples = at_centres(ring8.centres, [0, 0, 0, 40, 0, 0, 0, 0])
    m = mode_metrics(samples, ring8.centres, ring8.std)
    assert m["modes_covered"] == 1 and m["high_quality_frac"] == 1.0
    assert m["mode_kl"] == pytest.approx(math.log(8))


def test_off_manifold_samples_are_not_high_quality(ring8):
    beyond = at_centres(ring8.centres, [5] * 8, jitter=3.1 * ring8.std)  # just outside 3 std
    origin = torch.zeros(10, 2)  # between the modes
    m = mode_metrics(torch.cat([beyond, origin]), ring8.centres, ring8.std)
    # no high-quality sample: the mode histogram is empty, scored as total collapse
    assert m == {"modes_covered": 0, "high_quality_frac": 0.0, "mode_kl": math.log(8)}


def test_partial_coverage_and_kl_of_a_known_histogram(grid25):
    per_mode = [3, 1] + [0] * 23
    samples = torch.cat([at_centres(grid25.centres, per_mode), torch.full((4, 2), 9.0)])
    histogram = mode_histogram(samples, grid25.centres, grid25.std)
    assert histogram.tolist() == per_mode
    m = mode_metrics(samples, grid25.centres, grid25.std)
    assert m["modes_covered"] == 2 and m["high_quality_frac"] == 0.5
    # KL(p || u) with p = (3/4, 1/4): 3/4 log(3/4 * 25) + 1/4 log(1/4 * 25)
    assert m["mode_kl"] == pytest.approx(0.75 * math.log(18.75) + 0.25 * math.log(6.25))
    assert modes_covered(histogram, min_count=2) == 1
    assert mode_kl(torch.tensor([5, 5])) == 0.0


def test_samplers_are_seeded_with_the_papers_centres_and_std(ring8, grid25):
    def batch(dataset, seed, n=4096):
        return dataset.sampler(n, torch.Generator().manual_seed(seed), torch.device("cpu"))()

    assert torch.equal(batch(ring8, 3), batch(ring8, 3))
    assert not torch.equal(batch(ring8, 3), batch(ring8, 4))
    radii = ring8.centres.norm(dim=1)
    assert torch.allclose(radii, torch.full((8,), 2.0))
    angles = torch.atan2(ring8.centres[:, 1], ring8.centres[:, 0]).remainder(2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(8) * math.pi / 4, atol=1e-6)
    assert sorted(set(grid25.centres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len(grid25.centres) == 25 and len(set(map(tuple, grid25.centres.tolist()))) == 25
    for dataset, std in ((ring8, 0.02), (grid25, 0.05)):
        x = batch(dataset, 0)
        assert x.shape == (4096, 2) and x.dtype == torch.float32
        nearest = torch.cdist(x, dataset.centres).argmin(dim=1)
        residual = x - dataset.centres[nearest]
        assert residual.std().item() == pytest.approx(std, rel=0.05)
        counts = torch.bincount(nearest, minlength=len(dataset.centres))
        assert counts.min() > 0.5 * 4096 / len(dataset.centres)  # every mode, about equally
    assert ring8.sample_shape == (2,) and len(ring8) >= 10**6
    assert (ring8.default_model, grid25.default_model) == ("mlp-2d", "mlp-2d")


def test_reference_scores_real_data_as_covering_every_mode(ring8):
    evaluator = ring8.make_evaluator(options=None)
    assert isinstance(evaluator, ModeCoverageEvaluator) and evaluator.n_samples == 2500
    ref = evaluator.reference()
    assert ref["modes_covered"] == 8 and ref["eval_samples"] == 2500
    # a 2-D Gaussian puts 1 - exp(-9/2) = 98.9% of its mass within 3 std
    assert ref["high_quality_frac"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert 0 <= ref["mode_kl"] < 0.01
    assert ref == evaluator.reference()  # fixed seed


def test_mlp_2d_shapes_features_and_logit():
    torch.manual_seed(0)
    G = registry.get_generator("mlp-2d").factory()
    D = registry.get_discriminator("mlp-2d").factory()
    assert (G.z_dim, G.output_shape, G.output_range) == (256, (2,), None)
    widths = [m.out_features for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 128, 2]
    x = G(torch.randn(5, 256))
    assert x.shape == (5, 2)
    f = D.features(x)
    assert f.shape == (5, 128)
    assert D(x).shape == (5,) and torch.allclose(D(x), D.head(f))
    from ganbench.defaults import pair_layers

    # every built-in objective gets the pair's settings (Adam ones by optimiser, WGAN by name)
    for loss in ("minimax", "non-saturating", "feature-matching", "wgan"):
        assert pair_layers(registry.get_loss(loss), G), loss


def test_run_ring8_writes_mode_metrics_reference_and_scatter_plot(tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "res"
    args = ["run", "--dataset", "ring8", "--loss", "minimax", "--steps", "20", "--out", str(out)]
    assert main([*args, "--seed", "1"]) == 0
    assert torch.get_num_threads() == threads  # mlp-2d's one-thread hint is undone after training
    runs = pd.read_csv(out / "runs.csv")
    row = runs.iloc[0]
    assert (row.status, row.generator, row.discriminator, row.steps) == (
        "ok",
        "mlp-2d",
        "mlp-2d",
        20,
    )
    assert row.metrics == (
        "modes_covered high_quality_frac mode_kl precision_k3 recall_k3 density_k5 coverage_k5"
        " modes_covered_ema high_quality_frac_ema mode_kl_ema"  # the EMA generator's
        " precision_k3_ema recall_k3_ema density_k5_ema coverage_k5_ema"
    )
    # precision/recall, density/coverage on the raw coordinates, against 2500 real points
    assert 0 <= row.precision_k3 <= 1 and 0 <= row.coverage_k5 <= 1 and row.density_k5 >= 0
    assert row.precision == "fp32"  # the training precision, not overwritten by a metric
    assert row.eval_samples == 2500 and 0 <= row.modes_covered <= 8
    assert 0 <= row.high_quality_frac <= 1 and 0 <= row.mode_kl <= math.log(8) + 1e-9
    # the pair's per-loss defaults, recorded as used
    assert (row.optimizer_g, row.lr_g, row.beta1) == ("adam", 1e-3, 0.5)
    assert (out / row.samples_png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_csv(out / "summary.csv")
    # ranked by ring8's headline metric, mode KL: the real-data floor (KL ~0.001) first, as
    # it is on FID for MNIST
    assert list(summary["loss"]) == ["(real data)", "minimax"]
    assert summary.loc[0, "modes_covered_mean"] == 8
    assert summary.loc[1, "modes_covered_mean"] == row.modes_covered
    assert "eval_samples_mean" not in summary
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    for heading in ("loss", "modes", "high quality", "mode KL", "img/s"):
        assert heading in header
    assert "FID" not in header
    assert "(real data)" in printed


def test_metrics_are_what_the_evaluator_declares_else_its_numeric_scores():
    class Plain:
        n_samples = 2

    class Declared(Plain):
        metrics = ("b", "missing")

    scores = {"fid": 3.5, "classes_covered": 10, "backbone": "x", "flag": True}
    assert metric_names(Plain(), scores) == ["fid", "classes_covered"]
    assert metric_names(Declared(), {"a": 1.0, "b": 2.0}) == ["b"]
