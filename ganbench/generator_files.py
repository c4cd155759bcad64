"""Saved generators: each finished cell's trained G (and EMA-G) in ``OUT/generators/<run_id>.pt``.

A cell keeps its generators unless ``--no-keep-generators``, so ``ganbench evaluate`` can score
them again (another metric, backbone or sample count) and ``ganbench sample`` can hand samples to
an external evaluator, without retraining. A file is a dict read with
``torch.load(weights_only=True)``::

    format              GENERATOR_FORMAT
    run_id, config_hash the cell's row in runs.csv and its identity
    generator           the registered generator name (and its ``generator_provider``)
    dataset             the registered dataset name
    noise               the seeds of the cell's fixed sample-grid and evaluation noise
    channels_last       the memory format the cell sampled in (regenerated samples match it)
    G                   G's state_dict (CPU tensors)
    G_ema               the EMA generator's state_dict, its BatchNorm statistics recomputed as
                        when it was scored (ganbench.ema.ready_to_sample); absent without EMA
    ganbench_version

Cells trained before generators were kept can still be rebuilt from their final checkpoint
(``OUT/checkpoints/<config_hash>.pt``, which holds G and the EMA), see :func:`find`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganbench import __version__, checkpoints, registry
from ganbench.ema import recalibrate_bn
from ganbench.errors import GanbenchError, describe
from ganbench.files import atomic_save
from ganbench.trainer import to_layout, uses_channels_last

GENERATOR_FORMAT = 1
DIRECTORY = "generators"


def path_for(out: Path, run_id: str) -> Path:
    """Where the generators of run ``run_id`` are kept under results dir ``out``."""
    return out / DIRECTORY / f"{run_id}.pt"


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def state_bytes(module: nn.Module) -> int:
    """Bytes of ``module``'s state_dict: what one generator adds to a saved file."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def save(
    path: Path,
    row: dict[str, Any],
    G: nn.Module,
    ema_G: nn.Module | None,
    noise: dict[str, int],
    channels_last: bool,
) -> None:
    """Write the generators of the cell whose runs.csv row is ``row``, atomically."""
    record: dict[str, Any] = {
        "format": GENERATOR_FORMAT,
        "run_id": row["run_id"],
        "config_hash": row["config_hash"],
        "generator": row["generator"],
        "generator_provider": row["generator_provider"],
        "dataset": row["dataset"],
        "noise": dict(noise),
        "channels_last": bool(channels_last),
        "G": _cpu_state(G),
        **({"G_ema": _cpu_state(ema_G)} if ema_G is not None else {}),
        "ganbench_version": __version__,
    }
    atomic_save(record, path)


def load(path: Path) -> dict[str, Any]:
    """The record at ``path``; a one-line :class:`GanbenchError` if it is not one."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged zip or pickle can raise almost anything
        raise GanbenchError(f"{path} is not a readable generator file ({describe(exc)})") from None
    if not isinstance(record, dict) or record.get("format") != GENERATOR_FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise GanbenchError(
            f"{path} has generator format {found!r}; this ganbench reads {GENERATOR_FORMAT}"
        )
    return record


def from_checkpoint(out: Path, row: dict[str, Any]) -> dict[str, Any] | None:
    """A generator record rebuilt from the cell's final checkpoint (cells trained before
    generators were kept), or None when it has none that finished the row's steps."""
    path = checkpoints.path_for(out, str(row["config_hash"]))
    ckpt = checkpoints.load(path, str(row["config_hash"]), lambda _msg: None)
    if ckpt is None or ckpt["trainer"]["progress"]["step"] != int(row["steps"]):
        return None
    trainer = ckpt["trainer"]
    record = {
        "format": GENERATOR_FORMAT,
        "run_id": row["run_id"],
        "config_hash": row["config_hash"],
        "generator": row["generator"],
        "generator_provider": row.get("generator_provider", ""),
        "dataset": row["dataset"],
        "noise": ckpt["noise"],
        "channels_last": None,  # the trainer's layout for this generator (see build)
        "G": trainer["G"],
        "source": str(path),
    }
    if "ema" in trainer:  # AveragedModel's state: module.<name> plus its update count
        prefix = "module."
        record["G_ema_raw"] = {
            k[len(prefix) :]: v for k, v in trainer["ema"].items() if k.startswith(prefix)
        }
    return record


def find(out: Path, row: dict[str, Any]) -> dict[str, Any] | None:
    """The saved generators of ``row``'s cell: its generator file, else its final checkpoint;
    None when neither exists."""
    path = path_for(out, str(row["run_id"]))
    if path.is_file():
        record = load(path)
        record["source"] = str(path)
        return record
    return from_checkpoint(out, row)


def build(record: dict[str, Any], device: torch.device) -> list[tuple[nn.Module, str]]:
    """``(generator, column suffix)`` for G and, where saved, the EMA generator (``_ema``), each
    a fresh instance of the registered generator with the saved weights, on ``device`` in the
    layout the cell sampled in, ready to sample."""
    entry = registry.get_generator(record["generator"])
    built = []
    states = [("G", ""), ("G_ema", "_ema"), ("G_ema_raw", "_ema")]
    for key, suffix in states:
        if key not in record:
            continue
        G = entry.factory()
        try:
            G.load_state_dict(record[key])
        except (RuntimeError, KeyError) as exc:
            raise GanbenchError(
                f"{record.get('source', 'generator file')}: the weights do not fit generator "
                f"{record['generator']!r} as registered now ({describe(exc)})"
            ) from None
        layout = record.get("channels_last")
        to_layout(G, device, uses_channels_last(G) if layout is None else bool(layout))
        if key == "G_ema_raw":  # from a checkpoint: recompute its BatchNorm statistics, as scored
            G = recalibrate_bn(G, device)
        built.append((G.eval(), suffix))
    return built
