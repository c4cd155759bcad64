"""The ``ganbench`` command: parse, call the runner, print. Logic lives in the modules it calls."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from ganbench.errors import GanbenchError

TABLE_COLUMNS = {
    "loss": "loss",
    "generator": "generator",
    "steps": "steps",
    "n_runs": "runs",
    "n_ok": "ok",
    "n_diverged": "diverged",
    "n_error": "failed",
    "fid_mean": "FID",
    "fid_std": "FID std",
    "is_mean_mean": "IS",
    "is_mean_std": "IS std",
    "classes_covered_mean": "classes",
    "train_images_per_s_mean": "img/s",
}


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
        "--steps", type=int, help="generator updates per cell (default: the dataset's)"
    )
    run.add_argument("--batch-size", type=int, default=128)
    run.add_argument("--seed", type=int, action="append", default=[], help="repeatable; default 0")
    run.add_argument("--seeds", type=int, help="N: seeds 0..N-1 (added to any --seed)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument("--precision", default="fp32", help="fp32 or bf16 (autocast)")
    run.add_argument("--out", type=Path, default=Path("results"), help="results directory")
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
    run.add_argument("--log-every", type=int, default=10, help="steps between curve points")
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=200,
        metavar="N",
        help="generator steps between checkpoints (in OUT/checkpoints/); 0: none (default 200)",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="retrain every cell from step 0; by default a rerun skips finished cells and "
        "resumes interrupted ones",
    )

    sub.add_parser("list", help="registered losses, generators, discriminators, datasets")
    sub.add_parser("plugins", help="loaded plugins with versions")
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    if args.optimizer:
        out["optimizer_g"] = out["optimizer_d"] = args.optimizer
    if args.lr is not None:
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


def format_table(summary: pd.DataFrame) -> str:
    cols = [c for c in TABLE_COLUMNS if c in summary]
    table = summary[cols].rename(columns=TABLE_COLUMNS)
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def cmd_run(args: argparse.Namespace) -> int:
    from ganbench.datasets import EvalOptions
    from ganbench.runner import RunSpec, run

    spec = RunSpec(
        losses=tuple(args.loss),
        seeds=_seeds(args),
        generator=args.generator,
        discriminator=args.discriminator,
        dataset=args.dataset,
        steps=args.steps,
        batch_size=args.batch_size,
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
        ),
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        fresh=args.fresh,
    )
    start = time.perf_counter()
    summary = run(spec)
    print(format_table(summary))
    print(
        f"\n{time.perf_counter() - start:.0f} s; results in {args.out}/ (runs.csv, curves.csv, "
        "summary.csv, samples/)"
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


COMMANDS = {"run": cmd_run, "list": cmd_list, "plugins": cmd_plugins}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GanbenchError as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganbench: interrupted; finished cells are in the results files", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
