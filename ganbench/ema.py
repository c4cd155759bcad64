"""An exponential moving average of the generator's weights (Yazici et al. 2019).

StudioGAN's ``G_ema``, built on torch's :class:`~torch.optim.swa_utils.AveragedModel`: after
every generator step the averaged weights move toward G's, ``ema = d * ema + (1 - d) * G``, with
TensorFlow's warm-up ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a short run
is not dominated by the initial weights. No gradients, no training FLOPs (one elementwise lerp
per parameter per step).

BatchNorm: the averaged weights do not match G's running statistics, so before an EMA generator
draws samples its BatchNorm statistics are recomputed for its own weights
(:func:`~torch.optim.swa_utils.update_bn`, StudioGAN's "standing statistics") on fixed noise.
Training is unaffected: each update copies G's buffers over again.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, update_bn

EMA_SUFFIX = "_ema"  # the EMA generator's columns: fid_ema, is_mean_ema, ...
BN_SEED = 4321  # the fixed noise the EMA generator's BatchNorm statistics are computed on
BN_BATCHES = 10
BN_BATCH_SIZE = 500


def _warmup_ema(decay: float):
    def average(ema: list[Tensor], current: list[Tensor], n: Tensor) -> None:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        if ema and torch.is_floating_point(ema[0]):
            torch._foreach_lerp_(ema, current, 1.0 - d)
        else:
            for a, b in zip(ema, current, strict=True):
                a.copy_(b)

    return average


def ema_of(G: nn.Module, decay: float) -> AveragedModel:
    """A moving average of ``G`` (a copy of it now); update with ``update_parameters(G)``."""
    return AveragedModel(G, multi_avg_fn=_warmup_ema(decay), use_buffers=False)


def ready_to_sample(ema: AveragedModel, device: torch.device) -> nn.Module:
    """The averaged generator, its BatchNorm statistics recomputed for its own weights on fixed
    noise (a no-op without BatchNorm); the caller's RNGs are untouched."""
    return recalibrate_bn(ema.module, device)


@torch.no_grad()
def recalibrate_bn(G: nn.Module, device: torch.device) -> nn.Module:
    """``G`` with its BatchNorm statistics recomputed on fixed noise (:data:`BN_SEED`), as the
    EMA generator's are before it samples; the caller's RNGs are untouched."""
    noise = torch.Generator(device=device).manual_seed(BN_SEED)
    batches = [
        torch.randn((BN_BATCH_SIZE, G.z_dim), generator=noise, device=device)
        for _ in range(BN_BATCHES)
    ]
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # train-mode forwards may draw (Dropout)
        update_bn(batches, G, device=device)
    return G
