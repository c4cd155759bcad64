"""Training throughput on a CUDA GPU: one cell eager/compiled, fp32/bf16, and packs of K seeds.

Run on a machine with a GPU: ``python benchmarks/gpu_throughput.py [--json FILE]``. Uses the
default MNIST pair (``dcgan-mnist-bn``) at batch 128 and the real data path (the uint8 image
tensor on the device, indices drawn on the host and copied without a sync), on random images:
throughput does not depend on what the pixels show. Every figure is the trainer's own timing
(CUDA events, warm-up excluded, synchronised before reading). Packs report the aggregate images/s
of all K seeds. Prints one line per configuration as it goes; a configuration that fails prints
its error and the others go on.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ganbench import registry
from ganbench.defaults import hyperparams_for
from ganbench.packing import train_packed
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


def packed(name: str, precision: str, steps: int, k: int) -> dict:
    loss = registry.get_loss(name).factory()
    Gs, Ds = zip(*(models(s) for s in range(k)), strict=True)
    device = DEVICE
    results = train_packed(
        Gs,
        Ds,
        loss,
        [data_sampler(s, device) for s in range(k)],
        list(range(k)),
        config(name, steps, precision),
    )
    return {
        "aggregate_images_per_s": results[0].train_images_per_s * k,
        "per_seed_images_per_s": results[0].train_images_per_s,
        "statuses": sorted({r.status for r in results}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--only", choices=("single", "pack"), help="run only these rows")
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
        *(("pack", "non-saturating", p, k) for p in ("fp32", "bf16") for k in (1, 4, 16)),
        ("single", "non-saturating", "bf16", "default"),
        ("single", "non-saturating", "bf16", "reduce-overhead"),
    ]
    out = []
    runs = [r for r in runs if args.only in (None, r[0])]
    for kind, name, precision, extra in runs:
        label = f"{kind:6} {name:15} {precision} {extra or 'eager'}"
        try:
            steps = args.steps // (3 if name == "wgan" else 1)
            if kind == "single":
                figures = single(name, precision, steps, extra)
            else:
                figures = packed(name, precision, args.steps, extra)
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
