"""--defaults: where each loss's hyperparameters start (the pair's, the committed equal-tuning
study's best, or the paper's), and the settings shipped for the study's pair."""

import json
import math
from pathlib import Path

import pandas as pd
import torch

from ganbench import registry
from ganbench.cli import main
from ganbench.default_plugins import equal_tuning
from ganbench.defaults import (
    HP_FIELDS,
    generator_defaults,
    sourced_hyperparams,
    untuned,
    with_defaults,
)
from ganbench.spec import RunSpec
from ganbench.study import read_study

ROOT = Path(__file__).resolve().parents[1]
PAIR = "dcgan-lite-dense-ttur"
STUDY_SOURCE = f"study {equal_tuning.STUDY}"


def study_best() -> dict[str, dict]:
    """Each loss's best setting as the committed study's runs.csv has it (its "best" rows)."""
    runs = pd.read_csv(ROOT / equal_tuning.STUDY / "runs.csv", dtype=str)
    best = runs[runs["search_phase"] == "best"]
    settings = {}
    for loss, rows in best.groupby("loss"):
        values = rows[[*HP_FIELDS, "loss_params"]].drop_duplicates()
        assert len(values) == 1, f"{loss}: its best seeds trained different settings"
        row = values.iloc[0]
        settings[loss] = {
            **{k: row[k] for k in ("optimizer_g", "optimizer_d")},
            **{k: float(row[k]) for k in ("lr_g", "lr_d", "beta1", "beta2")},
            "n_critic": int(row["n_critic"]),
            "extras": json.loads(row["loss_params"]),
        }
    return settings


def same(shipped: dict, found: dict) -> bool:
    return shipped.keys() == found.keys() and all(
        math.isclose(v, found[k], rel_tol=1e-12) if isinstance(v, float) else v == found[k]
        for k, v in shipped.items()
    )


def test_the_shipped_settings_are_the_committed_studys_best():
    """Every loss the study has finished (its best setting chosen and trained on new seeds) is
    shipped with exactly that setting, and nothing else is shipped."""
    found = study_best()
    assert found, "the committed study has no best setting yet"
    assert set(equal_tuning.BEST) == set(found)
    for loss, values in equal_tuning.BEST.items():
        assert same(values, found[loss]), loss
    pair = generator_defaults(PAIR)
    assert pair.tuned_hyperparams == equal_tuning.BEST
    assert pair.tuned_by == equal_tuning.STUDY
    study = read_study(ROOT / equal_tuning.STUDY / "study.toml")
    assert study["step-unit"] == pair.tuned_step_unit == "discriminator"
    assert generator_defaults("dcgan-lite-dense-ttur-rgb").tuned_by == ""  # another dataset's


def sourced(loss: str, defaults: str | None, **spec):
    run = RunSpec(losses=(loss,), generator=PAIR, defaults=defaults, **spec)
    return sourced_hyperparams(registry.get_loss(loss), generator_cls(), run)


def generator_cls():
    from ganbench.models import model_class

    return model_class(registry.get_generator(PAIR).factory)


def test_tuned_defaults_take_the_studys_values_and_name_it_in_every_source():
    tuned_loss = next(iter(equal_tuning.BEST))
    hp, sources = sourced(tuned_loss, "tuned")
    shipped = equal_tuning.BEST[tuned_loss]
    assert {k: getattr(hp, k) for k in HP_FIELDS} == {k: shipped[k] for k in HP_FIELDS}
    assert {sources[k] for k in HP_FIELDS} == {STUDY_SOURCE}
    # the command line still wins over the study
    hp, sources = sourced(tuned_loss, "tuned", overrides={"lr_g": 0.123})
    assert hp.lr_g == 0.123 and sources["lr_g"] == "command line"
    assert sources["lr_d"] == STUDY_SOURCE


def test_pair_and_paper_defaults_leave_the_study_out():
    pair_hp, pair_sources = sourced("non-saturating", "pair")
    assert "pair" in pair_sources.values() and STUDY_SOURCE not in pair_sources.values()
    paper_hp, paper_sources = sourced("non-saturating", "paper")
    loss_defaults = registry.get_loss("non-saturating").factory().defaults
    assert paper_hp == loss_defaults and set(paper_sources.values()) == {"loss"}
    assert paper_hp != pair_hp  # the default pair's TTUR learning rates are the pair's


def test_tuned_is_the_default_on_the_studys_pair_and_pair_elsewhere():
    """Without --defaults, the study's pair starts each loss from the study's best (equally tuned
    objectives out of the box) and every other pair from its own settings (the same values:
    those cells keep their hashes); a search's draws always start from the pair's."""
    tuned_loss = next(iter(equal_tuning.BEST))
    assert sourced(tuned_loss, None) == sourced(tuned_loss, "tuned")
    assert sourced(tuned_loss, None)[0] != sourced(tuned_loss, "pair")[0]
    cpu = torch.device("cpu")
    plain = with_defaults(RunSpec(losses=("wgan",), precision="fp32"), device=cpu)
    assert (plain.generator, plain.defaults, plain.step_unit) == (PAIR, "tuned", "discriminator")
    ring = with_defaults(RunSpec(losses=("wgan",), dataset="ring8"), device=cpu)
    assert (ring.defaults, ring.step_unit) == ("pair", "generator")
    from ganbench.search import SearchSpec, draws_run_spec

    draws = draws_run_spec(SearchSpec(run=RunSpec(losses=("wgan",))))
    assert with_defaults(draws, device=cpu).defaults == "pair"


def test_a_cell_is_untuned_when_no_value_came_from_the_study_or_a_search():
    tuned = RunSpec(losses=("x",), generator=PAIR, defaults="tuned")
    own = {"lr_g": "pair", "lr_d": "pair", "n_critic": "loss"}
    assert untuned(own, PAIR, tuned)
    assert not untuned({**own, "lr_g": STUDY_SOURCE}, PAIR, tuned)
    assert not untuned({**own, "lr_g": "search"}, PAIR, tuned)  # a search tunes it
    assert not untuned(own, PAIR, RunSpec(losses=("x",), generator=PAIR, defaults="pair"))
    assert untuned(own, PAIR, RunSpec(losses=("x",), generator=PAIR))  # tuned: the default
    # a pair without a study singles out no loss
    assert not untuned(own, "dcgan-lite", RunSpec(losses=("x",), defaults="tuned"))


def test_tuned_defaults_count_steps_in_the_studys_unit_unless_told():
    cpu = torch.device("cpu")
    tuned = with_defaults(RunSpec(losses=("wgan",), defaults="tuned", precision="fp32"), device=cpu)
    assert (tuned.step_unit, tuned.defaults) == ("discriminator", "tuned")
    told = RunSpec(losses=("wgan",), defaults="tuned", step_unit="generator", precision="fp32")
    assert with_defaults(told, device=cpu).step_unit == "generator"
    pair = RunSpec(losses=("wgan",), defaults="pair", precision="fp32")
    assert (with_defaults(pair, device=cpu).step_unit, pair.defaults) == ("generator", "pair")


FAST = ["--steps", "4", "--batch-size", "16", "--fid-samples", "0", "--log-every", "2"]


def test_a_tuned_run_says_where_each_setting_came_from(tiny_mnist, tmp_path, capsys, add_plugin):
    from ganbench.default_plugins.losses import NonSaturating

    add_plugin("register_losses", "my-loss", NonSaturating)  # a new plugin's loss: untuned
    tuned_loss = next(iter(equal_tuning.BEST))
    out = tmp_path / "res"
    argv = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, "--loss", "my-loss"]
    assert main([*argv, "--defaults", "pair"]) == 0  # its cell is not the tuned run's
    capsys.readouterr()
    assert main([*argv, "--loss", tuned_loss]) == 0  # tuned: the default on the study's pair
    printed = capsys.readouterr()
    assert "my-loss (untuned)" in printed.out and f"{tuned_loss} (untuned)" not in printed.out
    note = f"my-loss: not tuned by {equal_tuning.STUDY} on {PAIR}, so it trains with the pair's"
    assert note in printed.err
    assert f"ganbench search --config {equal_tuning.STUDY}/study.toml --loss my-loss" in printed.err
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["defaults"]) == ["pair", "tuned", "tuned"]  # tuned trained its own cells
    mine = runs[runs["loss"] == "my-loss"]
    assert list(mine["untuned"]) == [False, True]
    assert mine["lr_d"].nunique() == 1 and mine["config_hash"].nunique() == 2
    tuned = runs[runs["loss"] == tuned_loss].iloc[0]
    assert not tuned["untuned"] and tuned["step_unit"] == "discriminator"
    assert set(json.loads(tuned["hp_sources"]).values()) == {STUDY_SOURCE}
    summary = pd.read_csv(out / "summary.csv")
    flags = summary.set_index(["loss", "setup"])["untuned"].dropna().astype(str).str.lower()
    assert sorted(flags) == ["false", "false", "true"]
