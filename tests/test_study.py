"""Study files: ganbench run --config study.toml."""

import pandas as pd
import pytest

from ganbench.cli import main

STUDY = """
loss = ["minimax", "wgan"]
dataset = "ring8"
steps = 12
seeds = 2
loss-param = {clip = 0.05}
"""


def test_a_study_file_sets_the_options_and_the_command_line_wins(tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(STUDY + f'out = "{tmp_path / "a"}"\n')
    assert main(["run", "--config", str(study)]) == 0
    runs = pd.read_csv(tmp_path / "a" / "runs.csv")
    assert sorted(runs["loss"]) == ["minimax", "minimax", "wgan", "wgan"]
    assert set(runs["steps"]) == {12} and set(runs["seed"]) == {0, 1}
    assert runs[runs["loss"] == "wgan"]["loss_params"].iloc[0] == '{"clip": 0.05}'

    out = tmp_path / "b"
    assert main(["run", "--config", str(study), "--steps", "8", "--loss", "wgan",
                 "--out", str(out)]) == 0  # fmt: skip
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["loss"].unique()) == ["wgan"] and set(runs["steps"]) == {8}
    assert set(runs["seed"]) == {0, 1}  # from the file


@pytest.mark.parametrize(
    "text, message",
    [
        ("stepz = 3\n", "Unknown key 'stepz' in study file"),
        ('steps = "ten"\n', "steps = 'ten': expected a whole number"),
        ("fresh = 1\n", "fresh = 1: expected true or false"),
        ("steps = 3\nsteps = 4\n", "is not valid TOML"),
        ("device = 0\n", "device = 0: expected a string"),
        ("generator = 3\n", "generator = 3: expected a string"),
    ],
)
def test_study_file_mistakes_are_one_line_exit_2(tmp_path, capsys, text, message):
    study = tmp_path / "study.toml"
    study.write_text(text)
    assert main(["run", "--config", str(study), "--loss", "minimax", "--dataset", "ring8"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    if "stepz" in text:
        assert "Did you mean 'steps'?" in err and "Valid keys: " in err


def test_a_missing_study_file_is_one_line(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_committed_search_keeps_its_study_file():
    from pathlib import Path

    from ganbench.study import read_study

    root = Path(__file__).resolve().parents[1] / "results"
    studies = sorted(root.glob("search-*/study.toml"))
    assert studies, "no committed search study"
    for path in studies:
        values = read_study(path)
        assert values["out"] == f"results/{path.parent.name}" and values["trials"] >= 8


def _planned_hashes(study, *extra):
    """The config hashes ``ganbench run --config study *extra`` would train, without training."""
    import torch

    from ganbench import registry
    from ganbench.arguments import build_parser
    from ganbench.cli import run_spec
    from ganbench.defaults import checked_hyperparams, with_defaults
    from ganbench.identity import cell_hashes
    from ganbench.models import model_class
    from ganbench.spec import Cell
    from ganbench.study import with_study

    argv = ["--config", str(study), *extra]
    args = with_study("run", build_parser().parse_args(["run", *argv]), argv)
    spec = with_defaults(run_spec(args), device=torch.device("cpu"))
    generator = model_class(registry.get_generator(spec.generator).factory)
    hashes = set()
    for name in spec.losses:
        entry = registry.get_loss(name)
        hp, sources = checked_hyperparams(entry, generator, spec)
        for seed in spec.seeds:
            cell = Cell(entry, seed, hp, sources)
            hashes.add(cell_hashes(cell, spec, torch.device("cpu"))[0])
    return hashes


def test_committed_run_studies_plan_exactly_their_committed_cells():
    from pathlib import Path

    from ganbench.study import read_study

    root = Path(__file__).resolve().parents[1] / "results"
    studies = [p for p in sorted(root.glob("*/study.toml")) if "trials" not in read_study(p)]
    assert len(studies) >= 2
    for study in studies:
        runs = pd.read_csv(study.parent / "runs.csv", dtype=str)
        committed = set(runs["config_hash"])
        pinned = "threads" in read_study(study)  # studies since threads are part of a cell
        if (runs["parallel_cells"].astype(int) > 1).any() and not pinned:
            # trained two at a time on 2 cores (1 thread each) before a cell's thread count was
            # part of it: a rerun now plans 1-thread cells, new hashes; with the count the hash
            # leaves out, the plan is exactly the committed cells, so nothing else changed
            assert not _planned_hashes(study) & committed, study
            assert _planned_hashes(study, "--threads", "2") == committed, study
        else:
            assert _planned_hashes(study) == committed, study


def test_the_command_line_beats_every_file_option_that_sets_the_same_thing(tmp_path):
    from ganbench.arguments import build_parser
    from ganbench.study import with_study

    study = tmp_path / "study.toml"
    study.write_text('lr-g = 0.1\nsteps = 100\nseeds = 3\noptimizer-d = "sgd"\nfresh = true\n')
    argv = ["--config", str(study), "--lr", "0.002", "--epochs", "1", "--seed", "5",
            "--optimizer", "adam", "--no-fresh"]  # fmt: skip
    args = with_study("run", build_parser().parse_args(["run", *argv]), argv)
    assert (args.lr, args.lr_g, args.lr_d) == (0.002, None, None)
    assert (args.steps, args.epochs, args.seed, args.seeds) == (None, 1.0, [5], None)
    assert (args.optimizer, args.optimizer_d, args.fresh) == ("adam", None, False)


def test_a_study_file_that_is_not_text_is_one_line(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_bytes(b"\xff\xfe\x00steps")
    assert main(["run", "--config", str(study)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_committed_search_studies_plan_a_cell_they_committed():
    """One cell of every committed search study keeps its hash: its first loss's first draw, at
    its first budget (a halving search's first rung), planned from its study file without
    training, is a cell of its runs.csv."""
    import dataclasses
    from pathlib import Path

    import torch

    from ganbench import registry
    from ganbench.arguments import build_parser
    from ganbench.cli import search_spec
    from ganbench.defaults import generator_defaults, with_defaults
    from ganbench.halving import rung_budgets
    from ganbench.losses import Hyperparams
    from ganbench.plan import Prepared
    from ganbench.search import draw_cells, draws_eval_every, draws_run_spec
    from ganbench.spec import Cell
    from ganbench.study import read_study, with_study

    cpu = torch.device("cpu")
    root = Path(__file__).resolve().parents[1] / "results"
    studies = [
        p
        for p in sorted(root.glob("*/study.toml"))
        if "trials" in read_study(p) and (p.parent / "runs.csv").exists()
    ]
    assert studies, "no committed search study with cells"
    for study in studies:
        argv = ["--config", str(study)]
        spec = search_spec(with_study("search", build_parser().parse_args(["search", *argv]), argv))
        run = with_defaults(draws_run_spec(spec), device=cpu)
        run = dataclasses.replace(run, eval_every=draws_eval_every(spec, run))
        if spec.scheduler == "halving":
            first = rung_budgets(int(run.steps), spec.eta, spec.rungs, spec.grace)[0]
            run = dataclasses.replace(run, steps=first)
        entry = registry.get_loss(run.losses[0])
        pair = generator_defaults(run.generator)
        prep = Prepared(run, cpu, None, [Cell(entry, spec.seed, Hyperparams())], None, None, pair)
        cell = draw_cells(prep, dataclasses.replace(spec, trials=1))[0]
        committed = set(pd.read_csv(study.parent / "runs.csv", dtype=str)["config_hash"])
        assert cell.config_hash in committed, study
