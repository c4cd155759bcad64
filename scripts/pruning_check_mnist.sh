#!/usr/bin/env bash
# The MNIST check that successive halving picks what the full search would ("Equal terms you
# can afford", item 3): the 4 built-in objectives x 9 draws at half the default budget (1200
# discriminator steps on the default pair), each draw halved (rungs at 133 / 400 / 1200 D steps,
# 1/3 go on) and, with --check-pruning, also trained to the full 1200 (a pruned draw continues
# from its last rung's checkpoint, so the check costs the full search once). One loss per
# command, so each loss's study finishes whole before the next starts (losses never prune each
# other, and a draw's values depend only on --search-seed, the loss and its trial); the last
# command trains nothing and writes the tables of all four. Search cells run on 1 torch thread
# (search's default), --jobs 1 here; --jobs 2 trains the same cells. Resumes after any stop.
set -euo pipefail
OUT=${OUT:-results/pruning-check-mnist}
JOBS=${JOBS:-1}
LOSSES=(non-saturating minimax wgan feature-matching)
ARGS=(--scheduler halving --check-pruning --trials 9 --steps 1200 --seeds-best 1 --jobs "$JOBS")
for loss in "${LOSSES[@]}"; do
    python -m ganbench search --loss "$loss" "${ARGS[@]}" --out "$OUT"
done
python -m ganbench search "${LOSSES[@]/#/--loss=}" "${ARGS[@]}" --out "$OUT"
python -m ganbench report "$OUT"
