#!/usr/bin/env bash
# The committed Stacked MNIST comparison: the four built-in objectives x 5 seeds on Metz et al.'s
# two small-discriminator settings (results/stacked-mnist-quarter-d, results/stacked-mnist-half-d;
# each study.toml says its setup), then each folder's report. Resumes after any stop.
set -euo pipefail
for which in quarter half; do
    python -m ganbench run --config "results/stacked-mnist-$which-d/study.toml"
    python -m ganbench report "results/stacked-mnist-$which-d"
done
