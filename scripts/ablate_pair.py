"""Ablation behind the `dcgan-mnist-bn` pair (issue: the article's pair collapses).

Trains the non-saturating objective on MNIST with the article's pair and with one change at a
time, 2 seeds each, same budget, and scores FID/IS with ganbench's evaluator. Each change comes
from a paper:

- ``article``        the article's pair and optimiser (Keras Adam 1e-3, beta1 0.9)
- ``dcgan-adam``     + Adam 2e-4, beta1 0.5 (Radford et al. 2016, DCGAN)
- ``tanh``           + tanh output, data scaled to [-1, 1] (Radford et al. 2016)
- ``bn``             + BatchNorm after G's hidden layers (Radford et al. 2016)
- ``bn-tanh``        + both
- ``bn-tanh-ttur``   + two time-scale learning rates, D 4e-4 / G 1e-4 (Heusel et al. 2017)

The variants are registered as generators through an in-process plugin, then run with the normal
runner, so rows, curves and sample grids land in ``--out`` like any other run.

    python scripts/ablate_pair.py --steps 600 --out results/ablation
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from ganbench import plugins
from ganbench.datasets import EvalOptions
from ganbench.default_plugins.dcgan_mnist import DcganMnistDiscriminator, DcganMnistGenerator
from ganbench.hookspecs import hookimpl
from ganbench.runner import RunSpec, run

DCGAN_ADAM = {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5}
VARIANTS = {
    "bn-tanh": ({"batchnorm": True, "tanh": True}, DCGAN_ADAM),
    "article": ({}, {}),
    "dcgan-adam": ({}, DCGAN_ADAM),
    "bn": ({"batchnorm": True}, DCGAN_ADAM),
    "tanh": ({"tanh": True}, DCGAN_ADAM),
    "bn-tanh-ttur": ({"batchnorm": True, "tanh": True}, {**DCGAN_ADAM, "lr_g": 1e-4, "lr_d": 4e-4}),
}


class AblationPlugin:
    @hookimpl
    def register_generators(self, register):
        for name, (options, _) in VARIANTS.items():
            register(f"ablation-{name}", functools.partial(DcganMnistGenerator, **options))

    @hookimpl
    def register_discriminators(self, register):
        for name in VARIANTS:
            register(f"ablation-{name}", DcganMnistDiscriminator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/ablation"))
    parser.add_argument("--fid-samples", type=int, default=10000)
    parser.add_argument("--variant", action="append", help="default: all")
    args = parser.parse_args()
    plugins.add_plugin(AblationPlugin(), "ablation", "scripts/ablate_pair.py")
    for name in args.variant or VARIANTS:
        _, hp = VARIANTS[name]
        run(
            RunSpec(
                losses=("non-saturating",),
                seeds=tuple(range(args.seeds)),
                generator=f"ablation-{name}",
                discriminator=f"ablation-{name}",
                steps=args.steps,
                out=args.out,
                overrides=hp,
                eval=EvalOptions(fid_samples=args.fid_samples),
                precision="fp32",  # as committed (before bf16 became the CPU default)
            )
        )


if __name__ == "__main__":
    main()
