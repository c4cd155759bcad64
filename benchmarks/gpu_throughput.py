"""Training throughput on a CUDA GPU: one cell eager/compiled, fp32/bf16.

Run on a machine with a GPU: ``python benchmarks/gpu_throughput.py [--json FILE]``. Uses the
default MNIST pair (``dcgan-mnist-bn``) at batch 128 and the real data path (the uint8 image
tensor on the device, indices drawn on the host and copied without a sync), on random images:
throughput does not depend on what the pixels show. Every figure is the trainer's own timing
(CUDA events, warm-up excluded, synchronised before reading); packs of K seeds, measured here
until ``--pack`` was removed, are in docs/performance.md. Prints one line per configuration as
it goes; a configuration that fails prints its error and the others go on.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ganbench import registry
from ganbench.defaults import hyperparams_for
from ganbench.spec import RunSpec
from ganbench.trainer import TrainConfig, train

PAIR = "dcgan-mnist-bn"
DEVICE = torch.device("cuda")  # --device cpu: a smoke test of this script
BATCH = 128


def data_sampler(seed: int, device: torch.device):
    dataset = registry.get_dataset("mnist").factory()
    dataset.train_images = torch.randint(0, 256, (60000, 1, 28, 28), dtype=torch.uint8)
    return dataset.sampler(BATCH, torch.Generator().manual_seed(seed), device)


def models(seed: int):
    torch.manual_seed(seed)
    return registry.get_generator(PAIR).factory(), registry.get_discriminator(PAIR).factory()


def config(name: str, steps: int, precision: str, compile_mode: str = "") -> TrainConfig:
    """The cell's settings as ``ganbench run`` makes them: the loss's defaults, then the pair's."""
    hp = hyperparams_for(registry.get_loss(name), models(0)[0], RunSpec((name,)))
    return TrainConfig(
        steps=steps,
        batch_size=BATCH,
        seed=0,
        hp=hp,
        device=DEVICE,
        precision=precision,
        warmup=max(1, steps // 10),
        progress=False,
        log_every=steps,
        compile=compile_mode,
    )


def single(name: str, precision: str, steps: int, compile_mode: str = "") -> dict:
    loss = registry.get_loss(name).factory()
    G, D = models(0)
    start = time.perf_counter()
    result = train(
        G,
        D,
        loss,
        data_sampler(0, DEVICE),
        config(name, steps, precision, compile_mode),
    )
    return {
        "images_per_s": result.train_images_per_s,
        "d_step_ms": result.d_step_ms,
        "g_step_ms": result.g_step_ms,
        "wall_s_incl_compile": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"
    print(f"{name} torch {torch.__version__}", flush=True)
    runs = [
        ("single", "non-saturating", "fp32", ""),
        ("single", "non-saturating", "bf16", ""),
        ("single", "wgan", "fp32", ""),
        ("single", "wgan", "bf16", ""),
        ("single", "non-saturating", "bf16", "default"),
        ("single", "non-saturating", "bf16", "reduce-overhead"),
    ]
    out = []
    for kind, name, precision, extra in runs:
        label = f"{kind:6} {name:15} {precision} {extra or 'eager'}"
        try:
            steps = args.steps // (3 if name == "wgan" else 1)
            figures = single(name, precision, steps, extra)
        except Exception as exc:  # report and go on
            figures = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        out.append(
            {"kind": kind, "loss": name, "precision": precision, "variant": str(extra), **figures}
        )
        print(label, json.dumps(figures), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"device": name, "torch": torch.__version__, "runs": out},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
