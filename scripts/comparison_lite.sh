#!/usr/bin/env bash
# The committed comparison on the default MNIST setup ("Trained GANs in minutes"): the README's
# quick start first, then all four built-in objectives x seeds 0-2 in the same directory (the
# quick start's two cells are found finished and skipped; two cells at a time, one thread each,
# so those cells' seconds are a shared machine's), then the report. Defaults
# throughout: the default pair (dcgan-lite-dense), batch 64, 3000 steps, EMA generator, 8 FID
# curve points per cell, --precision auto (fp32: bf16 is not validated on this pair). Run from
# the repository root, nothing else running. results/comparison-lite was made by this script
# with OUT=results/comparison-lite, without --jobs 2, when the default pair was dcgan-lite (its
# COMMAND.md).
set -euo pipefail
OUT=${OUT:-results/comparison-dense}
python -m ganbench run --loss wgan --loss minimax --out "$OUT"
python -m ganbench run --loss minimax --loss non-saturating --loss feature-matching --loss wgan \
    --seeds 3 --jobs 2 --out "$OUT"
python -m ganbench report "$OUT"
