"""A cell's identity: the ``config_hash`` of everything that decides its results (what resume
and the tables key on), its ``setup`` (the same without the seed), and the identity columns that
begin its ``runs.csv`` row."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from datetime import datetime, timezone
from typing import Any

import torch

from ganbench import __version__, registry
from ganbench.datasets import EvalOptions
from ganbench.defaults import cell_threads, generator_defaults, untuned
from ganbench.spec import UNHASHED_THREADS, Cell, RunSpec

# the recipe of config_hash: bump it when a change to cell_config changes hashes, so that a
# search's --baseline refuses studies whose cells would no longer be found
HASH_VERSION = 1


def config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def cell_config(cell: Cell, spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """Everything that decides a cell's results: hashed into ``config_hash`` (seed included)
    and ``setup`` (seed excluded)."""
    return {
        "loss": cell.loss.name,
        "generator": spec.generator,
        "discriminator": spec.discriminator,
        "dataset": spec.dataset,
        "seed": cell.seed,
        # generator steps: a --step-unit discriminator cell trains what a generator-step cell of
        # steps // n_critic trains, so it is the same cell
        "steps": spec.generator_steps(cell.hp.n_critic),
        "batch_size": spec.batch_size,
        "precision": spec.precision,
        "init": spec.init,
        "hyperparams": dataclasses.asdict(cell.hp),
        "device": device.type,
        "log_every": spec.log_every,
        # only where set, so the hashes of cells from before these options stay as they were
        **({"ema_decay": spec.ema_decay} if spec.ema_decay else {}),
        **({"reuse_fake": True} if spec.reuse_fake else {}),
        # where its hyperparameters started, where not the pair's (so the hashes of cells from
        # before --defaults stay as they were; a tuned run's rows never stand in for a pair run's)
        **({"defaults": spec.defaults} if spec.defaults not in (None, "pair") else {}),
        **hashed_threads(spec, device),
        # what the data is, where it can vary: the files of --data-dir, a plugin dataset's version
        **({"data": spec.data_id} if spec.data_dir is not None and spec.data_id else {}),
        **dataset_version(spec.dataset),
        "eval": {
            "fid_samples": spec.eval.fid_samples,
            "backbone": spec.eval.backbone if spec.eval.fid_samples else None,
            **kid_settings(spec.eval),
            # only where given, so the hashes of cells from before the option stay as they were
            **({"mode_samples": spec.eval.mode_samples} if spec.eval.mode_samples else {}),
            **(
                {
                    "every": spec.generator_eval_every(cell.hp.n_critic),
                    "every_samples": spec.eval_every_samples,
                }
                if spec.eval_every and spec.eval.fid_samples
                else {}
            ),
        },
    }


def hashed_threads(spec: RunSpec, device: torch.device) -> dict[str, int]:
    """``{"threads": n}`` for a CPU cell whose thread count can vary (its pair fixes none) and
    is not :data:`~ganbench.spec.UNHASHED_THREADS`, what every committed cell used; a GPU cell's
    results do not hang on its host threads."""
    threads = cell_threads(spec)
    if device.type != "cpu" or threads is None or threads == UNHASHED_THREADS:
        return {}
    if generator_defaults(spec.generator).cpu_threads:
        return {}
    return {"threads": int(threads)}


def dataset_version(name: str) -> dict[str, str]:
    """``{"dataset_version": v}`` for a dataset from a plugin package (its data may change with
    its version); nothing for ganbench's own, so the hashes of earlier cells stay as they were."""
    entry = registry.get_dataset(name)
    if entry.provider == "ganbench":
        return {}
    return {"dataset_version": f"{entry.provider} {entry.provider_version}"}


def kid_settings(options: EvalOptions) -> dict[str, int]:
    """KID's subset settings where they are not the defaults (so the hashes of cells from before
    KID stay as they were)."""
    default = EvalOptions()
    return {
        key: getattr(options, key)
        for key in ("kid_subsets", "kid_subset_size")
        if getattr(options, key) != getattr(default, key)
    }


def hashes_of(config: dict[str, Any]) -> tuple[str, str]:
    """``(config_hash, setup)`` of a cell's :func:`cell_config`: with and without its seed."""
    return config_hash(config), config_hash({k: v for k, v in config.items() if k != "seed"})


def cell_hashes(cell: Cell, spec: RunSpec, device: torch.device) -> tuple[str, str]:
    """``(config_hash, setup)`` of a cell under ``spec``: what :func:`ganbench.plan.identified`
    stores on each cell (the package reads it there; tests pin committed hashes with this)."""
    return hashes_of(cell_config(cell, spec, device))


def base_row(cell: Cell, spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """A cell's ``runs.csv`` row before it trains: its identity (names, providers, seed,
    hyperparameters, ``config_hash``, ``setup``: the plan's), a new ``run_id`` and
    ``status=error``."""
    gen = registry.get_generator(spec.generator)
    disc = registry.get_discriminator(spec.discriminator)
    data = registry.get_dataset(spec.dataset)
    hp = cell.hp
    chash, setup = cell.config_hash, cell.setup
    if not chash:
        raise ValueError(f"cell {cell.loss.name} seed {cell.seed} was not identified by a plan")
    # microseconds: two attempts of one cell within a second (a fast --fresh rerun) stay apart
    run_id = f"{cell.loss.name}-s{cell.seed}-{chash[:8]}-{datetime.now():%Y%m%d%H%M%S%f}"
    return {
        "run_id": run_id,
        "config_hash": chash,
        "setup": setup,
        "loss": cell.loss.name,
        "loss_provider": cell.loss.provider,
        "generator": gen.name,
        "generator_provider": gen.provider,
        "discriminator": disc.name,
        "discriminator_provider": disc.provider,
        "dataset": data.name,
        "dataset_provider": data.provider,
        "seed": cell.seed,
        "steps": spec.generator_steps(hp.n_critic),
        "step_unit": spec.step_unit or "generator",
        # the budget as asked, in step_unit (not hashed): the budget group of a D-step row whose
        # budget n_critic does not divide (15 D steps at n_critic 2 train 14)
        "step_budget": spec.steps,
        "d_steps": spec.generator_steps(hp.n_critic) * hp.n_critic,
        "batch_size": spec.batch_size,
        "n_critic": hp.n_critic,
        "optimizer_g": hp.optimizer_g,
        "optimizer_d": hp.optimizer_d,
        "lr_g": hp.lr_g,
        "lr_d": hp.lr_d,
        "beta1": hp.beta1,
        "beta2": hp.beta2,
        "loss_params": json.dumps(dict(hp.extras), sort_keys=True),
        "hp_sources": json.dumps(dict(cell.sources), sort_keys=True),
        # --defaults: where the hyperparameters started; untuned: tuned ones were asked for and
        # the pair's study did not tune this loss (a new plugin's), so it runs with its own
        "defaults": spec.defaults or "pair",
        "untuned": untuned(cell.sources, spec.generator, spec),
        **cell.tags,
        "precision": spec.precision,
        "ema_decay": spec.ema_decay,
        "reuse_fake": spec.reuse_fake,
        "device": str(device),
        "threads": cell_threads(spec) if device.type == "cpu" else None,
        "status": "error",
        "error": "",
        "diverged_at": None,
        "diverged_reason": "",
    }


def stamp(row: dict[str, Any]) -> dict[str, Any]:
    """Add the software versions and ``finished_at`` that end every row."""
    row.update(
        torch_version=torch.__version__,
        ganbench_version=__version__,
        python_version=platform.python_version(),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return row
