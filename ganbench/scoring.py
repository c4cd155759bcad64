"""Scoring a trained cell: its sample grids, its evaluator's metrics for G and the EMA
generator, its FID curve points while it trains, its convergence columns, and keeping its
generators on disk."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel

from ganbench import generator_files
from ganbench.convergence import convergence_columns
from ganbench.datasets import Dataset, Evaluator, metric_names
from ganbench.ema import EMA_SUFFIX, ready_to_sample
from ganbench.errors import describe
from ganbench.spec import RunSpec
from ganbench.tables import NOT_METRICS
from ganbench.trainer import TrainResult, generate


def scored_metrics(evaluator: Evaluator, scores: dict[str, Any], suffix: str) -> list[str]:
    """The metric names of ``scores``; for the EMA generator (``suffix``) only its outcomes: how
    they were computed (``fid_samples``, ...) is G's."""
    names = metric_names(evaluator, scores)
    return [m for m in names if m not in NOT_METRICS] if suffix else names


def generators(
    G: torch.nn.Module, ema: AveragedModel | None, device: torch.device
) -> list[tuple[torch.nn.Module, str]]:
    """``(model, column suffix)`` of the generators a cell scores: G, and its EMA (``_ema``)."""
    found = [(G, "")]
    if ema is not None:
        found.append((ready_to_sample(ema, device), EMA_SUFFIX))
    return found


def curve_scorer(
    G: torch.nn.Module,
    curve_evaluator: Evaluator | None,
    eval_seed: int,
    device: torch.device,
    ema: AveragedModel | None = None,
) -> Callable[[int], dict[str, float]] | None:
    """The ``evaluate(step)`` of ``--eval-every``: ``curve_evaluator``'s numeric scores of G now,
    and of the EMA generator (``<metric>_ema``) where there is one."""
    if curve_evaluator is None:
        return None

    def evaluate(step: int) -> dict[str, float]:
        out = {}
        for model, suffix in generators(G, ema, device):
            scores = curve_evaluator.score(
                generate(model, curve_evaluator.n_samples, eval_seed, device)
            )
            names = scored_metrics(curve_evaluator, scores, suffix)
            out.update({k + suffix: scores[k] for k in names})
        return out

    return evaluate


def record_result(
    row: dict[str, Any], result: TrainResult, curve_evaluator: Evaluator | None = None
) -> list[dict[str, Any]]:
    """Put a training result's columns into ``row``, with its time to quality and whether it
    was still improving where it has FID curve points (:mod:`ganbench.convergence`); return its
    curves.csv rows."""
    row.update(
        status=result.status,
        diverged_at=result.diverged_at,
        diverged_reason=result.diverged_reason,
        steps_done=result.steps_done,
        resumed_from_step=result.resumed_from,
        train_images_per_s=result.train_images_per_s,
        d_step_ms=result.d_step_ms,
        g_step_ms=result.g_step_ms,
        gflop_per_step=result.gflop_per_step,
        train_s=result.train_s,
        final_d_loss=result.final_d_loss,
        final_g_loss=result.final_g_loss,
    )
    if curve_evaluator is not None:
        floor = curve_evaluator.reference().get("fid")
        floor = float(floor) if isinstance(floor, int | float) else math.nan
        row.update(convergence_columns(result.curves, floor, ("", EMA_SUFFIX)))
    run_id = row["run_id"]
    return [{"run_id": run_id, "step": s, "metric": m, "value": v} for s, m, v in result.curves]


def score(
    G: torch.nn.Module,
    row: dict[str, Any],
    spec: RunSpec,
    dataset: Dataset,
    evaluator: Evaluator | None,
    device: torch.device,
    noise_seeds: dict[str, int],
    ema: AveragedModel | None = None,
) -> None:
    """A trained cell's sample grids (fixed noise) and, with an evaluator, its scores, into
    ``row``: for G, and for its EMA generator (``samples_ema_png``, ``<metric>_ema``)."""
    names = []
    taken = set(row)  # the cell's identity and training columns: no score may overwrite them
    for model, suffix in generators(G, ema, device):
        grid = spec.out / "samples" / f"{row['run_id']}{suffix.replace('_', '-')}.png"
        samples = generate(model, dataset.preview_samples, noise_seeds["grid"], device)
        try:  # a picture is not a result: a dataset plugin failing to draw one costs no cell
            dataset.save_samples(samples, grid)
        except Exception as exc:
            row[f"samples{suffix}_error"] = describe(exc)
            print(f"  no sample picture {grid}: {describe(exc)}", file=sys.stderr)
        if grid.exists():
            row[f"samples{suffix}_png"] = str(grid.relative_to(spec.out))
        if evaluator is not None:
            samples = generate(model, evaluator.n_samples, noise_seeds["eval"], device)
            scores = evaluator.score(samples)
            clash = sorted(set(scores) & taken)
            if clash:
                raise ValueError(
                    f"the evaluator's scores {clash} would overwrite the runs.csv columns of the "
                    "same names: rename them"
                )
            metrics = scored_metrics(evaluator, scores, suffix)
            if suffix:  # the EMA's outcomes; how they were computed is G's (fid_samples, ...)
                scores = {k + suffix: v for k, v in scores.items() if k in metrics}
            names += [m + suffix for m in metrics]
            row.update(scores)
    if evaluator is not None:
        row["metrics"] = " ".join(names)


def keep_generators(
    row: dict[str, Any],
    spec: RunSpec,
    G: torch.nn.Module,
    ema_G: torch.nn.Module | None,
    noise_seeds: dict[str, int],
    channels_last: bool,
    log: Callable[[str], None],
) -> None:
    """Save a scored cell's generators (:mod:`ganbench.generator_files`) unless the spec says not
    to; its row gets ``generator_file``. A failed write (a full disk) is logged and leaves the
    trained and scored cell as it is, without a file."""
    if not spec.keep_generators:
        return
    path = generator_files.path_for(spec.out, row["run_id"])
    try:
        generator_files.save(path, row, G, ema_G, noise_seeds, channels_last)
    except OSError as exc:
        log(f"  could not keep the generators in {path} ({describe(exc)}); the row is kept")
        return
    row["generator_file"] = str(path.relative_to(spec.out))
