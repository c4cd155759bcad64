"""ganbench.stats and the tables built with it (ganbench.tables), on hand-made data."""

import math

import numpy as np
import pandas as pd
import pytest

from ganbench import arms, stats, tables
from ganbench.runner import significance_warning
from ganbench.views import significance_note


def test_bootstrap_ci_is_reproducible_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(10, 2, 5), rng.normal(10, 2, 200)
    low, high = stats.bootstrap_ci(small)
    assert (low, high) == stats.bootstrap_ci(small)
    assert low < small.mean() < high
    big_low, big_high = stats.bootstrap_ci(large)
    assert big_low < large.mean() < big_high
    assert big_high - big_low < (high - low) / 3
    assert stats.bootstrap_ci(small, seed=1) != (low, high)  # the seed is what fixes it


def test_bootstrap_ci_needs_two_finite_values():
    assert all(math.isnan(v) for v in stats.bootstrap_ci([3.0, math.nan]))
    assert stats.bootstrap_ci([2.0, 2.0, math.nan]) == (2.0, 2.0)


def test_bootstrap_diff_ci_brackets_the_difference_of_means():
    a, b = [10.0, 11.0, 12.0, 13.0], [20.0, 22.0, 21.0]
    low, high = stats.bootstrap_diff_ci(a, b)
    assert low < np.mean(a) - np.mean(b) < high < 0
    assert (low, high) == stats.bootstrap_diff_ci(a, b)
    # extremes of the resampled means: all-smallest minus all-largest and vice versa
    assert -12.0 <= low and high <= -7.0


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_ignores_nan_and_caps_at_one():
    np.testing.assert_allclose(stats.holm([0.01, math.nan, 0.04]), [0.02, math.nan, 0.04])
    np.testing.assert_allclose(stats.holm([0.6, 0.7]), [1.0, 1.0])
    assert stats.holm([]).shape == (0,)


def test_mann_whitney_on_clearly_separated_samples():
    u, p = stats.mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert (u, p) == (0.0, pytest.approx(0.1))
    assert p == pytest.approx(stats.min_mann_whitney_p(3, 3))
    u, p = stats.mann_whitney([6.0, 7.0, 8.0, 9.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert u == 25.0 and p == pytest.approx(2 / 252)
    assert all(math.isnan(v) for v in stats.mann_whitney([1.0], [2.0, 3.0]))


def test_min_mann_whitney_p():
    assert stats.min_mann_whitney_p(3, 3) == pytest.approx(0.1)
    assert stats.min_mann_whitney_p(6, 6) == pytest.approx(2 / 924)
    assert stats.min_mann_whitney_p(1, 1) == 1.0


def test_value_at_budget_interpolates_and_never_extrapolates():
    assert stats.value_at_budget([1.0, 3.0], [10.0, 30.0], 2.5) == pytest.approx(25.0)
    assert stats.value_at_budget([1.0, 3.0], [10.0, 30.0], 3.0) == 30.0
    assert math.isnan(stats.value_at_budget([1.0, 3.0], [10.0, 30.0], 0.5))
    assert math.isnan(stats.value_at_budget([1.0, 3.0], [10.0, 30.0], 3.5))
    assert math.isnan(stats.value_at_budget([], [], 1.0))


# -- tables ---------------------------------------------------------------------------------------


def make_runs(fids: dict[str, list[float]], **common) -> pd.DataFrame:
    rows = []
    for i, (loss, values) in enumerate(fids.items()):
        for seed, fid in enumerate(values):
            rows.append(
                {
                    "run_id": f"{loss}-s{seed}",
                    "setup": f"setup-{loss}",
                    "loss": loss,
                    "generator": "g",
                    "discriminator": "d",
                    "dataset": "mnist",
                    "seed": seed,
                    "steps": 100,
                    "batch_size": 16,
                    "precision": "fp32",
                    "n_critic": 5 if loss == "wgan" else 1,
                    "status": "ok",
                    "fid": fid,
                    "is_mean": 2.0 + i,
                    "train_images_per_s": 100.0 * (i + 1) + seed,
                    **common,
                }
            )
    return pd.DataFrame(rows)


def test_comparisons_for_three_losses_are_three_pairs_with_correct_differences():
    runs = make_runs(
        {"minimax": [10.0, 11.0, 12.0], "wgan": [20.0, 21.0, 22.0], "hinge": [10.5, 30.0, 11.0]}
    )
    comp = tables.compare(runs)
    assert list(zip(comp.loss_a, comp.loss_b, strict=True)) == [
        ("minimax", "wgan"),
        ("minimax", "hinge"),
        ("wgan", "hinge"),
    ]
    np.testing.assert_allclose(comp.fid_diff, [-10.0, 11.0 - 51.5 / 3, 21.0 - 51.5 / 3])
    np.testing.assert_allclose(comp.fid_mean_a, [11.0, 11.0, 21.0])
    assert list(comp.n_a) == [3, 3, 3] and list(comp.n_b) == [3, 3, 3]
    assert comp.p_value[0] == pytest.approx(0.1)
    np.testing.assert_allclose(comp.p_holm, stats.holm(comp.p_value))
    assert comp.p_holm[0] == pytest.approx(0.3)
    assert not comp.significant.any()  # 3 seeds can never be significant
    assert (comp.fid_diff_ci_low < comp.fid_diff).all() and (
        comp.fid_diff < comp.fid_diff_ci_high
    ).all()
    assert list(comp.columns[:6]) == arms.BUDGET


def test_comparisons_mark_separated_losses_with_six_seeds_significant():
    runs = make_runs(
        {
            "a": [1.0, 2, 3, 4, 5, 6],
            "b": [11.0, 12, 13, 14, 15, 16],
            "c": [1.5, 12, 2.5, 13, 3.5, 14],
        }
    )
    comp = tables.compare(runs).set_index(["loss_a", "loss_b"])
    assert comp.loc[("a", "b"), "p_value"] == pytest.approx(2 / 924)
    assert comp.loc[("a", "b"), "p_holm"] == pytest.approx(3 * 2 / 924)
    assert bool(comp.loc[("a", "b"), "significant"])
    assert not comp.loc[("a", "c"), "significant"] and not comp.loc[("b", "c"), "significant"]


def test_seeds_needed_for_significance_after_holm():
    """Holm multiplies the smallest p by the number of pairs: 5 seeds suffice for 3 or 4
    losses (0.0079 x 6 = 0.048), not for 7 (21 pairs: 0.17); 6 seeds do (0.0022 x 21)."""
    assert not stats.can_be_significant(3, 3) and stats.can_be_significant(4, 4)
    assert stats.can_be_significant(5, 5, math.comb(4, 2))
    assert not stats.can_be_significant(5, 5, math.comb(7, 2))
    assert stats.can_be_significant(6, 6, math.comb(7, 2))
    assert [stats.seeds_for_significance(m) for m in (1, 6, 10, 21, 28)] == [4, 5, 6, 6, 7]
    assert significance_warning(7, 6, "--seeds-best") == []
    (line,) = significance_warning(7, 5, "--seeds-best")
    assert "5 seeds" in line and "21 pair(s)" in line and line.endswith("--seeds-best 6 can")
    assert significance_warning(1, 1, "--seeds") == []  # nothing to compare


def test_the_table_note_says_when_holm_leaves_no_chance():
    five = [1.0, 2, 3, 4, 5]
    seven = make_runs({f"l{i}": [v + 10 * i for v in five] for i in range(7)})
    comp = tables.compare(seven)
    assert (comp["holm_pairs"] == 21).all() and not comp.significant.any()
    assert comp.p_value.min() == pytest.approx(stats.min_mann_whitney_p(5, 5))  # separated
    note = significance_note(comp)
    assert "21 pairs tested together" in note and "6 seeds per arm could be" in note
    three = tables.compare(make_runs({f"l{i}": [v + 10 * i for v in five] for i in range(3)}))
    assert three.significant.all() and "could be" not in significance_note(three)
    # a comparisons.csv from before holm_pairs: the family is the budget group's tested pairs
    assert "21 pairs tested together" in significance_note(comp.drop(columns="holm_pairs"))


def test_a_search_report_says_what_its_comparisons_can_show(tmp_path):
    from ganbench import search_report

    comp = tables.compare(make_runs({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    comp.to_csv(tmp_path / search_report.BEST_COMPARISONS, index=False)
    draws = {"loss": ["a", "b"], "trial": [0, 0], "seed": [0, 0], "status": ["ok", "ok"]}
    search = pd.DataFrame({**draws, "fid": [1.0, 3.0], "best": [True, True]})
    search.to_csv(tmp_path / search_report.SEARCH, index=False)
    text = "\n".join(search_report.section(tmp_path, {}))
    assert "| a | b | 2 | 2 |" in text and "(4 seeds per arm could be)" in text


def test_comparisons_only_within_one_budget_and_only_ok_runs():
    runs = make_runs({"minimax": [10.0, 11.0], "wgan": [20.0, 21.0]})
    longer = make_runs({"hinge": [5.0, 6.0]}, steps=200)
    failed = make_runs({"wgan": [math.nan]}, status="error").assign(run_id="wgan-failed")
    comp = tables.compare(pd.concat([runs, longer, failed], ignore_index=True))
    assert list(zip(comp.loss_a, comp.loss_b, strict=True)) == [("minimax", "wgan")]
    assert comp.n_b[0] == 2 and comp.fid_diff[0] == pytest.approx(-10.0)


def test_d_step_rows_are_compared_at_the_budget_asked_even_where_n_critic_does_not_divide_it():
    # 15 D steps asked: minimax at n_critic 2 trains 7 G steps (14 D steps), wgan at 5 trains 3
    minimax = make_runs({"minimax": [10.0, 11.0]}, steps=7, d_steps=14, n_critic=2)
    wgan = make_runs({"wgan": [20.0, 21.0]}, steps=3, d_steps=15, n_critic=5)
    runs = pd.concat([minimax, wgan], ignore_index=True).assign(step_unit="discriminator")
    comp = tables.compare(runs.assign(step_budget=15))
    assert list(zip(comp.loss_a, comp.loss_b, strict=True)) == [("minimax", "wgan")]
    assert comp["budget_steps"].tolist() == [15]
    # rows from before step_budget fall back to their D steps, which differ here
    assert tables.compare(runs).empty
    older = runs.assign(step_budget=[math.nan, math.nan, 15, 15])
    assert tables.compare(older).empty  # the minimax rows count 14, the wgan rows 15


def test_comparisons_without_fid_have_the_columns_and_no_statistics():
    runs = make_runs({"minimax": [1.0], "wgan": [2.0]}).drop(columns="fid")
    comp = tables.compare(runs)
    assert len(comp) == 1 and comp.n_a[0] == 0 and math.isnan(comp.p_value[0])
    assert math.isnan(comp.p_holm[0]) and not comp.significant[0]
    empty = tables.compare(pd.DataFrame())
    assert list(empty.columns) == tables.COMPARISON_COLUMNS and empty.empty


def test_summary_statistics_per_loss():
    runs = make_runs({"wgan": [20.0, 21.0, 25.0], "minimax": [10.0, 11.0, 12.0]})
    runs.loc[len(runs)] = {**runs.iloc[0].to_dict(), "run_id": "x", "status": "diverged", "fid": 1}
    reference = pd.DataFrame([{"loss": "(real data)", "dataset": "mnist", "fid": 0.5}])
    summary = tables.summarize(runs, reference=reference)
    assert list(summary.loss) == ["(real data)", "minimax", "wgan"]  # sorted by mean FID
    wgan = summary.set_index("loss").loc["wgan"]
    assert (wgan.n_runs, wgan.n_ok, wgan.n_diverged, wgan.n_error) == (4, 3, 1, 0)
    assert wgan.seeds == "0 1 2"
    assert (wgan.fid_n, wgan.fid_mean, wgan.fid_median) == (3, 22.0, 21.0)
    assert wgan.fid_std == pytest.approx(np.std([20, 21, 25], ddof=1))
    assert (wgan.fid_ci_low, wgan.fid_ci_high) == stats.bootstrap_ci([20.0, 21.0, 25.0])
    assert wgan.is_mean_mean == 2.0 and wgan.is_mean_n == 3
    assert wgan.train_images_per_s_mean == pytest.approx(101.0)
    assert "train_images_per_s_ci_low" not in summary  # CIs for the headline metrics only
    assert "n_critic_mean" not in summary and "seed_mean" not in summary
    assert summary.set_index("loss").loc["(real data)", "fid_mean"] == 0.5
    assert not any(c.startswith("matched_") for c in summary.columns)  # no FID curve points


def curve(run_id: str, points: dict[str, dict[int, float]]) -> list[dict]:
    return [
        {"run_id": run_id, "step": step, "metric": metric, "value": value}
        for metric, values in points.items()
        for step, value in values.items()
    ]


def test_matched_budget_interpolation_on_hand_built_curves():
    runs = make_runs({"fast": [50.0], "slow": [30.0], "unscored": [1.0]})
    curves = pd.DataFrame(
        curve(
            "fast-s0",
            {
                "wall_s": {10: 1.0, 20: 2.0},
                "train_gflop": {10: 1.0, 20: 2.0},
                "fid": {5: 100.0, 20: 50.0},  # step 5 lies before the first log point
            },
        )
        + curve(
            "slow-s0",
            {
                "wall_s": {10: 3.0, 20: 6.0},
                "train_gflop": {10: 5.0, 20: 10.0},
                "fid": {2: 95.0, 5: 90.0, 20: 30.0},
            },
        )
        + curve("unscored-s0", {"wall_s": {10: 0.1, 20: 0.2}})
    )
    matched = tables.matched_budgets(runs, curves).set_index("run_id")
    # final budgets: fast 2 s / 2 GFLOP, slow 6 s / 10 GFLOP -> both matched at 2
    assert set(matched.matched_wall_s) == {2.0} and set(matched.matched_train_gflop) == {2.0}
    assert matched.loc["fast-s0", "fid_at_wall_s"] == pytest.approx(50.0)
    # slow's FID points sit at 0.6 s, 1.5 s, 6 s: 90 + (2 - 1.5) / 4.5 * (30 - 90)
    assert matched.loc["slow-s0", "fid_at_wall_s"] == pytest.approx(90 - 60 / 9)
    # slow's FID points sit at 1, 2.5, 10 GFLOP: 95 + (2 - 1) / 1.5 * (90 - 95)
    assert matched.loc["slow-s0", "fid_at_train_gflop"] == pytest.approx(95 - 10 / 3)
    assert math.isnan(matched.loc["unscored-s0", "fid_at_wall_s"])
    summary = tables.summarize(runs, curves).set_index("loss")
    assert summary.loc["slow", "matched_wall_s"] == 2.0
    assert summary.loc["slow", "fid_at_wall_s_mean"] == pytest.approx(90 - 60 / 9)
    assert (
        summary.loc["slow", "fid_at_wall_s_n"] == 1
        and summary.loc["unscored", "fid_at_wall_s_n"] == 0
    )


def test_matched_budget_before_a_runs_first_fid_point_is_missing_not_invented():
    runs = make_runs({"cheap": [1.0], "dear": [1.0]})
    curves = pd.DataFrame(
        curve("cheap-s0", {"wall_s": {10: 1.0}, "train_gflop": {10: 1.0}, "fid": {10: 9.0}})
        + curve(
            "dear-s0", {"wall_s": {10: 1.0}, "train_gflop": {10: 5.0}, "fid": {5: 7.0, 10: 3.0}}
        )
    )
    matched = tables.matched_budgets(runs, curves).set_index("run_id")
    assert matched.loc["cheap-s0", "fid_at_train_gflop"] == 9.0
    assert math.isnan(matched.loc["dear-s0", "fid_at_train_gflop"])  # its first point: 2.5 GFLOP
    assert tables.matched_budgets(runs, curves[curves.metric != "fid"]).empty


def test_a_mode_dataset_is_compared_on_its_headline_metric(tmp_path):
    """ring8 (and stacked MNIST) rank by mode KL, so comparisons.csv tests mode KL, and the
    view and its note say so (lower is better)."""
    from ganbench import results as R
    from ganbench.views import comparison_note, comparison_view

    runs = make_runs({"minimax": [1.0] * 5, "wgan": [2.0] * 5})
    runs["dataset"] = "ring8"
    runs["mode_kl"] = [0.1, 0.2, 0.15, 0.12, 0.11, 1.1, 1.2, 1.3, 1.4, 1.5]
    runs["config_hash"] = runs["run_id"]
    R.write_csv(tmp_path / R.RUNS, runs)
    comp = tables.write_tables(tmp_path).comparisons
    assert "mode_kl_diff" in comp and "fid_diff" not in comp
    assert comp["mode_kl_diff"].iloc[0] == pytest.approx(0.136 - 1.3)
    assert bool(comp["significant"].iloc[0])  # 5 against 5, fully separated: p = 0.0079
    view = comparison_view(comp)
    assert "mode KL a-b" in view.columns and "FID a-b" not in view.columns
    assert comparison_note(comp).startswith("mode KL a-b < 0: loss a has the lower (better)")
