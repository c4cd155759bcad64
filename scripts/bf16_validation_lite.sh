#!/usr/bin/env bash
# bf16 re-validated on the default MNIST setup (dcgan-lite, 3000 steps, batch 64, EMA), issue 15:
# 3 seeds each of non-saturating and wgan in bf16, two cells at a time (--jobs 2, one thread
# each: the cells' throughput columns are those of a shared machine, not a speed figure; the
# speed comparison is scripts/precision_speed.py, run on an idle machine). The fp32 cells to
# compare with are the committed comparison's (results/comparison-lite, the same defaults in
# fp32). Run from the repository root on a CPU with native bf16 (AVX-512 BF16 or AMX); elsewhere
# bf16 is emulated.
set -euo pipefail
OUT=${OUT:-results/bf16-validation-lite}
python -m ganbench run --generator dcgan-lite --loss non-saturating --loss wgan --seeds 3 --precision bf16 \
    --jobs 2 --out "$OUT"
