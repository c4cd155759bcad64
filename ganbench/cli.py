"""The ``ganbench`` command: parse, call the runner, print. Logic lives in the modules it calls."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ganbench.errors import GanbenchError

DEFAULT_OUT = "ganbench-out"  # = ganbench.runner.DEFAULT_OUT (the CLI imports the runner lazily)

if TYPE_CHECKING:
    from ganbench.tables import Tables


def _key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"value of {key!r} must be a number, got {value!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    from ganbench import __version__

    parser = argparse.ArgumentParser(
        prog="ganbench", description="Benchmark GAN objectives on equal terms."
    )
    parser.add_argument("--version", action="version", version=f"ganbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and score every (loss, seed) cell")
    run.add_argument("--loss", action="append", default=[], help="objective (repeatable)")
    run.add_argument("--generator", help="default: the dataset's recommended model pair")
    run.add_argument("--discriminator", help="default: the generator's name (its pair)")
    run.add_argument("--dataset", default="mnist")
    run.add_argument(
        "--steps",
        type=int,
        help="generator updates per cell (default: the dataset's, or more where the model "
        "pair says one of the run's objectives needs more, e.g. wgan on dcgan-mnist-bn)",
    )
    run.add_argument(
        "--epochs",
        type=float,
        help="budget in passes over the training data instead of --steps (steps = epochs x "
        "dataset size / batch size)",
    )
    run.add_argument(
        "--batch-size", type=int, help="default: the model pair's (dcgan-lite: 64), else 128"
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
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument(
        "--precision",
        default="auto",
        help="fp32, bf16 (autocast) or auto (default: bf16 on a CPU with native bf16 where the "
        "dataset validated it, MNIST; fp32 elsewhere)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        help=f"results directory (default {DEFAULT_OUT}/, ignored by git; committed studies "
        "live in results/<study>/)",
    )
    run.add_argument("--data-dir", type=Path, help="directory with the four MNIST IDX files")
    run.add_argument("--init", help="re-initialise both models: xavier or he")
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
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="loss-specific value, e.g. clip=0.02 for wgan",
    )
    ev = run.add_argument_group("evaluation")
    ev.add_argument("--fid-samples", type=int, default=10000, help="0 skips evaluation")
    ev.add_argument("--backbone", default="mnist-classifier", help="mnist-classifier or inception")
    ev.add_argument("--inception-weights", type=Path, help="local InceptionV3 FID weights file")
    _kid_arguments(ev, "100", "1000")
    run.add_argument("--log-every", type=int, default=10, help="steps between curve points")
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
        default=2000,
        metavar="N",
        help="samples per curve point (fewer than --fid-samples: cheaper, biased up)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=200,
        metavar="N",
        help="generator steps between checkpoints (in OUT/checkpoints/); 0: none (default 200)",
    )
    run.add_argument(
        "--keep-generators",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep each finished cell's G and EMA-G in OUT/generators/ for `ganbench evaluate` "
        "and `ganbench sample` (default: keep; the run says the size per cell)",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
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
        default=1,
        metavar="N",
        help="local: run N cells at once in worker processes (default 1: in this process)",
    )
    scale.add_argument(
        "--pack",
        type=int,
        default=1,
        metavar="K",
        help="train up to K seeds of a loss as one batched computation (torch.func.vmap): "
        "fills a GPU that one small cell leaves idle; no checkpoints while a pack trains",
    )
    scale.add_argument(
        "--compile",
        metavar="MODE",
        default="",
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
        "--gpus-per-cell",
        type=float,
        default=0,
        metavar="G",
        help="ray: GPUs per cell (default 0; fractions share a GPU); with --device auto, "
        "cells train on the GPU when G > 0",
    )

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
    _kid_arguments(evaluate, "each row's", "each row's")
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


def _kid_arguments(group, subsets: str, size: str) -> None:
    group.add_argument(
        "--kid-subsets", type=int, help=f"KID: random subsets averaged (default {subsets})"
    )
    group.add_argument(
        "--kid-subset-size",
        type=int,
        help=f"KID: samples per subset (default {size}; at most the sample count)",
    )


def _overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    if args.optimizer:
        out["optimizer_g"] = out["optimizer_d"] = args.optimizer
    if args.lr is not None:
        if not (math.isfinite(args.lr) and args.lr > 0):
            raise GanbenchError(f"--lr must be a positive number, got {args.lr}")
        out["lr_g"] = out["lr_d"] = args.lr
    for key in ("optimizer_g", "optimizer_d", "lr_g", "lr_d", "beta1", "beta2", "n_critic"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    if args.loss_param:
        out["extras"] = dict(args.loss_param)
    return out


def _seeds(args: argparse.Namespace) -> tuple[int, ...]:
    if args.seeds is not None and args.seeds < 1:
        raise GanbenchError(f"--seeds must be at least 1, got {args.seeds}")
    seeds = list(args.seed) + list(range(args.seeds or 0))
    return tuple(dict.fromkeys(seeds)) or (0,)


def print_tables(tables: Tables) -> None:
    from ganbench.views import comparison_view, ranking_note, significance_note, summary_view

    print(summary_view(tables.summary).to_string(index=False))
    print(ranking_note(tables.summary))
    if tables.comparisons["p_value"].notna().any():  # some pair has FIDs to test
        print()
        print(comparison_view(tables.comparisons).to_string(index=False))
        print(significance_note(tables.comparisons))


def cmd_run(args: argparse.Namespace) -> int:
    from ganbench.datasets import EvalOptions
    from ganbench.runner import LaunchOptions, RunSpec, run

    spec = RunSpec(
        losses=tuple(args.loss),
        seeds=_seeds(args),
        generator=args.generator,
        discriminator=args.discriminator,
        dataset=args.dataset,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        ema_decay=args.ema_decay,
        reuse_fake=args.reuse_fake,
        device=args.device,
        precision=args.precision,
        out=args.out,
        data_dir=args.data_dir,
        init=args.init,
        overrides=_overrides(args),
        eval=EvalOptions(
            backbone=args.backbone,
            fid_samples=args.fid_samples,
            inception_weights=args.inception_weights,
            **{
                key: getattr(args, key)
                for key in ("kid_subsets", "kid_subset_size")
                if getattr(args, key) is not None
            },
        ),
        keep_generators=args.keep_generators,
        log_every=args.log_every,
        eval_every=args.eval_every,
        eval_every_samples=args.eval_every_samples,
        checkpoint_every=args.checkpoint_every,
        fresh=args.fresh,
        pack=args.pack,
        compile=args.compile,
        launch=LaunchOptions(
            launcher=args.launcher or ("ray" if args.ray_address else "local"),
            jobs=args.jobs,
            ray_address=args.ray_address,
            cpus_per_cell=args.cpus_per_cell,
            gpus_per_cell=args.gpus_per_cell,
        ),
    )
    start = time.perf_counter()
    tables = run(spec)
    print_tables(tables)
    print(
        f"\n{time.perf_counter() - start:.0f} s; results in {args.out}/ (runs.csv, curves.csv, "
        "summary.csv, comparisons.csv, samples/); `ganbench report` draws the plots"
    )
    if tables.failed:  # after the table: the other cells finished and are recorded
        names = ", ".join(tables.failed)
        print(
            f"ganbench: {len(tables.failed)} cell(s) failed: {names} (see runs.csv error)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ganbench.report import write_report

    report = write_report(args.dir)
    print_tables(report.tables)
    print("\nwrote " + ", ".join(str(p) for p in report.files))
    return 0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ganbench.evaluate import EvaluateSpec, evaluate

    done = evaluate(
        EvaluateSpec(
            out=args.dir,
            run_ids=tuple(args.run_id),
            backbone=args.backbone,
            fid_samples=args.fid_samples,
            inception_weights=args.inception_weights,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            device=args.device,
            data_dir=args.data_dir,
        ),
        log=_stderr,
    )
    print_tables(done.tables)
    print(f"\nscored {len(done.scored)} cell(s); runs.csv, summary.csv, comparisons.csv updated")
    if done.missing or done.failed:  # after the others were scored and recorded
        problems = []
        if done.missing:
            problems.append(
                f"{len(done.missing)} have no saved generator: {', '.join(done.missing)}"
            )
        if done.failed:
            problems.append(f"{len(done.failed)} failed: {', '.join(done.failed)}")
        print(f"ganbench: cells not scored: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from ganbench.evaluate import SampleSpec, sample

    sample(
        SampleSpec(
            out=args.dir,
            run_id=args.run_id,
            n=args.n,
            to=args.to,
            format=args.format,
            ema=args.ema,
            seed=args.seed,
            device=args.device,
        ),
        log=_stderr,
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ganbench import registry

    for kind in registry.KINDS:
        print("losses:" if kind == "loss" else f"{kind}s:")
        for entry in registry.entries(kind).values():
            print(f"  {entry.name:<24} {entry.provider} {entry.provider_version} ({entry.plugin})")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ganbench import plugins

    for info in plugins.plugin_infos():
        state = f"BROKEN: {info.error}" if info.broken else "ok"
        print(f"{info.distribution:<24} {info.version:<10} {info.name:<40} {state}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "list": cmd_list,
    "plugins": cmd_plugins,
}


def os_error(exc: OSError) -> str:
    """``<file>: <cause>`` of an OSError, one line (both files of a failed rename)."""
    files = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
    cause = exc.strerror or str(exc)
    return f"{files}: {cause}" if files else f"{type(exc).__name__}: {cause}"


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: workers stopped, checkpoints kept, exit 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except GanbenchError as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine said no: a full disk, a read-only file or directory
        print(f"ganbench: error: {os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("ganbench: interrupted; finished cells are in the results files", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
