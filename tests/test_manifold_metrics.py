"""KID, improved precision/recall and density/coverage: cases with known answers, a brute-force
k-NN that follows the papers' definitions, and the evaluators that report them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_metrics import TEST, make_evaluator

from ganbench.metrics import density_coverage, knn_radii, precision_recall
from ganbench.mode_metrics import ModeCoverageEvaluator


def brute_force(fake: torch.Tensor, real: torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> dict:
    """Kynkaanniemi et al. 2019 and Naeem et al. 2020, one point at a time, in float64."""
    fake, real = fake.double(), real.double()

    def dist(a, b):
        return float(((a - b) ** 2).sum().sqrt())

    def radius(points, i, k):  # distance to the k-th nearest *other* point
        return sorted(dist(points[i], points[j]) for j in range(len(points)) if j != i)[k - 1]

    r_real = [radius(real, i, k_pr) for i in range(len(real))]
    r_fake = [radius(fake, j, k_pr) for j in range(len(fake))]
    precision = sum(
        any(dist(y, real[i]) <= r_real[i] for i in range(len(real))) for y in fake
    ) / len(fake)
    recall = sum(any(dist(x, fake[j]) <= r_fake[j] for j in range(len(fake))) for x in real) / len(
        real
    )
    r5 = [radius(real, i, k_dc) for i in range(len(real))]
    density = sum(sum(dist(y, real[i]) < r5[i] for i in range(len(real))) for y in fake) / (
        k_dc * len(fake)
    )
    coverage = sum(min(dist(real[i], y) for y in fake) < r5[i] for i in range(len(real))) / len(
        real
    )
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("dim", [2, 7])
def test_knn_metrics_agree_with_a_brute_force_on_50_points(dim):
    g = torch.Generator().manual_seed(dim)
    real = torch.randn(50, dim, generator=g)
    fake = 0.7 * torch.randn(50, dim, generator=g) + 1.0  # overlapping, not equal
    expected = brute_force(fake, real)
    p, r = precision_recall(fake, real)
    d, c = density_coverage(fake, real)
    got = {"precision": p, "recall": r, "density": d, "coverage": c}
    assert got == pytest.approx(expected, abs=1e-6)  # one point of 50 is 0.02
    assert 0 < p < 1 and 0 < r < 1 and 0 < c < 1  # a case where the answer is not trivial


def test_knn_radii_skip_the_point_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(points, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(points, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="more than 4 points"):
        knn_radii(points, 4)


def test_identical_sets_have_precision_recall_coverage_one():
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x.clone()) == (1.0, 1.0)
    density, coverage = density_coverage(x, x.clone())
    assert coverage == 1.0
    assert density == pytest.approx(1.0, abs=0.25)  # each fake sits inside ~k real balls


def test_far_apart_sets_score_zero():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(200, 8, generator=g)
    fake = torch.randn(200, 8, generator=g) + 100.0
    assert precision_recall(fake, real) == (0.0, 0.0)
    assert density_coverage(fake, real) == (0.0, 0.0)


def test_a_collapsed_generator_keeps_precision_and_loses_recall_and_coverage():
    """Fidelity and diversity apart: all samples near one real point."""
    g = torch.Generator().manual_seed(2)
    real = torch.randn(400, 4, generator=g)
    fake = real[0] + 1e-3 * torch.randn(400, 4, generator=g)
    p, r = precision_recall(fake, real)
    _, c = density_coverage(fake, real)
    assert p == 1.0 and r < 0.05 and c < 0.05


def test_chunks_change_nothing(monkeypatch):
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(130, 5, generator=g), torch.randn(120, 5, generator=g)
    whole = (precision_recall(fake, real), density_coverage(fake, real))
    monkeypatch.setattr("ganbench.metrics.KNN_CHUNK", 17)
    assert (precision_recall(fake, real), density_coverage(fake, real)) == whole


def test_image_evaluator_scores_kid_pr_dc_and_real_against_itself(tmp_path: Path):
    ev = make_evaluator(tmp_path / "cache")
    real = TEST[0].float() / 255  # exactly the reference images: features equal the real ones
    same = ev.score(real)
    assert (same["precision_k3"], same["recall_k3"], same["coverage_k5"]) == (1.0, 1.0, 1.0)
    noise = ev.score(torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert noise["kid"] > 0 and abs(same["kid"]) < 0.01 * noise["kid"]
    assert same["kid_subset_size"] == 200 and same["kid_subsets"] == 100  # capped at N
    assert noise["precision_k3"] < same["precision_k3"] and noise["coverage_k5"] < 0.5
    for key in ("kid", "kid_std", "precision_k3", "recall_k3", "density_k5", "coverage_k5"):
        assert key in ev.metrics and math.isfinite(noise[key])
    # KID's subsets are seeded: the same samples score the same
    assert ev.score(real)["kid"] == same["kid"]
    # the real features are cached beside the FID reference, and read back
    assert ev.features_path.is_file()
    again = make_evaluator(tmp_path / "cache")
    assert torch.equal(again.real_features(), ev.real_features())
    floor = ev.reference()
    assert {"kid", "precision_k3", "recall_k3", "density_k5", "coverage_k5"} <= set(floor)
    assert floor["precision_k3"] > noise["precision_k3"]


def test_image_evaluator_kid_settings_are_options(tmp_path: Path):
    ev = make_evaluator(tmp_path / "cache", kid_subsets=7, kid_subset_size=50)
    scores = ev.score(TEST[0][:120].float() / 255)
    assert (scores["kid_subsets"], scores["kid_subset_size"]) == (7, 50)
    with pytest.raises(ValueError, match="KID needs"):
        make_evaluator(tmp_path / "cache", kid_subsets=0)


def test_toy_evaluator_reports_knn_metrics_on_raw_coordinates():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])

    def sample_real(n, g):
        mode = torch.randint(2, (n,), generator=g)
        return centres[mode] + 0.1 * torch.randn((n, 2), generator=g)

    ev = ModeCoverageEvaluator(centres, 0.1, sample_real, n_samples=500)
    real = ev.score(sample_real(500, torch.Generator().manual_seed(9)))
    one_mode = ev.score(0.1 * torch.randn((500, 2), generator=torch.Generator().manual_seed(8)))
    assert real["recall_k3"] > 0.9 and real["coverage_k5"] > 0.9
    assert one_mode["precision_k3"] > 0.9 and one_mode["coverage_k5"] < 0.6
    assert {"precision_k3", "recall_k3", "density_k5", "coverage_k5"} <= set(ev.metrics)
    assert {"precision_k3", "coverage_k5"} <= set(ev.reference())


def test_a_floor_cache_holding_null_is_recomputed(tmp_path: Path):
    ev = make_evaluator(tmp_path / "cache")
    floor = ev.reference()
    ev.floor_path.write_text("null")
    assert make_evaluator(tmp_path / "cache").reference() == floor


def test_curve_evaluators_score_fid_without_the_knn_metrics(tmp_path: Path):
    """--eval-every points need FID only: no KID or k-NN distances at every point."""
    ev = make_evaluator(tmp_path / "cache", manifold_metrics=False)
    scores = ev.score(TEST[0][:120].float() / 255)
    assert "fid" in scores and "kid" not in scores and "precision_k3" not in scores
    assert "kid" not in ev.metrics and not ev.features_path.exists()
    assert "fid" in ev.reference()
