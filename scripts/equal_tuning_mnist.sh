#!/usr/bin/env bash
# The committed equal-tuning study (results/equal-tuning-mnist/study.toml): one loss per command,
# so each loss's study finishes whole before the next starts (losses never prune each other; a
# draw depends only on the search seed, its loss and its trial), then the same study with all
# seven losses (trains nothing new) writes the tables of all of them, and the report. Resumes
# after any stop: finished cells are skipped, halving decisions recomputed from the rows.
set -euo pipefail
STUDY=results/equal-tuning-mnist/study.toml
LOSSES=(non-saturating minimax wgan feature-matching wgan-gp lsgan hinge)
for loss in "${LOSSES[@]}"; do
    python -m ganbench search --config "$STUDY" --loss "$loss"
done
python -m ganbench search --config "$STUDY"
python -m ganbench report results/equal-tuning-mnist
