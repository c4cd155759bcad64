"""The ``ganbench`` command: parse, call the runner, print. Logic lives in the modules it calls."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ganbench.arguments import build_parser
from ganbench.errors import EnvironmentFailure, GanbenchError

if TYPE_CHECKING:
    from ganbench.search import SearchSpec
    from ganbench.spec import RunSpec
    from ganbench.tables import Tables


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


def _given(**values: Any) -> dict[str, Any]:
    """The options the user gave (command line or study file): a value of None was not given,
    and the field keeps its one default, in :mod:`ganbench.spec` (or ``EvalOptions``)."""
    return {key: value for key, value in values.items() if value is not None}


def run_spec(args: argparse.Namespace) -> RunSpec:
    """The :class:`~ganbench.spec.RunSpec` of ``ganbench run``'s (or ``search``'s) options; an
    option not given keeps the spec's default (the parser's defaults are None)."""
    from ganbench.datasets import EvalOptions
    from ganbench.spec import LaunchOptions, RunSpec

    return RunSpec(
        losses=tuple(args.loss),
        seeds=_seeds(args),
        overrides=_overrides(args),
        eval=EvalOptions(
            **_given(
                backbone=args.backbone,
                fid_samples=args.fid_samples,
                inception_weights=args.inception_weights,
                mode_samples=args.mode_samples,
                kid_subsets=args.kid_subsets,
                kid_subset_size=args.kid_subset_size,
            )
        ),
        launch=LaunchOptions(
            launcher=args.launcher or ("ray" if args.ray_address else "local"),
            **_given(
                jobs=args.jobs,
                ray_address=args.ray_address,
                cpus_per_cell=args.cpus_per_cell,
                gpus_per_cell=args.gpus_per_cell,
            ),
        ),
        **_given(
            generator=args.generator,
            discriminator=args.discriminator,
            dataset=args.dataset,
            steps=args.steps,
            epochs=args.epochs,
            step_unit=args.step_unit,
            threads=args.threads,
            budget=args.budget,
            batch_size=args.batch_size,
            ema_decay=args.ema_decay,
            reuse_fake=args.reuse_fake,
            device=args.device,
            precision=args.precision,
            out=args.out,
            data_dir=args.data_dir,
            init=args.init,
            defaults=args.defaults,
            keep_generators=args.keep_generators,
            keep_checkpoints=args.keep_checkpoints,
            log_every=args.log_every,
            eval_every=args.eval_every,
            eval_every_samples=args.eval_every_samples,
            checkpoint_every=args.checkpoint_every,
            fresh=args.fresh,
            compile=args.compile,
        ),
    )


def cmd_run(args: argparse.Namespace) -> int:
    from ganbench.runner import run

    start = time.perf_counter()
    spec = run_spec(args)
    tables = run(spec)
    print_tables(tables)
    print(
        f"\n{time.perf_counter() - start:.0f} s; results in {spec.out}/ (runs.csv, curves.csv, "
        "summary.csv, comparisons.csv, samples/); `ganbench report` draws the plots"
    )
    return failed_exit(tables.failed)


def failed_exit(failed: tuple[str, ...]) -> int:
    """1 after naming the cells that ended in error (the others finished and are recorded)."""
    if failed:
        print(
            f"ganbench: {len(failed)} cell(s) failed: {', '.join(failed)} (see runs.csv error)",
            file=sys.stderr,
        )
        return 1
    return 0


def search_spec(args: argparse.Namespace) -> SearchSpec:
    """The :class:`~ganbench.search.SearchSpec` of ``ganbench search``'s options."""
    from ganbench.search import SearchSpec

    return SearchSpec(
        run=run_spec(args),
        trials=args.trials,
        seeds_best=args.seeds_best,
        metric=args.metric,
        seed=args.search_seed,
        scheduler=args.scheduler,
        eta=args.eta,
        rungs=args.rungs,
        grace=args.grace,
        baseline=args.baseline,
        check_pruning=args.check_pruning,
    )


def cmd_search(args: argparse.Namespace) -> int:
    from ganbench.search import search
    from ganbench.search_report import search_view

    start = time.perf_counter()
    spec = search_spec(args)
    result = search(spec)
    print(search_view(result).to_string(index=False))
    print(result.note)
    print()
    print_tables(result.tables)
    print(
        f"\n{time.perf_counter() - start:.0f} s; results in {spec.run.out}/ (search.csv, "
        "search_best_of_k.csv, search_best.csv, search_comparisons.csv, runs.csv, ...); "
        "`ganbench report` draws the search plots"
    )
    return failed_exit(result.tables.failed)


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
    "search": cmd_search,
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
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if getattr(args, "config", None) is not None:
            from ganbench.study import with_study

            args = with_study(args.command, args, argv[argv.index(args.command) + 1 :])
        return COMMANDS[args.command](args)
    except GanbenchError as exc:  # a user's mistake (2), or the machine's (74), or busy (75)
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except OSError as exc:  # the machine said no: a full disk, a read-only file or directory
        print(f"ganbench: error: {os_error(exc)}", file=sys.stderr)
        return EnvironmentFailure.exit_code
    except KeyboardInterrupt as exc:
        print("ganbench: interrupted; finished cells are in the results files", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
