"""The ``ganbench`` command line's arguments: one argparse parser for every subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path

# a user's own results: ignored by git, so a fresh clone trains and its checkout stays clean;
# committed studies live in results/<study>/, each with its command. Defined here, where the
# parser (which must stay light: no torch) and ganbench.spec both read it.
DEFAULT_OUT = "ganbench-out"
# where each loss's hyperparameters start (--defaults; RunSpec.defaults): the pair's per-loss
# settings over the loss's paper's ("pair"), those and then the committed study's best
# ("tuned"), or the paper's alone ("paper")
DEFAULTS = ("pair", "tuned", "paper")


def key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"value of {key!r} must be a number, got {value!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    from ganbench import __version__

    parser = argparse.ArgumentParser(
        prog="ganbench", description="Benchmark GAN objectives on equal terms."
    )
    parser.add_argument("--version", action="version", version=f"ganbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and score every (loss, seed) cell")
    add_run_arguments(run)
    search = sub.add_parser(
        "search",
        help="equal tuning budgets: K random hyperparameter draws per loss, then the best of "
        "each on N seeds (Lucic et al. 2018)",
    )
    add_run_arguments(search)
    add_search_arguments(search)

    report = sub.add_parser(
        "report", help="rebuild summary/comparisons and write plots and report.md for a results dir"
    )
    report.add_argument(
        "dir", nargs="?", type=Path, default=Path(DEFAULT_OUT), help=f"default: {DEFAULT_OUT}"
    )

    evaluate = sub.add_parser(
        "evaluate",
        help="score the saved generators of finished cells again (new metrics, another backbone "
        "or sample count) and update runs.csv and the tables",
    )
    evaluate.add_argument(
        "dir", nargs="?", type=Path, default=Path(DEFAULT_OUT), help=f"default: {DEFAULT_OUT}"
    )
    evaluate.add_argument(
        "--run-id", action="append", default=[], help="repeatable; default: every ok cell"
    )
    evaluate.add_argument("--backbone", help="mnist-classifier or inception (default: each row's)")
    evaluate.add_argument("--inception-weights", type=Path, help="local InceptionV3 FID weights")
    evaluate.add_argument("--fid-samples", type=int, help="default: each row's")
    kid_arguments(evaluate, "each row's", "each row's")
    evaluate.add_argument("--device", default="auto", help="auto, cpu or cuda")
    evaluate.add_argument("--data-dir", type=Path, help="directory with the four MNIST IDX files")

    sample = sub.add_parser(
        "sample", help="export samples of a finished cell's saved generator (npz or PNGs)"
    )
    sample.add_argument(
        "dir", nargs="?", type=Path, default=Path(DEFAULT_OUT), help=f"default: {DEFAULT_OUT}"
    )
    sample.add_argument("--run-id", required=True, help="the cell's run_id in runs.csv")
    sample.add_argument("-n", type=int, default=10000, help="number of samples (default 10000)")
    sample.add_argument("--format", default="npz", help="npz (one array 'samples') or png")
    sample.add_argument("--to", type=Path, required=True, help="a new .npz file or PNG folder")
    sample.add_argument("--ema", action="store_true", help="the EMA generator's samples")
    sample.add_argument(
        "--seed",
        type=int,
        help="noise seed (default: the cell's evaluation noise, so the "
        "first fid_samples samples are the ones it was scored on)",
    )
    sample.add_argument("--device", default="auto", help="auto, cpu or cuda")

    sub.add_parser("list", help="registered losses, generators, discriminators, datasets")
    sub.add_parser("plugins", help="loaded plugins with versions")
    return parser


def kid_arguments(group, subsets: str, size: str) -> None:
    group.add_argument(
        "--kid-subsets", type=int, help=f"KID: random subsets averaged (default {subsets})"
    )
    group.add_argument(
        "--kid-subset-size",
        type=int,
        help=f"KID: samples per subset (default {size}; at most the sample count)",
    )


def command_parser(command: str) -> argparse.ArgumentParser:
    """A parser of ``command``'s (run or search) options alone, as after its name."""
    parser = argparse.ArgumentParser(prog=f"ganbench {command}")
    add_run_arguments(parser)
    if command == "search":
        add_search_arguments(parser)
    return parser


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The options of ``ganbench run``, which ``ganbench search`` takes too."""
    run.add_argument(
        "--config",
        type=Path,
        metavar="STUDY.toml",
        help="read options from a TOML study file (keys: the long option names, e.g. loss = "
        '["minimax", "wgan"], steps = 30); a flag on the command line overrides the file',
    )
    run.add_argument("--loss", action="append", default=[], help="objective (repeatable)")
    run.add_argument("--generator", help="default: the dataset's recommended model pair")
    run.add_argument("--discriminator", help="default: the generator's name (its pair)")
    run.add_argument("--dataset", help="default: mnist")
    run.add_argument(
        "--steps",
        type=int,
        help="generator updates per cell (default: the dataset's, or more where the model "
        "pair says one of the run's objectives needs more, e.g. wgan on dcgan-mnist-bn)",
    )
    run.add_argument(
        "--step-unit",
        choices=("generator", "discriminator"),
        help="what --steps counts: generator updates (run's default), or discriminator updates "
        "(search's default; Lucic et al. 2018: G updates every n_critic of them, so n_critic "
        "cannot buy extra compute)",
    )
    run.add_argument(
        "--epochs",
        type=float,
        help="budget in passes over the training data instead of --steps (steps = epochs x "
        "dataset size / batch size)",
    )
    run.add_argument(
        "--budget",
        metavar="NAME",
        help="a named training setup of the dataset: its model pair and length (mnist: default, "
        "or long: dcgan-lite-lucic for 5 epochs); --generator, --steps/--epochs and "
        "--batch-size replace its parts",
    )
    run.add_argument(
        "--batch-size", type=int, help="default: the model pair's (the lite pairs: 64), else 128"
    )
    run.add_argument(
        "--ema-decay",
        type=float,
        help="decay of the EMA generator scored beside G (fid_ema, ...); 0: none "
        "(default: 0.999, with warm-up; see ganbench/ema.py)",
    )
    run.add_argument(
        "--reuse-fake",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the G step reuses the last D step's fake batch, as the PyTorch DCGAN example "
        "(default: the model pair's choice; recorded in every row)",
    )
    run.add_argument("--seed", type=int, action="append", default=[], help="repeatable; default 0")
    run.add_argument("--seeds", type=int, help="N: seeds 0..N-1 (added to any --seed)")
    run.add_argument("--device", help="auto (default), cpu or cuda")
    run.add_argument(
        "--precision",
        help="fp32, bf16 (autocast) or auto (default: bf16 on a CPU with native bf16 where the "
        "dataset validated it, MNIST; fp32 elsewhere)",
    )
    run.add_argument(
        "--out",
        type=Path,
        help=f"results directory (default {DEFAULT_OUT}/, ignored by git; committed studies "
        "live in results/<study>/)",
    )
    run.add_argument("--data-dir", type=Path, help="directory with the four MNIST IDX files")
    run.add_argument(
        "--init",
        help="re-initialise both models: xavier, he, normal (N(0, 0.02)) or dcgan-tf "
        "(DCGAN-tensorflow's: N(0, 0.02), truncated in conv layers)",
    )
    run.add_argument(
        "--defaults",  # checked in ganbench.validation: one line naming the choices
        metavar="{" + ",".join(DEFAULTS) + "}",
        help="where each loss's hyperparameters start: tuned (default on a pair a committed "
        "equal-tuning study tuned, the MNIST default: the pair's settings, then the study's best "
        "for each loss, counting --steps in its unit; losses it did not tune are marked "
        "untuned), pair (default elsewhere: the model pair's per-loss settings over the loss's "
        "paper's), paper (each loss's paper's settings alone); a search's draws start from pair",
    )
    hp = run.add_argument_group("hyperparameter overrides (default: each loss's paper defaults)")
    hp.add_argument("--optimizer", help="adam, rmsprop or sgd, for both models")
    hp.add_argument("--optimizer-g")
    hp.add_argument("--optimizer-d")
    hp.add_argument("--lr", type=float, help="learning rate for both models")
    hp.add_argument("--lr-g", type=float)
    hp.add_argument("--lr-d", type=float)
    hp.add_argument("--beta1", type=float)
    hp.add_argument("--beta2", type=float)
    hp.add_argument("--n-critic", type=int, help="discriminator steps per generator step")
    hp.add_argument(
        "--loss-param",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="loss-specific value, e.g. clip=0.02 for wgan",
    )
    ev = run.add_argument_group("evaluation")
    ev.add_argument("--fid-samples", type=int, help="default 10000; 0 skips evaluation")
    ev.add_argument("--backbone", help="mnist-classifier (default) or inception")
    ev.add_argument("--inception-weights", type=Path, help="local InceptionV3 FID weights file")
    kid_arguments(ev, "100", "1000")
    ev.add_argument(
        "--mode-samples",
        type=int,
        metavar="N",
        help="samples the mode metrics count, on datasets with modes (default: the dataset's; "
        "stacked-mnist 25600, ring8 and grid25 2500)",
    )
    run.add_argument("--log-every", type=int, help="steps between curve points (default 10)")
    ev.add_argument(
        "--eval-every",
        type=int,
        metavar="K",
        help="add FID/IS points to curves.csv every K steps (0: off; default: 8 points per "
        "cell, which the time-to-quality columns read)",
    )
    ev.add_argument(
        "--eval-every-samples",
        type=int,
        metavar="N",
        help="samples per curve point (default 2000; fewer than --fid-samples: cheaper, biased up)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="generator steps between checkpoints (in OUT/checkpoints/); 0: none (default 200)",
    )
    run.add_argument(
        "--keep-generators",
        action=argparse.BooleanOptionalAction,
        help="keep each finished cell's G and EMA-G in OUT/generators/ for `ganbench evaluate` "
        "and `ganbench sample` (default: keep; the run says the size per cell)",
    )
    run.add_argument(
        "--keep-checkpoints",
        action=argparse.BooleanOptionalAction,
        help="keep finished cells' final checkpoints (default: removed once the row is written; "
        "generators rescore a cell, and resume needs only unfinished cells' checkpoints)",
    )
    run.add_argument(
        "--fresh",
        action=argparse.BooleanOptionalAction,
        help="retrain every cell from step 0; by default a rerun skips finished cells and "
        "resumes interrupted ones",
    )

    scale = run.add_argument_group(
        "where cells run (docs/scale-out.md); results are the same files whichever launcher"
    )
    scale.add_argument(
        "--launcher",
        metavar="NAME",
        help="local (this machine; default) or ray (Ray tasks; needs ganbench[ray])",
    )
    scale.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="local: run N cells at once in worker processes (default 1: in this process)",
    )
    scale.add_argument(
        "--compile",
        metavar="MODE",
        help="torch.compile the models: default, reduce-overhead (CUDA graphs) or "
        "max-autotune; off by default (no gain on CPU; see README, Performance)",
    )
    scale.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join, e.g. 127.0.0.1:6379 (implies --launcher ray); "
        "default: join the local Ray instance or start one",
    )
    scale.add_argument(
        "--cpus-per-cell",
        type=float,
        metavar="C",
        help="CPUs per cell: Ray's request (default 1; fractions allowed) and each worker's "
        "torch threads (local pool default: cores / --jobs)",
    )
    scale.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads per cell on the CPU, part of each cell's identity (default: "
        "--cpus-per-cell, else cores / --jobs, 1 on Ray; search: 1, so any --jobs trains the "
        "same cells)",
    )
    scale.add_argument(
        "--gpus-per-cell",
        type=float,
        metavar="G",
        help="ray: GPUs per cell (default 0; fractions share a GPU); with --device auto, "
        "cells train on the GPU when G > 0",
    )


def add_search_arguments(search: argparse.ArgumentParser) -> None:
    group = search.add_argument_group("search (docs/search.md)")
    group.add_argument(
        "--trials", type=int, default=8, help="draws per loss, the same for every loss (default 8)"
    )
    group.add_argument(
        "--seeds-best",
        type=int,
        default=3,
        help="seeds the best draw of each loss is retrained on (default 3; new seeds)",
    )
    group.add_argument(
        "--metric",
        help="what picks the best draw (default: the dataset's headline metric, fid on MNIST, "
        "mode_kl on the 2-D sets)",
    )
    group.add_argument(
        "--scheduler",
        choices=("full", "halving"),
        default="full",
        help="full: every draw trains the whole budget (default); halving: successive halving, "
        "the best 1/eta of each rung's draws continue from their checkpoint",
    )
    group.add_argument(
        "--eta", type=int, default=3, help="halving: 1/eta of a rung's draws go on (default 3)"
    )
    group.add_argument(
        "--rungs",
        type=int,
        default=3,
        help="halving: rungs, the first (the grace period) at 1/eta^(rungs-1) of the budget "
        "(default 3)",
    )
    group.add_argument(
        "--grace",
        type=int,
        metavar="STEPS",
        help="halving: the first rung's budget (no draw is judged before it); later rungs "
        "multiply it by eta up to the full budget (replaces --rungs)",
    )
    group.add_argument(
        "--baseline",
        type=Path,
        metavar="STUDY",
        help="a search folder: tune these losses on its protocol (refused, before training, "
        "where anything differs) and compare their best settings with its best settings' seeds",
    )
    group.add_argument(
        "--check-pruning",
        action="store_true",
        help="halving: also train every draw to the full budget and write search_pruning.csv "
        "(the halving pick's full-budget rank, rung-vs-final rank correlation, compute ratio)",
    )
    group.add_argument(
        "--search-seed", type=int, default=0, help="seed of the draws and of the draws' cells"
    )
