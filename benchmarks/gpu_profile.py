"""Where a training step's time goes on a CUDA GPU (torch.profiler), for one cell.

Run on a GPU machine: ``python benchmarks/gpu_profile.py``. Prints, for ``non-saturating`` on
``dcgan-mnist-bn`` at batch 128 (bf16), the host-side calls that wait for the device
(synchronisations, blocking copies) and the top CUDA kernels by device time.
"""

from __future__ import annotations

import argparse

import torch
from gpu_throughput import config, data_sampler, models  # noqa: I001 (run from benchmarks/)
from torch.profiler import ProfilerActivity, profile

from ganbench import registry
from ganbench.trainer import train

WAITS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy", "cudaEventSynchronize")


def show(prof, title: str, steps: int) -> None:
    events = prof.key_averages()
    device_us = sum(e.self_device_time_total for e in events if e.device_type.name == "CUDA")
    host_us = max(e.cpu_time_total for e in events)
    print(
        f"\n== {title}: {steps} steps, device busy {device_us / steps / 1000:.2f} ms/step, "
        f"longest host span {host_us / steps / 1000:.2f} ms/step"
    )
    for e in events:
        if any(e.key.startswith(w) for w in WAITS):
            print(f"  host wait {e.key}: {e.count} calls, {e.cpu_time_total / 1000:.1f} ms")
    print(events.table(sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=60))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    name = "non-saturating"
    loss = registry.get_loss(name).factory()
    G, D = models(0)
    train(G, D, loss, data_sampler(0, device), config(name, 30, "bf16"))  # warm-up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        train(G, D, loss, data_sampler(0, device), config(name, args.steps, "bf16"))
    show(prof, "one cell", args.steps)


if __name__ == "__main__":
    main()
