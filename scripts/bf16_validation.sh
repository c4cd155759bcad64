#!/usr/bin/env bash
# bf16 validation (issue 6, README "Performance"): 3 seeds of non-saturating and wgan on MNIST with
# the then-default pair (dcgan-mnist-bn) and each objective's default budget (300 steps; wgan 1000),
# in bf16 autocast, plus fp32 non-saturating re-run beside them. The fp32 wgan cells at 1000 steps
# are the committed comparison's (results/comparison, same code path, deterministic on CPU).
# Run from the repository root.
set -euo pipefail
OUT=${OUT:-results/bf16-validation}
python -m ganbench run --generator dcgan-mnist-bn --loss non-saturating --seeds 3 --precision bf16 --out "$OUT"
python -m ganbench run --generator dcgan-mnist-bn --loss non-saturating --seeds 3 --precision fp32 --out "$OUT"
python -m ganbench run --generator dcgan-mnist-bn --loss wgan --seeds 3 --precision bf16 --out "$OUT"
