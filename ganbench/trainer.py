"""Train one (loss, models, data, seed) cell: alternating updates as in the source article.

Per generator step: ``n_critic`` discriminator steps (fix G, update D), then one generator step
(fix D, update G). The trainer owns optimisers, ``zero_grad``, ``backward`` and ``step``; the loss
only scores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from ganbench.checkpoints import rng_state, set_rng_state
from ganbench.errors import describe
from ganbench.losses import Hyperparams, Loss

PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes


@dataclass(frozen=True)
class TrainConfig:
    """One cell's training settings.

    ``steps`` counts generator updates; ``warmup`` generator steps after each (re)start are
    excluded from timing; ``log_every`` is the spacing of the loss curve points (each point is the
    mean over the window) and of the divergence checks; ``checkpoint_every`` the spacing of the
    checkpoints handed to ``train``'s ``checkpoint`` callback (0: none during training).
    """

    steps: int
    batch_size: int
    seed: int
    hp: Hyperparams
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    log_every: int = 10
    warmup: int = 10
    progress: bool = True
    description: str = ""
    eval_every: int = 0  # >0: call ``evaluate(step)`` every that many steps (e.g. FID curves)
    checkpoint_every: int = 0
    compile: str = ""  # a torch.compile mode for G's and D's forward; "": eager
    # the G step scores the last D step's fake batch instead of drawing a new one (as the
    # PyTorch DCGAN example does): one G forward less per step
    reuse_fake: bool = False


@dataclass
class TrainResult:
    status: str = "ok"  # ok | diverged
    diverged_at: int | None = None  # the generator step where NaN/Inf was first seen
    diverged_reason: str = ""  # what went non-finite: "d_loss", "g_loss" or "parameters"
    steps_done: int = 0
    resumed_from: int = 0  # the generator step this call started at (0: not resumed)
    final_d_loss: float = math.nan
    final_g_loss: float = math.nan
    train_images_per_s: float = math.nan  # batch * generator steps / timed seconds
    d_step_ms: float = math.nan  # median-free mean of one discriminator step
    g_step_ms: float = math.nan
    train_s: float = math.nan  # training wall time of all starts, evaluation and saving excluded
    gflop_per_step: float = math.nan  # one generator step incl. its n_critic D steps (counted)
    curves: list[tuple[int, str, float]] = field(default_factory=list)


@dataclass
class _Progress:
    """The loop's bookkeeping. Saved in every checkpoint, so a resumed run continues exactly."""

    step: int = 0  # generator steps done
    logged: int = 0  # steps whose losses are summarised on the curves
    status: str = "ok"
    diverged_at: int | None = None
    diverged_reason: str = ""
    final_d_loss: float = math.nan
    final_g_loss: float = math.nan
    gflop_per_step: float = math.nan  # counted on step 0 only, so a resumed run keeps it
    train_s: float = 0.0  # training seconds up to the last save (all earlier starts)
    timed_steps: int = 0  # generator steps in the sums below (warm-up after each start excluded)
    d_s: float = 0.0  # seconds in discriminator phases of the timed steps
    g_s: float = 0.0
    step_s: float = 0.0
    curves: list[tuple[int, str, float]] = field(default_factory=list)


def make_optimizer(name: str, params, lr: float, beta1: float, beta2: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"Unknown optimizer {name!r}. Available: adam, rmsprop, sgd")


def uses_channels_last(G: nn.Module) -> bool:
    """Whether the trainer keeps ``G`` and its D in channels_last (image generators: conv models
    are faster in that layout on CPU and GPU)."""
    return len(G.output_shape) == 3


def to_layout(module: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """``module`` on ``device``, in the memory format the trainer uses: a reloaded generator
    put there samples bit for bit what the trained one did (``ganbench evaluate``)."""
    module.to(device)
    return module.to(memory_format=torch.channels_last) if channels_last else module


def to_unit(x: Tensor, output_range: tuple[float, float] | None) -> Tensor:
    """Map generator output from its ``output_range`` to the dataset's [0, 1] range.

    ``None`` (e.g. 2-D points) means the generator works in the data's own units: no mapping.
    """
    if output_range is None:
        return x.float()
    lo, hi = output_range
    return ((x.float() - lo) / (hi - lo)).clamp_(0.0, 1.0)


def from_unit(x: Tensor, output_range: tuple[float, float] | None) -> Tensor:
    """Map data in [0, 1] into the generator's ``output_range``, so D sees one range."""
    if output_range is None:
        return x
    lo, hi = output_range
    return x if (lo, hi) == (0.0, 1.0) else x * (hi - lo) + lo


class _Clock:
    """Phase timestamps: perf_counter on CPU, CUDA events on GPU (no host sync per step)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start, end) -> float:
        if self.cuda:
            return start.elapsed_time(end) / 1000.0
        return end - start


class _NoModuleTracking:
    """Stands in for FlopCounterMode's ModuleTracker: every FLOP is counted as "Global"."""

    parents = {"Global"}

    def __enter__(self) -> _NoModuleTracking:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _TotalFlopCounter(FlopCounterMode):
    """FlopCounterMode counting only the total. Its per-module tracker installs backward hooks
    that make ``torch.autograd.grad`` inside a loss fail ("A leaf node was passed to
    _will_engine_execute_node"), which gradient penalties (WGAN-GP) need."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _NoModuleTracking()


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device):
    """Run the block with ``n`` intra-op CPU threads (``None``, or not on CPU: unchanged)."""
    if n is None or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    with cpu_threads(getattr(G, "cpu_threads", None), config.device):
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
    progress = _Progress()

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
            d_hist.copy_(resume["d_hist"])
            g_hist.copy_(resume["g_hist"])
            progress = _Progress(**resume["progress"])
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

    clock = _Clock(device)
    marks: list[tuple] = []  # (start, after D phase, after G phase) of each timed step
    autocast = _autocast(device, config.precision)
    bar = progress_bar(config, initial=first)
    start = time.perf_counter()
    train_s_before = progress.train_s  # training seconds of earlier starts
    paused = 0.0  # seconds spent evaluating or saving, excluded from training wall time

    def elapsed() -> float:
        return train_s_before + time.perf_counter() - start - paused

    def save() -> None:
        _fold_timings(marks, clock, progress, device)
        progress.train_s = elapsed()
        checkpoint(state())

    flops = _TotalFlopCounter()
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
            if not _log_point(progress, d_hist, g_hist, lambda: _all_finite((G, D)), elapsed()):
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
    _fold_timings(marks, clock, progress, device)
    train_s = elapsed()
    if checkpoint is not None and progress.step > first:
        save()
    return result(progress, progress, config, train_s, resumed_from=first)


def progress_bar(config: TrainConfig, initial: int = 0) -> tqdm:
    """The cell's tqdm bar: off unless ``config.progress`` and stderr is a terminal."""
    return tqdm(
        total=config.steps,
        initial=initial,
        desc=config.description,
        disable=not (config.progress and sys.stderr.isatty()),
        leave=False,
        dynamic_ncols=True,
    )


def result(
    progress: _Progress,
    timing: _Progress,
    config: TrainConfig,
    train_s: float,
    resumed_from: int = 0,
    share: int = 1,
) -> TrainResult:
    """A run's :class:`TrainResult`: outcome, losses and curves from ``progress``, timings from
    ``timing`` (the same object for one cell; the pack's shared sums for ``share`` seeds trained
    together, whose images/s is the aggregate divided by ``share``)."""
    timed, n_critic = timing.timed_steps, config.hp.n_critic
    return TrainResult(
        status=progress.status,
        diverged_at=progress.diverged_at,
        diverged_reason=progress.diverged_reason,
        steps_done=progress.step,
        resumed_from=resumed_from,
        final_d_loss=progress.final_d_loss,
        final_g_loss=progress.final_g_loss,
        train_images_per_s=config.batch_size * timed / timing.step_s / share if timed else math.nan,
        d_step_ms=1000.0 * timing.d_s / (timed * n_critic) if timed else math.nan,
        g_step_ms=1000.0 * timing.g_s / timed if timed else math.nan,
        train_s=train_s,
        gflop_per_step=progress.gflop_per_step,
        curves=list(progress.curves),
    )


def history_size(config: TrainConfig) -> int:
    """Length of the per-step loss buffers: the steps between two log points (the losses are
    read back, and checked for NaN, only there), so memory does not grow with ``--steps``."""
    return max(1, min(int(config.log_every), int(config.steps)))


def _log_point(
    progress: _Progress,
    d_hist: Tensor,
    g_hist: Tensor,
    weights_finite: Callable[[], bool],
    wall_s: float,
) -> bool:
    """Put the window since the last log point (up to ``progress.step``) on the curves; False
    (and status diverged) if a loss in it, or a weight now (``weights_finite()``), is NaN or
    Inf."""
    start = progress.logged % len(d_hist)  # log points fall on multiples of the buffer's size
    window = slice(start, start + progress.step - progress.logged)
    d_win, g_win = d_hist[window].cpu(), g_hist[window].cpu()
    bad = ~(torch.isfinite(d_win) & torch.isfinite(g_win))
    if bad.any():
        at = int(bad.nonzero()[0, 0])
        progress.diverged_at = progress.logged + at + 1
        progress.diverged_reason = "d_loss" if not torch.isfinite(d_win[at]) else "g_loss"
    elif not weights_finite():
        progress.diverged_at = progress.step  # first seen here; losses were still finite
        progress.diverged_reason = "parameters"
    if progress.diverged_at is not None:
        progress.status = "diverged"
        return False
    step = progress.step
    progress.curves += [
        (step, "d_loss", float(d_win.mean())),
        (step, "g_loss", float(g_win.mean())),
        (step, "wall_s", wall_s),
        (step, "train_gflop", step * progress.gflop_per_step),
    ]
    progress.final_d_loss, progress.final_g_loss = float(d_win[-1]), float(g_win[-1])
    progress.logged = step
    return True


def _all_finite(models: tuple[nn.Module, ...]) -> bool:
    """Every parameter and floating-point buffer (e.g. BatchNorm statistics) finite: one sync."""
    tensors = [t for m in models for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def _fold_timings(marks: list[tuple], clock: _Clock, progress: _Progress, device) -> None:
    """Add the timed steps in ``marks`` to ``progress``'s sums (so checkpoints carry them)."""
    if not marks:
        return
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # CUDA events must have completed before reading them
    progress.timed_steps += len(marks)
    progress.d_s += sum(clock.seconds(a, b) for a, b, _ in marks)
    progress.g_s += sum(clock.seconds(b, c) for _, b, c in marks)
    progress.step_s += sum(clock.seconds(a, c) for a, _, c in marks)
    marks.clear()


@torch.no_grad()
def generate(
    G: nn.Module, n: int, seed: int, device: torch.device, batch_size: int = 500
) -> Tensor:
    """``n`` samples of ``G`` in [0, 1] (CPU, float32), from noise seeded by ``seed``."""
    G.eval()
    noise = torch.Generator(device=device).manual_seed(seed)
    out = []
    for i in range(0, n, batch_size):
        z = torch.randn((min(batch_size, n - i), G.z_dim), generator=noise, device=device)
        out.append(to_unit(G(z), G.output_range).cpu())
    G.train()
    return torch.cat(out) if out else torch.empty((0, *G.output_shape))
