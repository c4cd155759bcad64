#!/usr/bin/env bash
# Ablation toward a default MNIST setup that trains in minutes ("Trained GANs in minutes",
# docs/ablation-lite.md). Starts from dcgan-mnist-bn (the previous default, 300 steps) and tries
# one lever at a time: the cheaper dcgan-lite pair (4x4 kernels, w = 32) without and with
# BatchNorm or spectral norm in D, twice the width, TTUR, Adam beta1 0, batch 64 vs 128 at equal
# images, and the G step reusing the D step's fake batch. Every cell: non-saturating, seed 0,
# fp32 (this CPU has no native bf16), FID/IS curve points on 2000 samples (G and EMA-G),
# budgets in epochs (2 epochs = 120k images) except the baseline. Run from the repository root,
# nothing else running. Stage 2 (the combination, longer) is at the end.
set -euo pipefail
OUT=${OUT:-results/ablation-lite}
# stage 1 pins DCGAN's Adam (2e-4, beta1 0.5, as on dcgan-mnist-bn), the pairs' defaults when
# it ran; dcgan-lite's default became 1e-3 after stage 2
COMMON=(--loss non-saturating --seed 0 --precision fp32 --out "$OUT")
DCGAN=(--lr 2e-4 --beta1 0.5)
r() { echo "== $*" >&2; python -m ganbench run "${COMMON[@]}" "$@"; }
# stage 1: one lever at a time
r --generator dcgan-mnist-bn --steps 300 --eval-every 50 --batch-size 128
r --generator dcgan-lite-nonorm "${DCGAN[@]}" --epochs 2 --batch-size 128 --eval-every 117
r --generator dcgan-lite "${DCGAN[@]}" --epochs 2 --batch-size 128 --eval-every 117
r --generator dcgan-lite-sn "${DCGAN[@]}" --epochs 2 --batch-size 128 --eval-every 117
r --generator dcgan-lite-wide "${DCGAN[@]}" --epochs 2 --batch-size 128 --eval-every 117
r --generator dcgan-lite --epochs 2 --batch-size 128 --eval-every 117 --lr-g 1e-4 --lr-d 4e-4 --beta1 0.5
r --generator dcgan-lite --epochs 2 --batch-size 128 --eval-every 117 --lr 2e-4 --beta1 0
r --generator dcgan-lite "${DCGAN[@]}" --epochs 2 --batch-size 64 --eval-every 234
r --generator dcgan-lite --epochs 2 --batch-size 128 --eval-every 117 --reuse-fake "${DCGAN[@]}"
# stage 2: stage 1 favoured dcgan-lite (BatchNorm in D) and batch 64; TTUR's slower G (1e-4)
# was the worst lever, so try faster learning rates, 3 epochs (2812 steps) each
S2=(--generator dcgan-lite --epochs 3 --batch-size 64 --eval-every 250)
r "${S2[@]}" --lr 5e-4
r "${S2[@]}" --lr 1e-3
r "${S2[@]}" --lr-g 1e-3 --lr-d 2e-4
