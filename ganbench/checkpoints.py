"""Cell checkpoints: what a resumed run needs to continue bit-identically, stored atomically.

One file per cell, ``<out>/checkpoints/<config_hash>.pt``, replaced in place (temp file, fsync,
rename) every ``--checkpoint-every`` generator steps and once more when training ends, so a kill at
any moment leaves the previous whole checkpoint. The final one is kept: it holds the trained
models (for later evaluation) and lets a run killed between training and writing its row skip
straight to evaluation. Checkpoints are a cache, not results: deleting ``<out>/checkpoints/`` only
costs recomputation.

A checkpoint is a dict loaded with ``torch.load(weights_only=True)``::

    format          CHECKPOINT_FORMAT
    config_hash     the cell's hash (also the file name); a mismatch means "not this cell"
    config          the hashed configuration, for people reading the file
    ganbench_version
    noise           the seeds of the fixed sample-grid and evaluation noise
    trainer         the trainer's state (see :func:`ganbench.trainer.train`): models, optimisers,
                    RNG states (:func:`rng_state`), step, losses and curves so far, timers

A checkpoint that cannot be used (unreadable, another format or another cell) is reported and the
cell starts from step 0: it never fails a run.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganbench.errors import describe
from ganbench.files import atomic_save

CHECKPOINT_FORMAT = 1
DIRECTORY = "checkpoints"
STALE_TEMP_S = 60.0  # a save takes well under a second; an older temp file is a killed save's


def path_for(out: Path, config_hash: str) -> Path:
    """Where the checkpoint of the cell with ``config_hash`` lives under results dir ``out``."""
    return out / DIRECTORY / f"{config_hash}.pt"


def save(path: Path, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` atomically: readers see the old file or the new one."""
    atomic_save(checkpoint, path)


def load(path: Path, config_hash: str, warn: Callable[[str], None]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it is a usable one of this cell, else ``None``.

    Missing: ``None`` silently. Unreadable, of another format or of another cell: ``None`` and a
    ``warn`` message saying the cell starts over. Tensors load on the CPU; the trainer moves
    them to the device as it restores them. Temp files of this cell's saves that were killed
    (older than :data:`STALE_TEMP_S`, so a save in progress elsewhere is left alone) are removed.
    """
    if path.parent.is_dir():
        for partial in path.parent.glob(f".{path.stem}.*{path.suffix}"):
            with contextlib.suppress(OSError):
                if time.time() - partial.stat().st_mtime > STALE_TEMP_S:
                    partial.unlink()
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged zip or pickle can raise almost anything
        warn(f"checkpoint {path} is unreadable ({describe(exc)}); starting over")
        return None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
        warn(
            f"checkpoint {path} has format {found!r}, this ganbench reads {CHECKPOINT_FORMAT}; "
            "starting over"
        )
        return None
    trainer = checkpoint.get("trainer")
    progress = trainer.get("progress") if isinstance(trainer, dict) else None
    if not (
        isinstance(progress, dict)
        and isinstance(progress.get("step"), int)
        and isinstance(checkpoint.get("noise"), dict)
    ):
        warn(f"checkpoint {path} is incomplete (no trainer step or noise seeds); starting over")
        return None
    if checkpoint.get("config_hash") != config_hash:
        warn(
            f"checkpoint {path} belongs to cell {checkpoint.get('config_hash')!r}, not "
            f"{config_hash!r}; starting over"
        )
        return None
    return checkpoint


def promote(
    out: Path,
    from_hash: str,
    to_hash: str,
    to_config: dict[str, Any],
    to_steps: int,
    warn: Callable[[str], None],
) -> bool:
    """Carry a finished cell's final checkpoint over to a longer cell that continues it (a
    successive-halving draw promoted to the next rung): the same state, under ``to_hash`` with
    the longer budget ``to_steps``, so the longer cell resumes where the shorter one ended
    instead of training from zero. Its training then equals a run of ``to_steps`` from zero
    (resume is exact on the CPU). The shorter cell's checkpoint is removed (its row is its
    result). False, and nothing changed, where the longer cell has a checkpoint already or the
    shorter one has none usable."""
    target = path_for(out, to_hash)
    if target.is_file():
        return False
    source = path_for(out, from_hash)
    checkpoint = load(source, from_hash, warn)
    if checkpoint is None:
        return False
    checkpoint["config_hash"] = to_hash
    checkpoint["config"] = to_config
    checkpoint["trainer"]["budget_steps"] = to_steps
    save(target, checkpoint)
    source.unlink(missing_ok=True)
    return True


# ---- random number generators ------------------------------------------------------------------


def rng_state(device: torch.device, **generators: torch.Generator | None) -> dict[str, Any]:
    """The global RNG states (torch CPU, CUDA where used, numpy, python) and ``generators``'.

    Stored as tensors, ints and tuples only, so ``torch.load(weights_only=True)`` reads them.
    """
    kind, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
        "generators": {
            name: gen.get_state() for name, gen in generators.items() if gen is not None
        },
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], **generators: torch.Generator | None) -> None:
    """Restore what :func:`rng_state` captured, into the global RNGs and ``generators``."""
    torch.set_rng_state(state["torch"].cpu())
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    for name, gen in generators.items():
        if gen is not None:
            gen.set_state(state["generators"][name].cpu())
