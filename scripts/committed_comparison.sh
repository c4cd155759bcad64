#!/usr/bin/env bash
# The committed comparison in results/comparison/ (README, "Results"): the four built-in
# objectives x 3 seeds on MNIST, on the article's pair and on dcgan-mnist-bn, same budget,
# fp32 on the CPU (pinned: it was the default then), then the report. Run from the repository root.
set -euo pipefail
OUT=${OUT:-results/comparison}
STEPS=${STEPS:-300}
for pair in dcgan-mnist dcgan-mnist-bn; do
  python -m ganbench run --generator "$pair" \
    --loss minimax --loss non-saturating --loss feature-matching --loss wgan \
    --seeds 3 --steps "$STEPS" --eval-every 100 --precision fp32 --out "$OUT"
done
# WGAN's own default budget on dcgan-mnist-bn (loss_steps: 1000 steps): at 300 it draws no digits yet.
python -m ganbench run --generator dcgan-mnist-bn --loss wgan --seeds 3 --eval-every 250 --precision fp32 --out "$OUT"
python -m ganbench report "$OUT"
