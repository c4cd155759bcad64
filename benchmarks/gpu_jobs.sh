#!/usr/bin/env bash
# Aggregate training throughput of N cells sharing one GPU as N processes (ganbench run --jobs N),
# on random 28x28 images written as MNIST IDX files (throughput does not depend on the pixels).
# Run on a GPU machine from the repository root: bash benchmarks/gpu_jobs.sh [OUTDIR]
set -euo pipefail
OUT=${1:-/tmp/ganbench-gpu-jobs}
mkdir -p "$OUT/idx"
python3 - "$OUT/idx" <<'PY'
import struct, sys, numpy as np
d = sys.argv[1]; rng = np.random.default_rng(0)
for prefix, n in (("train", 60000), ("t10k", 10000)):
    for kind, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
        a = rng.integers(0, 256 if kind.startswith("images") else 10, shape).astype(np.uint8)
        with open(f"{d}/{prefix}-{kind}-ubyte", "wb") as f:
            f.write(struct.pack(">HBB", 0, 8, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes())
PY
# one sweep of N cells (N = its second argument, under option $1), then its aggregate throughput
sweep() {
  local option=$1 n=$2
  python3 -m ganbench run --loss non-saturating --seeds "$n" "$option" "$n" --device cuda \
    --precision bf16 --steps 600 --fid-samples 0 --checkpoint-every 0 \
    --data-dir "$OUT/idx" --out "$OUT/${option#--}$n" > /dev/null 2>&1
  python3 - "$OUT/${option#--}$n/runs.csv" "$option $n" <<'PY'
import sys, pandas as pd
runs = pd.read_csv(sys.argv[1])
print(f"{sys.argv[2]}: {len(runs)} cells {sorted(set(runs.status))}, aggregate "
      f"{runs.train_images_per_s.sum():.0f} images/s (per cell {runs.train_images_per_s.mean():.0f})")
PY
}
for jobs in ${JOBS-1 4 8}; do sweep --jobs "$jobs"; done
