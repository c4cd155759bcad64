"""Train K seeds of one cell as one batched computation (``ganbench run --pack K``).

Small models leave a GPU idle: one cell of ``dcgan-mnist`` at batch 128 cannot fill it. Packing
stacks the K seeds' generators and discriminators (``torch.func.stack_module_state``) and runs
each step for all K at once with ``torch.func.vmap`` over ``functional_call``: one batched
computation (batched convolutions become grouped ones) instead of K small ones.

Each seed stays its own run: its own initial weights (built exactly as an unpacked cell builds
them), its own noise generator and data stream, its own BatchNorm statistics, and its own loss:
the objective is computed per seed under ``vmap``, so batch means never mix seeds. The packed
optimiser works on the stacked parameters; Adam, RMSprop, SGD and WGAN's weight clipping are
elementwise, so they update each seed exactly as K separate ones would. A packed cell therefore
matches its unpacked run to float tolerance (``tests/test_packing.py``), not bit for bit: the
batched kernels sum in another order.

What packing asks of a plugin: the loss's ``d_loss``/``g_loss`` must be ``vmap``-able (plain
tensor code is; ``torch.autograd.grad`` inside a loss, as gradient penalties use, is not), and its
``after_d_step`` gets a module whose parameters are the stacked ``(K, ...)`` tensors, so it must
act elementwise. A loss that fails under packing is trained one seed at a time instead
(:func:`ganbench.execute.execute_pack` logs why). Packed cells are not checkpointed during
training: a killed pack restarts its cells from step 0 (finished cells are still skipped).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ganbench.losses import Loss
from ganbench.models import pair_defaults
from ganbench.training_parts import (
    Clock,
    Progress,
    TotalFlopCounter,
    TrainConfig,
    TrainResult,
    cpu_threads,
    fold_timings,
    from_unit,
    history_size,
    log_point,
    make_optimizer,
    precision_autocast,
    progress_bar,
    result,
)


class Stacked(nn.Module):
    """The parameters and buffers of K same-shaped modules, stacked on a new leading dim.

    Its own parameters are the stacked ones, so one optimiser (and a loss's ``after_d_step``)
    acts on all K models at once. :meth:`state` gives ``functional_call``'s dicts, keyed by the
    original names (optionally prefixed); :meth:`unstack_into` copies seed ``k`` back.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        params, buffers = stack_module_state(list(models))
        self.param_names = list(params)
        self.buffer_names = list(buffers)
        for i, name in enumerate(self.param_names):
            self.register_parameter(f"p{i}", nn.Parameter(params[name].detach().clone()))
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"b{i}", buffers[name].detach().clone())

    @property
    def k(self) -> int:
        return next(self.parameters()).shape[0]

    def state(self, prefix: str = "") -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        params = {prefix + n: getattr(self, f"p{i}") for i, n in enumerate(self.param_names)}
        buffers = {prefix + n: getattr(self, f"b{i}") for i, n in enumerate(self.buffer_names)}
        return params, buffers

    @torch.no_grad()
    def unstack_into(self, k: int, model: nn.Module) -> None:
        params, buffers = self.state()
        model.load_state_dict({n: t[k] for n, t in {**params, **buffers}.items()}, strict=True)

    @torch.no_grad()
    def finite_per_model(self) -> Tensor:
        """(K,) bool: every parameter and floating-point buffer of model k is finite."""
        ok = torch.ones(self.k, dtype=torch.bool, device=next(self.parameters()).device)
        for t in (*self.parameters(), *self.buffers()):
            if t.is_floating_point():
                ok &= torch.isfinite(t.flatten(1)).all(1)
        return ok


class _Scorer(nn.Module):
    """Holds D so that ``functional_call`` can swap in one seed's weights for every method the
    loss calls on it (``D(x)``, ``D.features``, ``D.head``...)."""

    def __init__(self, D: nn.Module, loss: Loss) -> None:
        super().__init__()
        self.D = D
        self.loss = loss

    def forward(self, generator_phase: bool, real: Tensor, fake: Tensor) -> Tensor:
        if generator_phase:
            return self.loss.g_loss(self.D, real, fake)
        return self.loss.d_loss(self.D, real, fake)


def train_packed(
    Gs: Sequence[nn.Module],
    Ds: Sequence[nn.Module],
    loss: Loss,
    next_batches: Sequence[Callable[[], Tensor]],
    seeds: Sequence[int],
    config: TrainConfig,
    evaluates: Sequence[Callable[[int], dict[str, float]]] | None = None,
) -> list[TrainResult]:
    """Train ``Gs[k]``/``Ds[k]`` with ``loss``, noise seeded by ``seeds[k]`` and data from
    ``next_batches[k]``, for every k at once; return one :class:`TrainResult` per seed.

    The step is :func:`ganbench.trainer.train`'s (``n_critic`` D steps, then one G step), the
    curves, divergence checks and timings too; ``config.seed`` is unused (``seeds`` rule).
    A seed that diverges is recorded as diverged at the log point that saw it and the others
    train on (seeds never mix, so its NaNs stay its own). The timings are the pack's: each
    seed's ``train_images_per_s`` is the pack's aggregate divided by K. On return the modules
    hold the trained weights.
    """
    if not (len(Gs) == len(Ds) == len(next_batches) == len(seeds)) or not Gs:
        raise ValueError("train_packed needs one G, D, sampler and seed per packed run")
    with cpu_threads(pair_defaults(Gs[0]).cpu_threads, config.device):
        return _train_packed(Gs, Ds, loss, next_batches, seeds, config, evaluates)


def _train_packed(Gs, Ds, loss, next_batches, seeds, config, evaluates) -> list[TrainResult]:
    torch.set_flush_denormal(True)
    device, hp, K = config.device, config.hp, len(Gs)
    for m in (*Gs, *Ds):
        m.to(device).train()
    G_base = copy.deepcopy(Gs[0]).to("meta")
    scorer = _Scorer(copy.deepcopy(Ds[0]).to("meta"), loss)
    sg, sd = Stacked(Gs).to(device), Stacked(Ds).to(device)
    loss.hp = hp
    opt_g = make_optimizer(hp.optimizer_g, sg.parameters(), hp.lr_g, hp.beta1, hp.beta2)
    opt_d = make_optimizer(hp.optimizer_d, sd.parameters(), hp.lr_d, hp.beta1, hp.beta2)
    noises = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    d_hist = torch.full((history_size(config), K), math.nan, device=device)
    g_hist = torch.full((history_size(config), K), math.nan, device=device)
    z_shape = (config.batch_size, Gs[0].z_dim)
    output_range = Gs[0].output_range

    def generate(gp, gb, z):
        return functional_call(G_base, (gp, gb), (z,))

    def d_score(dp, db, real, fake):
        return functional_call(scorer, (dp, db), (False, real, fake))

    def g_score(gp, gb, dp, db, real, z):
        return functional_call(scorer, (dp, db), (True, real, generate(gp, gb, z)))

    v_generate = vmap(generate, randomness="different")
    v_d_score = vmap(d_score, randomness="different")
    v_g_score = vmap(g_score, randomness="different")

    def real_batch() -> Tensor:
        return torch.stack([from_unit(nb(), output_range) for nb in next_batches])

    def noise() -> Tensor:
        return torch.stack([torch.randn(z_shape, generator=g, device=device) for g in noises])

    per_seed = [Progress() for _ in range(K)]
    timing = Progress()  # the pack's shared timing sums
    alive = torch.ones(K, dtype=torch.bool)
    timed_from = min(config.warmup, config.steps // 2)
    clock = Clock(device)
    marks: list[tuple] = []
    autocast = precision_autocast(device, config.precision)
    bar = progress_bar(config)
    start = time.perf_counter()
    paused = 0.0
    gflop = _step_gflop(G_base, scorer.D, loss, hp.n_critic, z_shape, config.batch_size)
    for p in per_seed:
        p.gflop_per_step = gflop
    step = 0
    for step in range(config.steps):
        t0 = clock.now()
        for _ in range(hp.n_critic):
            real = real_batch()
            gp, gb = sg.state()
            dp, db = sd.state("D.")
            with torch.no_grad(), autocast:
                fake = v_generate(gp, gb, noise())
            with autocast:
                d_loss = v_d_score(dp, db, real, fake)
            opt_d.zero_grad(set_to_none=True)
            d_loss.sum().backward()  # seed k's weights only see seed k's loss
            opt_d.step()
            loss.after_d_step(sd)
        t1 = clock.now()
        sd.requires_grad_(False)
        gp, gb = sg.state()
        dp, db = sd.state("D.")
        with autocast:
            g_loss = v_g_score(gp, gb, dp, db, real, noise())
        opt_g.zero_grad(set_to_none=True)
        g_loss.sum().backward()
        opt_g.step()
        sd.requires_grad_(True)
        t2 = clock.now()
        d_hist[step % len(d_hist)] = d_loss.detach()
        g_hist[step % len(g_hist)] = g_loss.detach()
        if step >= timed_from:
            marks.append((t0, t1, t2))
        bar.update(1)
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            _log_points(per_seed, alive, d_hist, g_hist, sg, sd, done, _elapsed(start, paused))
            if not alive.any():
                break
        if evaluates is not None and config.eval_every and done % config.eval_every == 0:
            t_eval = time.perf_counter()
            for k in alive.nonzero().flatten().tolist():
                sg.unstack_into(k, Gs[k])
                per_seed[k].curves += [(done, m, float(v)) for m, v in evaluates[k](done).items()]
                Gs[k].train()
            paused += time.perf_counter() - t_eval
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    fold_timings(marks, clock, timing, device)
    train_s = _elapsed(start, paused)
    for k in range(K):
        sg.unstack_into(k, Gs[k])
        sd.unstack_into(k, Ds[k])
    return [result(p, timing, config, train_s, share=K) for p in per_seed]


def _step_gflop(G: nn.Module, D: nn.Module, loss: Loss, n_critic: int, z_shape, batch) -> float:
    """One seed's counted GFLOP per generator step, as the unpacked trainer counts it, from one
    step of the meta-device (shape-only, free) models. Counting the packed step itself would
    overcount: ``FlopCounterMode`` ignores groups in a grouped convolution's weight gradient."""
    z = torch.empty(z_shape, device="meta")
    real = torch.empty((batch, *G.output_shape), device="meta")
    flops = TotalFlopCounter()
    try:
        with flops:
            for _ in range(n_critic):
                with torch.no_grad():
                    fake = G(z)
                loss.d_loss(D, real, fake).backward()
            D.requires_grad_(False)
            loss.g_loss(D, real, G(z)).backward()
    except Exception:  # a loss that cannot run on shapes alone: no count
        return math.nan
    finally:
        D.requires_grad_(True)
        for m in (G, D):
            m.zero_grad(set_to_none=True)
    return flops.get_total_flops() / 1e9


def _elapsed(start: float, paused: float) -> float:
    return time.perf_counter() - start - paused


def _log_points(per_seed, alive, d_hist, g_hist, sg, sd, step, wall_s) -> None:
    """Each live seed's log point, as the trainer's; a seed that diverged is no longer alive."""
    finite = (sg.finite_per_model() & sd.finite_per_model()).cpu()
    for k in alive.nonzero().flatten().tolist():
        per_seed[k].step = step
        weights_ok = bool(finite[k])
        if not log_point(per_seed[k], d_hist[:, k], g_hist[:, k], lambda w=weights_ok: w, wall_s):
            alive[k] = False
