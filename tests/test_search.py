"""ganbench search: search spaces, seeded draws, the two phases, resume, outputs, and equal
terms for plugin losses."""

import json

import numpy as np
import pandas as pd
import pytest

from ganbench import registry
from ganbench.cli import main
from ganbench.defaults import sourced_hyperparams
from ganbench.errors import GanbenchError
from ganbench.losses import Hyperparams, Loss
from ganbench.search import best_of_k
from ganbench.search_space import SHARED_SPACE, IntRange, LogUniform, Uniform, compose, draw
from ganbench.spec import RunSpec
from ganbench.testing import check_search_space

SEARCH = ["search", "--dataset", "ring8", "--steps", "15", "--metric", "mode_kl"]


def _rows(out):
    return pd.read_csv(out / "runs.csv")


def test_a_two_trial_search_on_ring8_then_a_resume_that_trains_nothing(tmp_path, capsys):
    out = tmp_path / "s"
    args = [*SEARCH, "--loss", "minimax", "--loss", "wgan", "--trials", "2", "--seeds-best", "2"]
    assert main([*args, "--out", str(out)]) == 0
    runs = _rows(out)
    draws = runs[runs["search_phase"] == "draw"]
    best = runs[runs["search_phase"] == "best"]
    # the same number of draws for every loss, then the best of each on 2 new seeds
    assert sorted(draws.groupby("loss")["trial"].apply(sorted).tolist()) == [[0, 1], [0, 1]]
    assert set(draws["seed"]) == {0} and sorted(best["seed"].unique()) == [1, 2]
    assert len(best) == 4 and best.groupby("loss")["trial"].nunique().eq(1).all()
    # every row records the hyperparameters used and where each came from
    sources = [json.loads(s) for s in draws["hp_sources"]]
    assert all(s["lr_g"] == s["lr_d"] == s["n_critic"] == "search" for s in sources)
    wgan = draws[draws["loss"] == "wgan"]
    assert {json.loads(s)["clip"] for s in wgan["hp_sources"]} == {"search"}
    assert wgan["lr_g"].nunique() == 2  # two different draws
    # the best draw is the one with the lowest metric among the ok draws
    table = pd.read_csv(out / "search.csv")
    for loss, rows in table.groupby("loss"):
        chosen = rows[rows["best"]]
        assert len(chosen) == 1
        assert chosen["mode_kl"].iloc[0] == rows[rows["status"] == "ok"]["mode_kl"].min()
        assert set(best[best["loss"] == loss]["trial"]) == {chosen["trial"].iloc[0]}
    curve = pd.read_csv(out / "search_best_of_k.csv")
    assert sorted(curve["k"].unique()) == [1, 2]
    summary = pd.read_csv(out / "search_best.csv")
    assert set(summary["loss"].dropna()) >= {"minimax", "wgan"}
    assert summary[summary["loss"] == "minimax"]["n_runs"].iloc[0] == 2  # the new seeds only
    # every row records the budget asked: the two picks are compared at 15 D steps even where
    # n_critic does not divide 15 (a draw at n_critic 2 trains 14)
    assert set(runs["step_budget"]) == {15} and set(runs["step_unit"]) == {"discriminator"}
    compared = pd.read_csv(out / "search_comparisons.csv")
    assert len(compared) == 1 and compared["budget_steps"].tolist() == [15]
    captured = capsys.readouterr()
    printed = captured.out
    assert "best setting" in printed and "2 draws at seed 0" in printed
    # 2 seeds a side can never be significant, and the search said so before training
    assert "with 2 seeds per arm no difference between these 2 arms" in captured.err
    assert "--seeds-best 4 can" in captured.err

    # resume: the same command trains nothing new
    assert main([*args, "--out", str(out)]) == 0
    assert len(_rows(out)) == len(runs)
    err = capsys.readouterr().err
    assert err.count("finished earlier") == len(runs) and "critic steps per G step" not in err

    # the report draws the search's plots and section
    assert main(["report", str(out)]) == 0
    assert (out / "plots" / "search_distribution.png").is_file()
    assert (out / "plots" / "search_best_of_k.png").is_file()
    text = (out / "report.md").read_text()
    # the best settings on their new seeds lead; every draw's own arm stays in the CSVs only
    assert "## Search" in text and "## Summary" not in text and "## Pairwise" not in text
    picks = table[table["best"]]
    for row in picks.itertuples():  # each pick's setting is in the report
        assert f"| {row.loss} | {row.trial} | {row.optimizer_g} |" in text
    summary_arms = pd.read_csv(out / "summary.csv")
    assert summary_arms["n_runs"].sum() > summary["n_runs"].sum()  # every draw is an arm there


def test_draws_are_reproducible_and_independent_of_the_number_of_trials():
    space = compose({"clip": LogUniform(1e-3, 1e-1)})
    first = [draw(space, 0, "wgan", k) for k in range(4)]
    assert first == [draw(space, 0, "wgan", k) for k in range(4)]
    assert first[1] != first[0] and draw(space, 1, "wgan", 0) != first[0]
    assert draw(space, 0, "minimax", 0) != first[0]  # each loss draws its own
    for d in first:
        assert 1e-5 <= d["lr_g"] <= 1e-2 and 1 <= d["n_critic"] <= 5
        assert 0 <= d["beta1"] < 1 and 1e-3 <= d["clip"] <= 1e-1


def test_a_pair_may_narrow_but_not_widen_the_space():
    space = compose({}, {"n_critic": IntRange(1, 2), "lr_g": LogUniform(1e-4, 1e-3)})
    assert space["n_critic"] == IntRange(1, 2) and space["lr_d"] == SHARED_SPACE["lr_d"]
    with pytest.raises(GanbenchError, match="only narrow"):
        compose({}, {"lr_g": LogUniform(1e-6, 1e-3)})
    with pytest.raises(GanbenchError, match="adds extras only"):
        compose({"lr_g": LogUniform(1e-4, 1e-3)})


class Extra(Loss):
    defaults = Hyperparams(optimizer_g="adam", optimizer_d="adam", lr_g=1e-4, extras={"gamma": 1})
    search_space = {"gamma": Uniform(0.1, 10.0)}


class Undeclared(Extra):
    search_space = {"delta": Uniform(0.1, 10.0)}


def test_the_conformance_kit_checks_a_loss_search_space():
    check_search_space("extra", Extra)
    with pytest.raises(AssertionError, match="'delta' is not one of its defaults.extras"):
        check_search_space("undeclared", Undeclared)


def test_a_plugin_loss_gets_the_pair_defaults_the_built_ins_get(add_plugin):
    """dcgan-lite tunes Adam for its pair; a plugin's Adam loss gets it as minimax does, and
    each row says where each value came from."""
    add_plugin("register_losses", "extra", Extra)
    G = registry.get_generator("dcgan-lite").factory
    spec = RunSpec(losses=("extra",), overrides={"n_critic": 2})
    plugin, sources = sourced_hyperparams(registry.get_loss("extra"), G, spec)
    builtin, _ = sourced_hyperparams(registry.get_loss("minimax"), G, spec)
    assert (plugin.lr_g, plugin.lr_d, plugin.beta1) == (builtin.lr_g, builtin.lr_d, builtin.beta1)
    assert plugin.lr_g == 1e-3 and sources["lr_g"] == "pair"
    assert sources["n_critic"] == "command line" and sources["gamma"] == "loss"
    drawn = {"lr_g": 3e-4, "extras": {"gamma": 2.0}}
    hp, sources = sourced_hyperparams(registry.get_loss("extra"), G, spec, drawn)
    assert (hp.lr_g, hp.extras["gamma"], sources["lr_g"], sources["gamma"]) == (
        3e-4,
        2.0,
        "search",
        "search",
    )


def test_best_of_k_falls_with_k_and_counts_failed_draws_as_worst():
    table = pd.DataFrame(
        {
            "loss": ["a"] * 4,
            "trial": range(4),
            "status": ["ok", "ok", "error", "ok"],
            "fid": [30.0, 10.0, np.nan, 20.0],
        }
    )
    curve = best_of_k(table, "fid", better_higher=False)
    medians = curve["best_fid_median"].to_numpy()
    assert list(curve["k"]) == [1, 2, 3, 4] and np.all(np.diff(medians) <= 0)
    assert curve["best_fid_hi"].iloc[-1] == 10.0  # all four draws: the best is always 10
    assert np.isinf(curve["best_fid_hi"].iloc[0])  # one draw may be the failed one


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--metric", "fdi"], "Unknown --metric 'fdi'"),
        (["--trials", "0"], "--trials must be a whole number of at least 1, got 0"),
        (["--loss", "wgn"], "Did you mean 'wgan'?"),
    ],
)
def test_search_mistakes_are_one_line_exit_2(tmp_path, capsys, extra, message):
    args = [*SEARCH, "--loss", "minimax", "--out", str(tmp_path / "x"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x" / "runs.csv").exists()
