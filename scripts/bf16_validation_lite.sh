#!/usr/bin/env bash
# bf16 re-validated on the default MNIST setup (dcgan-lite, 3000 steps, batch 64, EMA), issue 15:
# 3 seeds each of non-saturating and wgan in bf16, two cells at a time (--jobs 2, one thread
# each: the cells' throughput columns are those of a shared machine, not a speed figure; the
# speed comparison is scripts/precision_speed.py, run on an idle machine). The fp32 cells to
# compare with are the committed comparison's (results/comparison-lite, the same defaults in
# fp32). Run from the repository root on a CPU with native bf16 (AVX-512 BF16 or AMX); elsewhere
# bf16 is emulated.
#
# PAIR, JOBS and OUT choose the pair, the cells at a time and the folder; their defaults remake
# results/bf16-validation-lite. results/bf16-validation-ttur (the default pair since,
# dcgan-lite-dense-ttur, one cell at a time on both cores so that its seconds compare with
# results/comparison-ttur's fp32 cells, made the same way) was made by
#     PAIR=dcgan-lite-dense-ttur JOBS=1 OUT=results/bf16-validation-ttur bash scripts/bf16_validation_lite.sh
set -euo pipefail
PAIR=${PAIR:-dcgan-lite}
JOBS=${JOBS:-2}
OUT=${OUT:-results/bf16-validation-lite}
python -m ganbench run --generator "$PAIR" --loss non-saturating --loss wgan --seeds 3 --precision bf16 \
    --jobs "$JOBS" --out "$OUT"
