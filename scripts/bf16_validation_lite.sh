#!/usr/bin/env bash
# bf16 re-validated on the default MNIST setup (dcgan-lite, 3000 steps, batch 64, EMA), issue 15:
# 3 seeds each of non-saturating and wgan in bf16. The fp32 cells to compare with are the
# committed comparison's (results/comparison-lite, the same defaults in fp32). Run from the
# repository root on a CPU with native bf16 (AVX-512 BF16 or AMX); elsewhere bf16 is emulated.
set -euo pipefail
OUT=${OUT:-results/bf16-validation-lite}
python -m ganbench run --loss non-saturating --seeds 3 --precision bf16 --out "$OUT"
python -m ganbench run --loss wgan --seeds 3 --precision bf16 --out "$OUT"
