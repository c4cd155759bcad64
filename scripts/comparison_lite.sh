#!/usr/bin/env bash
# The committed comparison on the default MNIST setup ("Trained GANs in minutes"): the README's
# quick start first, then all four built-in objectives x seeds 0-2 in the same directory (the
# quick start's two cells are found finished and skipped), then the report. One cell at a time
# on both cores, so every cell's seconds (and time to quality) are an idle machine's. Defaults
# throughout: the default pair (dcgan-lite-dense-ttur), batch 64, 2400 steps, EMA generator, 8
# FID curve points per cell, --precision auto (fp32: bf16 is not validated on this pair). Run
# from the repository root, nothing else running. results/comparison-lite (dcgan-lite) and
# results/comparison-dense (dcgan-lite-dense, with --jobs 2 on the second command) were made by
# earlier versions of this script, when those pairs were the default (their COMMAND.md).
# --defaults pair: the pair's own settings, the default when this ran (the default is now the
# equal-tuning study's best, --defaults tuned: other cells).
set -euo pipefail
OUT=${OUT:-results/comparison-ttur}
python -m ganbench run --loss wgan --loss minimax --defaults pair --out "$OUT"
python -m ganbench run --loss minimax --loss non-saturating --loss feature-matching --loss wgan \
    --seeds 3 --defaults pair --out "$OUT"
python -m ganbench report "$OUT"
