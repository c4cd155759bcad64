"""The parts of the GAN training loop of :func:`ganbench.trainer.train`, apart from the loop.

Settings and outcome (:class:`TrainConfig`, :class:`TrainResult`, the loop's bookkeeping
:class:`Progress`), the optimiser factory, memory layout and unit mapping, the step clock, the FLOP
counter, precision and thread settings, the progress bar, log points (curves and divergence
checks), timing sums, the result builder and sampling (:func:`generate`). This module imports
neither loop.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from ganbench.losses import Hyperparams

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
class Progress:
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
    """The optimiser ``name`` (adam, rmsprop or sgd) over ``params``."""
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


class Clock:
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


class TotalFlopCounter(FlopCounterMode):
    """FlopCounterMode counting only the total. Its per-module tracker installs backward hooks
    that make ``torch.autograd.grad`` inside a loss fail ("A leaf node was passed to
    _will_engine_execute_node"), which gradient penalties (WGAN-GP) need."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _NoModuleTracking()


def precision_autocast(device: torch.device, precision: str):
    """The context the forward passes and losses run in: bf16 autocast, or nothing for fp32."""
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
    progress: Progress,
    timing: Progress,
    config: TrainConfig,
    train_s: float,
    resumed_from: int = 0,
) -> TrainResult:
    """A run's :class:`TrainResult`: outcome, losses and curves from ``progress``, timings from
    ``timing`` (the same object for one cell)."""
    timed, n_critic = timing.timed_steps, config.hp.n_critic
    return TrainResult(
        status=progress.status,
        diverged_at=progress.diverged_at,
        diverged_reason=progress.diverged_reason,
        steps_done=progress.step,
        resumed_from=resumed_from,
        final_d_loss=progress.final_d_loss,
        final_g_loss=progress.final_g_loss,
        train_images_per_s=config.batch_size * timed / timing.step_s if timed else math.nan,
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


def log_point(
    progress: Progress,
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


def all_finite(models: tuple[nn.Module, ...]) -> bool:
    """Every parameter and floating-point buffer (e.g. BatchNorm statistics) finite: one sync."""
    tensors = [t for m in models for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def fold_timings(marks: list[tuple], clock: Clock, progress: Progress, device) -> None:
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
