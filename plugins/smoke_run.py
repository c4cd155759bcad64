"""CI smoke run: ``ganbench run`` with the three example plugins and a built-in, on tiny data.

Run after installing the plugin packages::

    python -m pip install ./plugins/ganbench-wgan-gp ./plugins/ganbench-lsgan \
        ./plugins/ganbench-hinge
    python plugins/smoke_run.py

Writes a tiny MNIST-format (IDX) directory of random images, runs the real command line in a
subprocess (every installed plugin loaded, as a user would have it), and exits non-zero, saying
why, unless the command succeeds and ``runs.csv`` has one ``ok`` row per loss, each naming the
package that provided the loss. Takes seconds.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

EXPECTED_PROVIDERS = {
    "wgan-gp": "ganbench-wgan-gp",
    "lsgan": "ganbench-lsgan",
    "hinge": "ganbench-hinge",
    "minimax": "ganbench",
}


def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` (uint8) as an IDX file, the format of the MNIST distribution files."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def tiny_mnist(root: Path) -> Path:
    """256 training and 64 test random 28x28 images with labels."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", 256), ("t10k", 64)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    return root


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = tiny_mnist(tmp_path / "idx")
        out = tmp_path / "results"
        env = {k: v for k, v in os.environ.items() if k != "GANBENCH_LOAD_PLUGINS"}
        env["GANBENCH_CACHE"] = str(tmp_path / "cache")
        command = [sys.executable, "-m", "ganbench", "run"]
        for loss in EXPECTED_PROVIDERS:
            command += ["--loss", loss]
        command += ["--steps", "3", "--batch-size", "16", "--fid-samples", "0"]
        command += ["--data-dir", str(data), "--out", str(out)]
        print("$", " ".join(command[1:]), flush=True)
        status = subprocess.run(command, env=env).returncode
        if status != 0:
            print(f"smoke run: ganbench run exited with status {status}", file=sys.stderr)
            return 1
        runs = pd.read_csv(out / "runs.csv")
        problems = []
        if sorted(runs["loss"]) != sorted(EXPECTED_PROVIDERS):
            problems.append(f"rows for losses {sorted(runs['loss'])}, expected one per loss")
        for row in runs.itertuples():
            if row.status != "ok":
                problems.append(f"{row.loss}: status {row.status} ({row.error})")
            if row.loss_provider != EXPECTED_PROVIDERS.get(row.loss):
                problems.append(f"{row.loss}: loss_provider {row.loss_provider!r}")
        if problems:
            print("smoke run: " + "; ".join(problems), file=sys.stderr)
            return 1
        print(runs[["loss", "loss_provider", "status", "n_critic", "optimizer_d", "lr_d"]])
        print(f"smoke run: {len(runs)} ok rows, each with its provider")
    return 0


if __name__ == "__main__":
    sys.exit(main())
