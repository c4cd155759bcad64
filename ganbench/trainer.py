"""Train one (loss, models, data, seed) cell: alternating updates as in the source article.

Per generator step: ``n_critic`` discriminator steps (fix G, update D), then one generator step
(fix D, update G). The trainer owns optimisers, ``zero_grad``, ``backward`` and ``step``; the loss
only scores.
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

from ganbench.losses import Hyperparams, Loss

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """One cell's training settings.

    ``steps`` counts generator updates; ``warmup`` generator steps are excluded from timing;
    ``log_every`` is the spacing of the loss curve points (each point is the mean over the window).
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


@dataclass
class TrainResult:
    status: str = "ok"  # ok | diverged
    diverged_at: int | None = None  # the generator step whose losses were first non-finite
    steps_done: int = 0
    final_d_loss: float = math.nan
    final_g_loss: float = math.nan
    train_images_per_s: float = math.nan  # batch * generator steps / timed seconds
    d_step_ms: float = math.nan  # median-free mean of one discriminator step
    g_step_ms: float = math.nan
    train_s: float = math.nan  # training wall time, evaluation during training excluded
    gflop_per_step: float = math.nan  # one generator step incl. its n_critic D steps (counted)
    curves: list[tuple[int, str, float]] = field(default_factory=list)


def make_optimizer(name: str, params, lr: float, beta1: float, beta2: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"Unknown optimizer {name!r}. Available: adam, rmsprop, sgd")


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


def train(
    G: nn.Module,
    D: nn.Module,
    loss: Loss,
    next_batch: Callable[[], Tensor],
    config: TrainConfig,
    evaluate: Callable[[int], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``G`` and ``D`` in place with ``loss``; return losses, timings and status.

    Curves: every ``log_every`` steps the mean D and G losses over the window, the training
    wall time ``wall_s`` and the training compute ``train_gflop`` so far (for equal-compute
    comparisons); every ``eval_every`` steps whatever ``evaluate(step)`` returns. Evaluation
    time is excluded from every timing.

    On CPU, a generator's optional ``cpu_threads`` caps the intra-op threads while training:
    tiny models (the 2-D MLPs) are many times faster on one thread than on several, which only
    add synchronisation (and stall whenever another process holds a core).
    """
    with cpu_threads(getattr(G, "cpu_threads", None), config.device):
        return _train(G, D, loss, next_batch, config, evaluate)


def _train(
    G: nn.Module,
    D: nn.Module,
    loss: Loss,
    next_batch: Callable[[], Tensor],
    config: TrainConfig,
    evaluate: Callable[[int], dict[str, float]] | None,
) -> TrainResult:
    torch.set_flush_denormal(True)  # a saturated D produces denormals, which alone halve speed
    device, hp = config.device, config.hp
    G.to(device).train()
    D.to(device).train()
    if len(G.output_shape) == 3:  # conv models: channels_last is faster on CPU and GPU
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    loss.hp = hp
    opt_g = make_optimizer(hp.optimizer_g, G.parameters(), hp.lr_g, hp.beta1, hp.beta2)
    opt_d = make_optimizer(hp.optimizer_d, D.parameters(), hp.lr_d, hp.beta1, hp.beta2)
    noise = torch.Generator(device=device).manual_seed(config.seed)
    z_shape = (config.batch_size, G.z_dim)
    channels_last = len(G.output_shape) == 3

    def real_batch() -> Tensor:
        x = from_unit(next_batch(), G.output_range)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    # Per-step losses stay on the device; read back only at log points (no per-step host sync).
    d_hist = torch.full((config.steps,), math.nan, device=device)
    g_hist = torch.full((config.steps,), math.nan, device=device)
    clock = _Clock(device)
    marks: list[tuple] = []
    result = TrainResult()
    autocast = _autocast(device, config.precision)
    bar = tqdm(
        total=config.steps,
        desc=config.description,
        disable=not (config.progress and sys.stderr.isatty()),
        leave=False,
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    paused = 0.0  # seconds spent evaluating, excluded from training wall time
    logged = 0
    flops = _TotalFlopCounter()
    for step in range(config.steps):
        counting = step == 0  # count the FLOPs of the first (untimed) iteration
        if counting:
            flops.__enter__()
        t0 = clock.now()
        # -- discriminator phase: fix G, update D n_critic times ---------------------------------
        for _ in range(hp.n_critic):
            real = real_batch()
            with torch.no_grad(), autocast:
                fake = G(torch.randn(z_shape, generator=noise, device=device))
            with autocast:
                d_loss = loss.d_loss(D, real, fake)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            loss.after_d_step(D)
        t1 = clock.now()
        # -- generator phase: fix D (no weight gradients for D), update G --------------------------
        D.requires_grad_(False)
        with autocast:
            fake = G(torch.randn(z_shape, generator=noise, device=device))
            g_loss = loss.g_loss(D, real, fake)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        t2 = clock.now()
        if counting:
            flops.__exit__(None, None, None)
            result.gflop_per_step = flops.get_total_flops() / 1e9
        d_hist[step] = d_loss.detach()
        g_hist[step] = g_loss.detach()
        if step >= min(config.warmup, config.steps // 2):
            marks.append((t0, t1, t2))
        bar.update(1)

        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            window = slice(logged, step + 1)
            d_win, g_win = d_hist[window].cpu(), g_hist[window].cpu()
            bad = ~(torch.isfinite(d_win) & torch.isfinite(g_win))
            if bad.any():
                result.status = "diverged"
                result.diverged_at = logged + int(bad.nonzero()[0, 0]) + 1
                result.steps_done = step + 1
                break
            elapsed = time.perf_counter() - start - paused
            result.curves += [
                (step + 1, "d_loss", float(d_win.mean())),
                (step + 1, "g_loss", float(g_win.mean())),
                (step + 1, "wall_s", elapsed),
                (step + 1, "train_gflop", (step + 1) * result.gflop_per_step),
            ]
            result.final_d_loss, result.final_g_loss = float(d_win[-1]), float(g_win[-1])
            bar.set_postfix(d=f"{result.final_d_loss:.3f}", g=f"{result.final_g_loss:.3f}")
            logged = step + 1
            result.steps_done = step + 1
        if evaluate is not None and config.eval_every and (step + 1) % config.eval_every == 0:
            t_eval = time.perf_counter()
            result.curves += [(step + 1, k, float(v)) for k, v in evaluate(step + 1).items()]
            G.train()
            paused += time.perf_counter() - t_eval
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.train_s = time.perf_counter() - start - paused
    if marks:
        d_s = sum(clock.seconds(a, b) for a, b, _ in marks)
        g_s = sum(clock.seconds(b, c) for _, b, c in marks)
        total = sum(clock.seconds(a, c) for a, _, c in marks)
        result.d_step_ms = 1000.0 * d_s / (len(marks) * hp.n_critic)
        result.g_step_ms = 1000.0 * g_s / len(marks)
        result.train_images_per_s = config.batch_size * len(marks) / total
    return result


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
