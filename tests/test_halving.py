"""Equal terms you can afford: successive halving (ganbench.halving) on ring8, the discriminator
step budget, and a cell's thread count in its identity."""

import math

import pandas as pd
import pytest
from test_cli import run
from test_resume import assert_same_state, losses, tiny_run

from ganbench.cli import main
from ganbench.halving import rung_budgets, signal, survivors

K = 9
# ring8 cells cost ~1 s each; 2 losses x 9 draws, halved at 67 / 200 / 600 D steps
HALVING = [
    "search",
    "--dataset",
    "ring8",
    "--loss",
    "minimax",
    "--loss",
    "wgan",
    "--steps",
    "600",
    "--trials",
    str(K),
    "--seeds-best",
    "1",
    "--scheduler",
    "halving",
    "--ema-decay",
    "0",
    "--no-keep-generators",
]


def test_survivors_keep_the_best_third_ties_to_the_lower_trial():
    scores = {0: 3.0, 1: 1.0, 2: math.nan, 3: 1.0, 4: 0.5, 5: math.inf, 6: 2.0, 7: 9.0, 8: 4.0}
    assert survivors(scores, 3) == [1, 3, 4]
    assert survivors({5: 2.0, 7: 1.0}, 3) == [7]  # at least one goes on
    assert survivors({0: math.nan, 1: math.nan}, 2) == [0]


def test_rung_budgets_end_at_the_full_budget():
    assert rung_budgets(2400, 3, 3) == [267, 800, 2400]
    assert rung_budgets(100, 2, 1) == [100]
    assert rung_budgets(2400, 3, 3, grace=600) == [600, 1800, 2400]
    assert rung_budgets(2400, 4, 3, grace=600) == [600, 2400]


def test_signal_is_the_mean_of_the_last_two_points():
    assert signal([5.0, 3.0, 1.0], 9.0) == 2.0
    assert signal([], 9.0) == 9.0
    assert signal([1.0, math.nan], 9.0) == math.inf


def test_a_carried_over_cell_ends_as_one_trained_from_zero():
    """A rung shorter than log_every (2 steps, loss buffer of 2) continued to 10 steps (buffer
    of 3): the weights and loss curve of a 10-step run from zero."""
    G0, D0, whole = tiny_run("minimax", steps=10)
    saved: list[dict] = []
    tiny_run("minimax", steps=2, saved=saved)
    state = saved[-1]
    state["budget_steps"] = 10
    G1, D1, longer = tiny_run("minimax", steps=10, resume=state, scramble=True)
    assert longer.resumed_from == 2
    assert_same_state(G0, G1)
    assert_same_state(D0, D1)
    # the same loss curve after the first log point, whose window (since the last point) starts
    # at the short cell's own end point, step 2
    assert [p for p in losses(longer) if p[0] > 3] == [p for p in losses(whole) if p[0] > 3]
    assert [p[0] for p in losses(longer)][::3] == [2, 3, 6, 9, 10]


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    """One halving search with --check-pruning (every draw also to the full budget), no
    --metric given: ring8's headline metric, mode KL, picks."""
    out = tmp_path_factory.mktemp("halving") / "out"
    assert main([*HALVING, "--check-pruning", "--out", str(out)]) == 0
    return out


def test_halving_keeps_a_third_per_rung_and_per_loss(halved):
    rungs = pd.read_csv(halved / "search_rungs.csv")
    for _, mine in rungs.groupby("loss"):
        assert mine.groupby("rung").size().to_dict() == {1: 9, 2: 3, 3: 1}
        for r in (1, 2):
            promoted = set(mine[(mine.rung == r) & mine.promoted].trial)
            assert promoted == set(mine[mine.rung == r + 1].trial)
    assert (rungs.budget.unique() == [67, 200, 600]).all()
    assert set(rungs.step_unit) == {"discriminator"}
    runs = pd.read_csv(halved / "runs.csv")
    # a promoted draw resumed from its last rung's checkpoint instead of starting over
    second = runs[runs["rung"] == 2]
    assert len(second) == 6 and (second["resumed_from_step"] > 0).all()
    assert (runs["threads"] == 1).all()  # search pins its cells' threads
    # best of k over all 9 draws, at the first rung (only one draw a loss reaches the full budget)
    curve = pd.read_csv(halved / "search_best_of_k.csv")
    assert curve.groupby("loss")["k"].max().eq(9).all() and set(curve.budget) == {67}


def test_pruning_keeps_a_top_three_pick_at_a_third_of_the_compute(halved):
    check = pd.read_csv(halved / "search_pruning.csv").set_index("loss")
    assert list(check.index) == ["minimax", "wgan"]
    assert (check["draws"] == K).all()
    assert (check["compute_ratio"] < 1 / 3).all()
    assert (check["halving_pick_full_rank"] <= 3).all()
    table = pd.read_csv(halved / "search.csv")
    assert table.columns[4] == "mode_kl"  # the dataset's headline metric, no --metric given
    best = table[table["best"]]
    assert sorted(best["trial"]) == sorted(check["halving_pick"])


def test_halving_resume_trains_nothing(halved, capsys):
    rows = len(pd.read_csv(halved / "runs.csv"))
    assert main([*HALVING, "--check-pruning", "--out", str(halved)]) == 0
    assert len(pd.read_csv(halved / "runs.csv")) == rows
    assert "critic steps per G step" not in capsys.readouterr().err  # no cell started


def test_two_jobs_make_the_same_decisions(halved, tmp_path):
    out = tmp_path / "jobs2"
    assert main([*HALVING, "--jobs", "2", "--out", str(out)]) == 0
    keys = ["loss", "trial", "rung", "promoted", "signal", "config_hash"]
    one = pd.read_csv(halved / "search_rungs.csv")[keys]
    two = pd.read_csv(out / "search_rungs.csv")[keys]
    pd.testing.assert_frame_equal(one, two)


def test_search_bad_scheduler_values_are_one_line(tmp_path, capsys):
    out = tmp_path / "a" / "b"
    assert main([*HALVING, "--eta", "1", "--out", str(out)]) == 2
    assert "--eta must be a whole number of at least 2" in capsys.readouterr().err
    assert main(["search", "--dataset", "ring8", "--loss", "minimax", "--check-pruning"]) == 2
    assert "add --scheduler halving" in capsys.readouterr().err


def test_discriminator_steps_trade_generator_steps(tiny_mnist, tmp_path):
    """--step-unit discriminator: n_critic 4 trains 8 // 4 G steps, and is the cell a
    generator-step run of 2 G steps is (same training, same hash)."""
    out = tmp_path / "d"
    args = ("--loss", "wgan", "--n-critic", "4", "--threads", "2")
    assert run(tiny_mnist, out, *args, "--steps", "8", "--step-unit", "discriminator") == 0
    row = pd.read_csv(out / "runs.csv").iloc[-1]
    assert (row["steps"], row["d_steps"], row["steps_done"]) == (2, 8, 2)
    assert row["step_unit"] == "discriminator"
    assert run(tiny_mnist, out, *args, "--steps", "2", "--step-unit", "generator") == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 1  # found finished: the same cell


def test_thread_count_is_recorded_and_keeps_cells_apart(tiny_mnist, tmp_path):
    out = tmp_path / "t"
    assert run(tiny_mnist, out, "--loss", "minimax", "--threads", "2") == 0
    assert run(tiny_mnist, out, "--loss", "minimax", "--threads", "1") == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["threads"]) == [2, 1]
    assert runs["config_hash"].nunique() == 2  # trained twice, never mixed under one identity


def test_a_new_loss_is_compared_with_tuned_baselines_without_retraining_them(tmp_path, capsys):
    study, new = tmp_path / "study", tmp_path / "new"
    common = ["search", "--dataset", "ring8", "--steps", "200", "--trials", "2"]
    common += ["--seeds-best", "3", "--ema-decay", "0", "--no-keep-generators"]
    assert main([*common, "--loss", "minimax", "--loss", "wgan", "--out", str(study)]) == 0
    baseline_rows = len(pd.read_csv(study / "runs.csv"))
    capsys.readouterr()
    # a protocol that differs is refused before anything is made
    assert main([*common, "--steps", "300", "--loss", "non-saturating", "--baseline", str(study),
                 "--out", str(new)]) == 2  # fmt: skip
    assert "steps (300 here, 200 there)" in capsys.readouterr().err
    assert not new.exists()
    assert (
        main([*common, "--loss", "non-saturating", "--baseline", str(study), "--out", str(new)])
        == 0
    )
    assert len(pd.read_csv(study / "runs.csv")) == baseline_rows  # the baselines were not retrained
    assert set(pd.read_csv(new / "runs.csv")["loss"]) == {"non-saturating"}
    comparisons = pd.read_csv(new / "baseline_comparisons.csv")
    pairs = {frozenset(p) for p in zip(comparisons.loss_a, comparisons.loss_b, strict=True)}
    assert pairs == {
        frozenset({"non-saturating", "minimax"}),
        frozenset({"non-saturating", "wgan"}),
    }
    assert (comparisons[["n_a", "n_b"]] == 3).all().all()
    summary = pd.read_csv(new / "baseline_summary.csv")
    assert {"minimax", "wgan", "non-saturating"} <= set(summary["loss"])
