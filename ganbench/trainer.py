"""Train one (loss, models, data, seed) cell: alternating updates as in the source article.

Per generator step: ``n_critic`` discriminator steps (fix G, update D), then one generator step
(fix D, update G). The trainer owns optimisers, ``zero_grad``, ``backward`` and ``step``; the loss
only scores.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from ganbench.checkpoints import rng_state, set_rng_state
from ganbench.errors import describe
from ganbench.losses import Loss
from ganbench.models import pair_defaults

# The loop's parts live in ganbench.training_parts; the public ones
# are re-exported here, where callers have always imported them from.
from ganbench.training_parts import (
    COMPILE_MODES,
    PRECISIONS,
    Clock,
    Progress,
    TotalFlopCounter,
    TrainConfig,
    TrainResult,
    all_finite,
    cpu_threads,
    fold_timings,
    from_unit,
    generate,
    history_size,
    log_point,
    make_optimizer,
    precision_autocast,
    progress_bar,
    result,
    to_layout,
    to_unit,
    uses_channels_last,
)

__all__ = [
    "COMPILE_MODES",
    "PRECISIONS",
    "ResumeError",
    "TrainConfig",
    "TrainResult",
    "cpu_threads",
    "from_unit",
    "generate",
    "history_size",
    "make_optimizer",
    "precision_autocast",
    "progress_bar",
    "result",
    "to_layout",
    "to_unit",
    "train",
    "uses_channels_last",
]


class ResumeError(Exception):
    """A checkpoint state does not fit the models, optimisers or step budget it was given to."""


def train(
    G: nn.Module,
    D: nn.Module,
    loss: Loss,
    next_batch: Callable[[], Tensor],
    config: TrainConfig,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    *,
    data_rng: torch.Generator | None = None,
    resume: dict[str, Any] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    ema: AveragedModel | None = None,
) -> TrainResult:
    """Train ``G`` and ``D`` in place with ``loss``; return losses, timings and status.

    ``ema`` (:func:`ganbench.ema.ema_of` of ``G``) is updated after every generator step and
    saved in the checkpoints; it never feeds back into training.

    Curves: every ``log_every`` steps the mean D and G losses over the window, the training
    wall time ``wall_s`` and the training compute ``train_gflop`` so far (for equal-compute
    comparisons); every ``eval_every`` steps whatever ``evaluate(step)`` returns. Evaluation
    and checkpoint time are excluded from every timing.

    Divergence: at every log point the window's losses and every parameter and floating-point
    buffer of G and D are checked. NaN or Inf ends training with ``status="diverged"``,
    ``diverged_at`` (the first step whose loss was non-finite; when only weights were, the log
    point that saw them) and ``diverged_reason``.

    Checkpoints: with ``checkpoint`` given, ``checkpoint(state)`` is called every
    ``config.checkpoint_every`` steps and once when training ends (diverged or not). ``state``
    holds live tensors, so the callback must serialise (or copy) it before returning. It holds the
    models, optimisers, step, loss history, curves, timers and the RNG states: torch, numpy,
    python, CUDA where used, the trainer's noise generator and ``data_rng``, the generator
    ``next_batch`` draws from.

    Resume: given such a state as ``resume`` (with ``G``, ``D``, ``loss`` and ``next_batch`` built
    as for the first call), training continues at the state's step and, on CPU, ends with exactly
    the weights, losses and curves of an uninterrupted run. A state of a finished (or diverged)
    run trains no further. Raises :class:`ResumeError` if the state does not fit.

    On CPU, a generator's optional ``cpu_threads`` caps the intra-op threads while training:
    tiny models (the 2-D MLPs) are many times faster on one thread than on several, which only
    add synchronisation (and stall whenever another process holds a core).
    """
    with cpu_threads(pair_defaults(G).cpu_threads, config.device):
        return _train(
            G,
            D,
            loss,
            next_batch,
            config,
            evaluate,
            data_rng=data_rng,
            resume=resume,
            checkpoint=checkpoint,
            ema=ema,
        )


def restore_history(history: Tensor, saved: Tensor, step: int) -> None:
    """Put a checkpoint's loss buffer back into ``history``. A shorter buffer is that of a
    cell shorter than ``log_every`` (a successive-halving rung) continued by a longer one: its
    ``step`` steps sit at the start, where ``history`` keeps them, so the next log point's window
    is the one an uninterrupted run would have."""
    if saved.shape == history.shape:
        history.copy_(saved)
    elif saved.ndim == 1 and step <= len(saved) < len(history):
        history[: len(saved)] = saved.to(history.device)
    else:
        raise ValueError(
            f"the loss buffer holds {len(saved)} steps, this cell keeps {len(history)}"
        )


def _train(
    G: nn.Module,
    D: nn.Module,
    loss: Loss,
    next_batch: Callable[[], Tensor],
    config: TrainConfig,
    evaluate: Callable[[int], dict[str, float]] | None,
    *,
    data_rng: torch.Generator | None,
    resume: dict[str, Any] | None,
    checkpoint: Callable[[dict[str, Any]], None] | None,
    ema: AveragedModel | None,
) -> TrainResult:
    torch.set_flush_denormal(True)  # a saturated D produces denormals, which alone halve speed
    device, hp = config.device, config.hp

    # -- set-up: models on the device, optimisers, the noise source, the loss history ------------
    channels_last = uses_channels_last(G)
    to_layout(G, device, channels_last).train()
    to_layout(D, device, channels_last).train()
    if ema is not None:  # the average lives where G lives, in G's memory format
        ema.to(device)
        to_layout(ema.module, device, channels_last)
    if config.compile:  # in place: state_dict keys (checkpoints) stay those of the eager model
        G.compile(mode=config.compile)
        D.compile(mode=config.compile)
    loss.hp = hp
    opt_g = make_optimizer(hp.optimizer_g, G.parameters(), hp.lr_g, hp.beta1, hp.beta2)
    opt_d = make_optimizer(hp.optimizer_d, D.parameters(), hp.lr_d, hp.beta1, hp.beta2)
    noise = torch.Generator(device=device).manual_seed(config.seed)
    # Per-step losses stay on the device; read back only at log points (no per-step host sync).
    d_hist = torch.full((history_size(config),), math.nan, device=device)
    g_hist = torch.full((history_size(config),), math.nan, device=device)
    progress = Progress()

    # -- resume: continue exactly where a checkpoint left off -------------------------------------
    if resume is not None:
        try:
            G.load_state_dict(resume["G"])
            D.load_state_dict(resume["D"])
            opt_g.load_state_dict(resume["opt_g"])
            opt_d.load_state_dict(resume["opt_d"])
            if ema is not None:
                ema.load_state_dict(resume["ema"])
            if resume.get("budget_steps") != config.steps:
                raise ValueError(
                    f"the checkpoint is of a {resume.get('budget_steps')}-step budget, this "
                    f"cell has {config.steps}"
                )
            progress = Progress(**resume["progress"])
            restore_history(d_hist, resume["d_hist"], progress.step)
            restore_history(g_hist, resume["g_hist"], progress.step)
            # last: nothing above may draw random numbers after the states are back
            set_rng_state(resume["rng"], noise=noise, data=data_rng)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ResumeError(describe(exc)) from exc

    def state() -> dict[str, Any]:
        return {
            "progress": dataclasses.asdict(progress),
            "budget_steps": config.steps,
            "d_hist": d_hist,
            "g_hist": g_hist,
            "G": G.state_dict(),
            "D": D.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "rng": rng_state(device, noise=noise, data=data_rng),
            **({"ema": ema.state_dict()} if ema is not None else {}),
        }

    first = progress.step
    timed_from = first + min(config.warmup, (config.steps - first) // 2)  # warm-up after each start
    z_shape = (config.batch_size, G.z_dim)

    def real_batch() -> Tensor:
        x = from_unit(next_batch(), G.output_range)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    clock = Clock(device)
    marks: list[tuple] = []  # (start, after D phase, after G phase) of each timed step
    autocast = precision_autocast(device, config.precision)
    bar = progress_bar(config, initial=first)
    start = time.perf_counter()
    train_s_before = progress.train_s  # training seconds of earlier starts
    paused = 0.0  # seconds spent evaluating or saving, excluded from training wall time

    def elapsed() -> float:
        return train_s_before + time.perf_counter() - start - paused

    def save() -> None:
        fold_timings(marks, clock, progress, device)
        progress.train_s = elapsed()
        checkpoint(state())

    flops = TotalFlopCounter()
    steps_left = range(first, config.steps) if progress.status == "ok" else range(0)
    for step in steps_left:
        counting = step == 0  # count the FLOPs of the first (untimed) iteration
        if counting:
            flops.__enter__()
        t0 = clock.now()
        # -- discriminator phase: fix G, update D n_critic times ---------------------------------
        for critic_step in range(hp.n_critic):
            real = real_batch()
            # the last D step's fake keeps its graph to G when the G step reuses it
            keep = config.reuse_fake and critic_step == hp.n_critic - 1
            with torch.set_grad_enabled(keep), autocast:
                fake = G(torch.randn(z_shape, generator=noise, device=device))
            with autocast:
                d_loss = loss.d_loss(D, real, fake.detach())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            loss.after_d_step(D)
        t1 = clock.now()
        # -- generator phase: fix D (no weight gradients for D), update G --------------------------
        D.requires_grad_(False)
        with autocast:
            if not config.reuse_fake:
                fake = G(torch.randn(z_shape, generator=noise, device=device))
            g_loss = loss.g_loss(D, real, fake)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        if ema is not None:
            ema.update_parameters(G)
        t2 = clock.now()
        if counting:
            flops.__exit__(None, None, None)
            progress.gflop_per_step = flops.get_total_flops() / 1e9
        d_hist[step % len(d_hist)] = d_loss.detach()
        g_hist[step % len(g_hist)] = g_loss.detach()
        progress.step = step + 1
        if step >= timed_from:
            marks.append((t0, t1, t2))
        bar.update(1)

        # -- log point: losses onto the curves; NaN/Inf in a loss or a weight ends the cell -------
        if progress.step % config.log_every == 0 or progress.step == config.steps:
            if not log_point(progress, d_hist, g_hist, lambda: all_finite((G, D)), elapsed()):
                break
            bar.set_postfix(d=f"{progress.final_d_loss:.3f}", g=f"{progress.final_g_loss:.3f}")
        # -- evaluation during training (FID curves), excluded from timing -----------------------
        at_end = progress.step == config.steps  # the curve always ends at the budget
        if (
            evaluate is not None
            and config.eval_every
            and (progress.step % config.eval_every == 0 or at_end)
        ):
            t_eval = time.perf_counter()
            progress.curves += [(progress.step, k, float(v)) for k, v in evaluate(step + 1).items()]
            G.train()
            paused += time.perf_counter() - t_eval
        # -- checkpoint, excluded from timing (the final one is saved after the loop) ------------
        every = config.checkpoint_every
        if (
            checkpoint is not None
            and every
            and progress.step % every == 0
            and progress.step < config.steps
        ):
            t_save = time.perf_counter()
            save()
            paused += time.perf_counter() - t_save
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the queued steps belong to the training time

    # -- wrap-up: timings, and the final checkpoint (the trained models; a run killed before its
    #    results are written resumes here and trains no further) ---------------------------------
    fold_timings(marks, clock, progress, device)
    train_s = elapsed()
    if checkpoint is not None and progress.step > first:
        save()
    return result(progress, progress, config, train_s, resumed_from=first)
