"""Run a benchmark: validate everything, then train and score each (loss, seed) cell.

Data flows one way: the CLI builds a :class:`RunSpec`; :func:`run` checks it (every name, number
and path, before any training), trains each cell with :mod:`ganbench.trainer`, scores it with the
dataset's evaluator, and appends rows to the results files after every cell.

Resuming a sweep: a cell is identified by its ``config_hash``, a hash of everything that decides
its results (names, seed, steps, batch size, precision, init, hyperparameters, device type, curve
spacing, evaluation settings; not ``--checkpoint-every``, which changes nothing). Running the same
command again skips every cell that already has an ``ok`` or ``diverged`` row in ``runs.csv``
(``error`` rows are retried) and resumes interrupted cells from their checkpoint
(:mod:`ganbench.checkpoints`). Every attempt gets a new ``run_id``; ``resumed_from_step`` says
where a resumed one started. ``--fresh`` retrains every cell from step 0 and appends new rows; the
earlier rows stay in ``runs.csv`` and the summary counts only the latest row of each cell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from filelock import Timeout
from torch.optim.swa_utils import AveragedModel

from ganbench import __version__, checkpoints, generator_files, registry
from ganbench import results as R
from ganbench.convergence import convergence_columns
from ganbench.datasets import Dataset, EvalOptions, Evaluator, metric_names
from ganbench.ema import EMA_SUFFIX, ema_of, ready_to_sample
from ganbench.errors import GanbenchError, describe, did_you_mean, first_line
from ganbench.losses import OPTIMIZERS, Hyperparams
from ganbench.models import INIT_SCHEMES, init_weights
from ganbench.packing import train_packed
from ganbench.tables import NOT_METRICS, REFERENCE_LOSS, Tables, latest_attempts, write_tables
from ganbench.trainer import (
    COMPILE_MODES,
    PRECISIONS,
    ResumeError,
    TrainConfig,
    TrainResult,
    generate,
    train,
    uses_channels_last,
)

GRID_SEED = 1234  # the fixed noise of every sample grid, so grids compare across cells
EVAL_SEED_OFFSET = 1_000_000  # evaluation noise is seeded apart from training noise


LAUNCHERS = ("local", "ray")
# a user's own results: ignored by git, so a fresh clone trains and its checkout stays clean;
# committed studies live in results/<study>/, each with its command
DEFAULT_OUT = "ganbench-out"


@dataclass(frozen=True)
class LaunchOptions:
    """Where and how many cells run at once (:mod:`ganbench.launchers`); never part of a cell's
    ``config_hash``, so a sweep started by one launcher can be finished by another.

    ``cpus_per_cell`` None: Ray reserves 1 CPU per cell; a local pool gives each worker
    ``cpu_count // jobs`` torch threads; one local cell (``jobs`` 1) leaves torch's default.
    """

    launcher: str = "local"  # local: in this process (jobs 1) or a process pool; ray: Ray tasks
    jobs: int = 1  # local: cells at once
    ray_address: str | None = None  # None: start or join a local Ray instance
    cpus_per_cell: float | None = None
    gpus_per_cell: float = 0  # Ray's GPU request per cell


@dataclass(frozen=True)
class RunSpec:
    """Everything ``ganbench run`` was asked to do.

    ``overrides`` holds command-line hyperparameter overrides (fields of
    :class:`~ganbench.losses.Hyperparams`; ``extras`` as a dict) applied to every loss.
    """

    losses: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    generator: str | None = None  # None: the dataset's default_model
    discriminator: str | None = None  # None: the generator's name (its pair)
    dataset: str = "mnist"
    steps: int | None = None  # None: the pair's default_steps, else the dataset's
    epochs: float | None = None  # a budget in passes over the data instead of --steps
    batch_size: int | None = None  # None: the pair's batch_size, else 128
    device: str = "auto"
    precision: str = "auto"  # fp32, bf16, or auto (see auto_precision)
    out: Path = Path(DEFAULT_OUT)
    data_dir: Path | None = None
    init: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    eval: EvalOptions = EvalOptions()
    log_every: int = 10
    # >0: FID/IS curve points every that many steps, on eval_every_samples; 0: none; None:
    # CURVE_POINTS points per cell (a multiple of log_every), which time to quality reads
    eval_every: int | None = None
    eval_every_samples: int = 2000
    progress: bool = True
    checkpoint_every: int = 200  # generator steps between checkpoints; 0: no checkpoints at all
    fresh: bool = False  # retrain every cell from step 0, ignoring checkpoints and earlier rows
    launch: LaunchOptions = LaunchOptions()
    pack: int = 1  # train up to this many seeds of a loss as one computation (ganbench.packing)
    compile: str = ""  # torch.compile mode for the models ("": eager); not with --pack
    ema_decay: float | None = None  # EMA generator's decay; 0: none; None: the pair's, else 0.999
    reuse_fake: bool | None = None  # the G step reuses the D step's fake; None: the pair's choice
    keep_generators: bool = True  # keep each finished cell's G (and EMA-G) in OUT/generators/
    data_id: str = ""  # the loaded data's identity (Dataset.data_id), filled in by prepare()


@dataclass(frozen=True)
class Cell:
    loss: registry.Entry
    seed: int
    hp: Hyperparams


def resolve_device(name: str, check_available: bool = True) -> torch.device:
    """``auto``, ``cpu`` or ``cuda[:N]`` as a device; ``check_available``: a CUDA name needs a GPU
    in this process (off where the cell runs elsewhere, e.g. on a Ray worker)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if check_available and not torch.cuda.is_available():
            raise GanbenchError(
                f"Device {name!r} requested but no CUDA GPU is available. Use: cpu, auto"
            )
        try:
            return torch.device(name)
        except RuntimeError:
            pass
    raise GanbenchError(f"Unknown device {name!r}. Available: auto, cpu, cuda")


def cell_device(spec: RunSpec, check_available: bool = True) -> torch.device:
    """The device the cells of ``spec`` train on (it is part of their ``config_hash``).

    Under Ray, ``auto`` means what the cell reserved: ``cuda`` with ``--gpus-per-cell`` > 0, else
    ``cpu`` (never a GPU Ray did not give the cell), so the driver and every worker agree.
    """
    name = spec.device
    if spec.launch.launcher == "ray" and name == "auto":
        name = "cuda" if spec.launch.gpus_per_cell > 0 else "cpu"
    return resolve_device(name, check_available)


def _check_positive(name: str, value: float) -> None:
    if not (value > 0) or (isinstance(value, float) and not math.isfinite(value)):
        raise GanbenchError(f"{name} must be a positive number, got {value!r}")


def with_defaults(spec: RunSpec) -> RunSpec:
    """Fill the model pair and step budget the dataset recommends where the user gave none."""
    dataset = registry.get_dataset(spec.dataset).factory()
    generator = spec.generator or dataset.default_model
    pair = pair_defaults(generator)
    batch_size = spec.batch_size
    if batch_size is None:
        batch_size = int(pair.get("batch_size", DEFAULT_BATCH_SIZE))
    steps = spec.steps
    if steps is not None and spec.epochs is not None:
        raise GanbenchError(
            f"Give the budget once: --steps {steps} or --epochs {spec.epochs}, not both"
        )
    if spec.epochs is not None:  # checked here: the filled spec holds steps instead
        _check_positive("--epochs", spec.epochs)
    if steps is None and spec.epochs is not None and batch_size > 0:
        dataset.load(spec.data_dir)
        steps = max(1, round(spec.epochs * len(dataset) / batch_size))
    if steps is None:
        steps = default_steps(pair.get("default_steps", dataset.default_steps), pair, spec.losses)
    ema_decay = spec.ema_decay
    if ema_decay is None:
        ema_decay = 0.0 if spec.pack > 1 else float(pair.get("ema_decay", DEFAULT_EMA_DECAY))
    reuse_fake = spec.reuse_fake
    if reuse_fake is None:
        reuse_fake = bool(pair.get("reuse_fake", False))
    eval_every = spec.eval_every
    if eval_every is None:
        eval_every = auto_eval_every(steps, spec.log_every) if spec.eval.fid_samples else 0
    precision = spec.precision
    if precision == "auto":
        precision = auto_precision(dataset, cell_device(spec, check_available=False), generator)
    return dataclasses.replace(
        spec,
        generator=generator,
        discriminator=spec.discriminator or generator,
        steps=steps,
        epochs=None,  # now in steps: with_defaults of the result changes nothing (workers)
        batch_size=batch_size,
        precision=precision,
        ema_decay=ema_decay,
        reuse_fake=reuse_fake,
        eval_every=eval_every,
    )


CURVE_POINTS = 8  # FID curve points per cell without --eval-every


def auto_eval_every(steps: Any, log_every: Any) -> int:
    """Steps between :data:`CURVE_POINTS` curve points, a multiple of ``log_every`` (so each
    point has its wall time and FLOPs logged at the same step); 0 for budgets it cannot split."""
    try:
        per = max(1, int(log_every)) * max(1, round(int(steps) / CURVE_POINTS / int(log_every)))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0
    return per if 0 < per <= int(steps) else 0


DEFAULT_BATCH_SIZE = 128
MAX_SEED = 2**32 - 1
DEFAULT_EMA_DECAY = 0.999
PAIR_DEFAULTS = ("loss_steps", "default_steps", "batch_size", "ema_decay", "reuse_fake")


def pair_defaults(generator: str) -> dict[str, Any]:
    """What the generator's class recommends for its pair: ``loss_steps``, ``default_steps``,
    ``batch_size``, ``ema_decay``, ``reuse_fake`` (those it sets)."""
    try:
        G = registry.get_generator(generator).factory()
    except Exception:  # unknown or broken generator: validate() says so, one line
        return {}
    return {k: getattr(G, k) for k in PAIR_DEFAULTS if hasattr(G, k)}


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 autocast runs faster than fp32 (elsewhere it is emulated)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def auto_precision(dataset: Dataset, device: torch.device, generator: str | None = None) -> str:
    """``--precision auto``: the dataset's validated ``cpu_precision`` on a CPU with native bf16,
    for the pairs it was validated on (``cpu_precision_pairs``; ``generator`` None: the
    dataset's default pair); fp32 elsewhere (on a GPU, one cell of these small models is
    host-bound: bf16 measured no faster on an H200, README "Performance")."""
    if device.type == "cpu" and cpu_has_native_bf16() and validated_pair(dataset, generator):
        return dataset.cpu_precision
    return "fp32"


def validated_pair(dataset: Dataset, generator: str | None) -> bool:
    """Whether the dataset's ``cpu_precision`` was validated on ``generator``'s pair."""
    pairs = getattr(dataset, "cpu_precision_pairs", None)
    return pairs is None or (generator or dataset.default_model) in pairs


def default_steps(base_steps: int, pair: dict[str, Any], losses: tuple[str, ...]) -> int:
    """The step budget of a run without ``--steps``: the pair's (else the dataset's), or more
    where the pair says (``loss_steps``) that one of the run's objectives needs more. Every cell
    of a run gets the same budget, so the objectives are compared on equal terms."""
    wanted = pair.get("loss_steps", {})
    return max([int(base_steps), *(int(wanted[name]) for name in losses if name in wanted)])


def validate(spec: RunSpec) -> None:
    """Every check that needs no data: names, numbers, choices, the output directory.

    ``spec`` has its defaults filled (:func:`with_defaults`).
    """
    if not spec.losses:
        raise GanbenchError(
            f"No loss given. Use --loss NAME. Available: {', '.join(registry.names('loss'))}"
        )
    for name in spec.losses:
        registry.get_loss(name)
    registry.get_generator(spec.generator)
    registry.get_discriminator(spec.discriminator)
    dataset = registry.get_dataset(spec.dataset).factory()
    if spec.data_dir is not None and not getattr(dataset, "reads_data_dir", True):
        raise GanbenchError(
            f"--data-dir {str(spec.data_dir)!r} means nothing to dataset {spec.dataset!r}, which "
            "reads no files (it is sampled on the fly): leave --data-dir out"
        )
    _check_positive("--steps", spec.steps)
    if not (math.isfinite(spec.ema_decay) and 0 <= spec.ema_decay < 1):
        raise GanbenchError(f"--ema-decay must be in [0, 1) (0: no EMA), got {spec.ema_decay}")
    if spec.ema_decay > 0 and spec.pack > 1:
        raise GanbenchError("--pack trains without an EMA generator: add --ema-decay 0")
    if spec.reuse_fake and spec.pack > 1:
        raise GanbenchError("--pack draws a new fake batch for the G step: add --no-reuse-fake")
    _check_positive("--batch-size", spec.batch_size)
    for seed in spec.seeds:  # numpy's seeds are 32-bit
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise GanbenchError(f"--seed must be a whole number in [0, {MAX_SEED}], got {seed!r}")
    if spec.eval.kid_subsets < 1 or spec.eval.kid_subset_size < 2:
        raise GanbenchError(
            "KID needs --kid-subsets of at least 1 and --kid-subset-size of at least 2, got "
            f"{spec.eval.kid_subsets} and {spec.eval.kid_subset_size}"
        )
    if spec.eval.fid_samples < 0 or spec.eval.fid_samples == 1:
        raise GanbenchError(
            f"--fid-samples must be 0 (no evaluation) or at least 2, got {spec.eval.fid_samples}"
        )
    if spec.precision not in PRECISIONS:
        raise GanbenchError(
            f"Unknown precision {spec.precision!r}. Available: auto, {', '.join(PRECISIONS)}"
        )
    if spec.init is not None and spec.init not in INIT_SCHEMES:
        raise GanbenchError(f"Unknown init {spec.init!r}. Available: {', '.join(INIT_SCHEMES)}")
    for key in ("optimizer_g", "optimizer_d"):
        if key in spec.overrides and spec.overrides[key] not in OPTIMIZERS:
            raise GanbenchError(
                f"Unknown optimizer {spec.overrides[key]!r}. Available: {', '.join(OPTIMIZERS)}"
            )
    for key in ("lr_g", "lr_d", "n_critic"):
        if key in spec.overrides:
            _check_positive(f"--{key.replace('_', '-')}", spec.overrides[key])
    for key in ("beta1", "beta2"):
        if key in spec.overrides and not 0 <= spec.overrides[key] < 1:
            raise GanbenchError(f"--{key} must be a number in [0, 1), got {spec.overrides[key]}")
    _check_positive("--log-every", spec.log_every)
    if spec.eval_every < 0:
        raise GanbenchError(f"--eval-every must be 0 (off) or more, got {spec.eval_every}")
    if not spec.eval_every_samples >= 2:
        raise GanbenchError(
            f"--eval-every-samples must be at least 2, got {spec.eval_every_samples}"
        )
    if spec.checkpoint_every < 0:
        raise GanbenchError(
            f"--checkpoint-every must be 0 (no checkpoints) or more, got {spec.checkpoint_every}"
        )
    _validate_launch(spec.launch)
    if isinstance(spec.pack, bool) or not isinstance(spec.pack, int) or spec.pack < 1:
        raise GanbenchError(f"--pack must be a whole number of at least 1, got {spec.pack!r}")
    if spec.compile and spec.compile not in COMPILE_MODES:
        raise GanbenchError(
            f"Unknown compile mode {spec.compile!r}. Available: {', '.join(COMPILE_MODES)}"
        )
    if spec.compile and spec.pack > 1:
        raise GanbenchError("--compile applies to unpacked cells: leave out --pack or --compile")
    if spec.pack > 1 and (spec.launch.launcher != "local" or spec.launch.jobs > 1):
        raise GanbenchError(
            "--pack trains its seeds in this process: use it with --launcher local --jobs 1"
        )
    if spec.launch.launcher == "ray" or spec.launch.jobs > 1:
        from ganbench import launchers

        launchers.check_workers_can_build(spec)
    cell_device(spec, check_available=spec.launch.launcher != "ray")  # Ray: the worker checks
    _check_writable(spec.out)
    R.check_results_files(spec.out)


def _validate_launch(launch: LaunchOptions) -> None:
    if launch.launcher not in LAUNCHERS:
        raise GanbenchError(
            f"Unknown launcher {launch.launcher!r}. Available: {', '.join(LAUNCHERS)}"
        )
    if isinstance(launch.jobs, bool) or not isinstance(launch.jobs, int) or launch.jobs < 1:
        raise GanbenchError(f"--jobs must be a whole number of at least 1, got {launch.jobs!r}")
    if launch.cpus_per_cell is not None:
        _check_positive("--cpus-per-cell", launch.cpus_per_cell)
    gpus = launch.gpus_per_cell
    if not (isinstance(gpus, int | float) and math.isfinite(gpus) and gpus >= 0):
        raise GanbenchError(f"--gpus-per-cell must be 0 or a positive number, got {gpus!r}")
    if launch.launcher == "local":
        if launch.ray_address:
            raise GanbenchError("--ray-address needs --launcher ray (or leave --launcher out)")
        if gpus:
            raise GanbenchError(
                "--gpus-per-cell is Ray's GPU request per cell: use it with --launcher ray "
                "(locally, --device picks the GPU)"
            )
    else:
        if launch.jobs != 1:
            raise GanbenchError(
                "--jobs is for --launcher local; under Ray the cluster's free CPUs and GPUs "
                "decide how many cells run at once (--cpus-per-cell, --gpus-per-cell)"
            )
        from ganbench import launchers

        launchers.require_ray()


WRITE_PROBE_BYTES = 1 << 20


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        try:  # not empty: a full disk still takes a 0-byte file
            probe.write_bytes(b"\0" * WRITE_PROBE_BYTES)
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise GanbenchError(
            f"Output directory {str(out)!r} is not writable: {exc.strerror}"
        ) from None


def hyperparams_for(loss: registry.Entry, generator: torch.nn.Module, spec: RunSpec) -> Hyperparams:
    """The loss's paper defaults, then the model pair's per-loss defaults, then the CLI's.

    ``--loss-param`` keys reach only the losses that declare them (in their defaults' extras):
    ``--loss wgan --loss minimax --loss-param clip=0.02`` changes WGAN's clip, and minimax, which
    has none, trains as it would without it (:func:`check_loss_params` rejects keys no loss of the
    run declares)."""
    hp = pair_hyperparams(loss, generator)
    overrides = dict(spec.overrides)
    extras = overrides.pop("extras", None)
    if extras:
        overrides["extras"] = {k: v for k, v in dict(extras).items() if k in hp.extras}
    return hp.replace(**overrides)


def pair_hyperparams(loss: registry.Entry, generator: torch.nn.Module) -> Hyperparams:
    """The loss's paper defaults with the model pair's per-loss defaults applied."""
    pair = getattr(generator, "loss_hyperparams", {}).get(loss.name, {})
    return loss.factory().defaults.replace(**dict(pair))


def check_loss_params(spec: RunSpec, declared: dict[str, tuple[str, ...]]) -> None:
    """Every ``--loss-param`` key is a key some loss of the run declares (``declared``: each loss's
    extras keys), else a one-line error naming it, the valid keys and the closest one."""
    valid = sorted({k for keys in declared.values() for k in keys})
    for key in dict(spec.overrides.get("extras") or {}):
        if key not in valid:
            losses = ", ".join(declared)
            raise GanbenchError(
                f"Unknown --loss-param {key!r} for {losses}.{did_you_mean(key, valid)} "
                f"Valid keys: {', '.join(valid) or '(none: these losses take no --loss-param)'}"
            )


def checked_hyperparams(
    loss: registry.Entry, generator: torch.nn.Module, spec: RunSpec
) -> Hyperparams:
    """:func:`hyperparams_for`, as a one-line :class:`GanbenchError` naming the loss and its
    provider when the loss cannot be built or its values are invalid (before any training)."""
    where = f"Loss {loss.name!r} (from {loss.provider})"
    try:
        hp = hyperparams_for(loss, generator, spec)
    except Exception as exc:
        raise GanbenchError(f"{where} cannot be built: {type(exc).__name__}: {exc}") from None
    problems = hp.problems()
    if problems:
        raise GanbenchError(f"{where} has invalid hyperparameters: {'; '.join(problems)}")
    return hp


def declared_extras(name: str, generator: torch.nn.Module) -> tuple[str, ...]:
    """The extras keys loss ``name`` declares (its defaults', with the pair's per-loss ones)."""
    try:
        return tuple(dict(pair_hyperparams(registry.get_loss(name), generator).extras))
    except Exception:  # a broken loss: checked_hyperparams says so, in one line
        return ()


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
        "steps": spec.steps,
        "batch_size": spec.batch_size,
        "precision": spec.precision,
        "init": spec.init,
        "hyperparams": dataclasses.asdict(cell.hp),
        "device": device.type,
        "log_every": spec.log_every,
        # only where set, so the hashes of cells from before these options stay as they were
        **({"ema_decay": spec.ema_decay} if spec.ema_decay else {}),
        **({"reuse_fake": True} if spec.reuse_fake else {}),
        # what the data is, where it can vary: the files of --data-dir, a plugin dataset's version
        **({"data": spec.data_id} if spec.data_dir is not None and spec.data_id else {}),
        **dataset_version(spec.dataset),
        "eval": {
            "fid_samples": spec.eval.fid_samples,
            "backbone": spec.eval.backbone if spec.eval.fid_samples else None,
            **kid_settings(spec.eval),
            **(
                {"every": spec.eval_every, "every_samples": spec.eval_every_samples}
                if spec.eval_every and spec.eval.fid_samples
                else {}
            ),
        },
    }


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


def cell_hashes(cell: Cell, spec: RunSpec, device: torch.device) -> tuple[str, str]:
    """``(config_hash, setup)`` of a cell: with and without its seed."""
    config = cell_config(cell, spec, device)
    return config_hash(config), config_hash({k: v for k, v in config.items() if k != "seed"})


def _built(kind: str, name: str) -> Any:
    """``kind`` ``name``'s factory() result; a one-line error naming its plugin if it raises."""
    entry = registry.get(kind, name)
    try:
        return entry.factory()
    except Exception as exc:
        raise GanbenchError(
            f"{kind.capitalize()} {name!r} (from {entry.provider}) cannot be built: "
            f"{type(exc).__name__}: {_message(exc)}"
        ) from None


def _dry_run(spec: RunSpec, dataset: Dataset) -> None:
    """Before any training: G's output fits D and the dataset (one tiny forward pass), and each
    loss's D and G steps pass the conformance kit's checks on a tiny real batch
    (:func:`ganbench.testing.check_loss_steps`); any failure is one line naming the plugin."""
    G, D = _dry_forward(spec, dataset)
    from ganbench.testing import check_loss_steps
    from ganbench.trainer import from_unit

    batch = dataset.sampler(DRY_BATCH, torch.Generator().manual_seed(0), torch.device("cpu"))()
    real = from_unit(batch, G.output_range)
    for name in spec.losses:
        entry = registry.get_loss(name)
        loss = _built("loss", name)
        loss.hp = checked_hyperparams(entry, G, spec)
        label = f"Loss {name!r} (from {entry.provider})"
        try:
            with torch.random.fork_rng(devices=[]):
                check_loss_steps(label, loss, G, D, real)
        except AssertionError as exc:
            raise GanbenchError(
                f"{first_line(exc)} (found by a dry step before training; "
                "ganbench.testing.check_loss runs every check)"
            ) from None


DRY_BATCH = 4


def _dry_forward(spec: RunSpec, dataset: Dataset) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Check that G's output fits D and the dataset, with one tiny forward pass; return the
    (G, D) it built."""
    G = _built("generator", spec.generator)
    D = _built("discriminator", spec.discriminator)
    with torch.no_grad():
        try:
            x = G(torch.randn(2, G.z_dim))
        except Exception as exc:
            raise GanbenchError(
                f"Generator {spec.generator!r} fails on a dry forward of 2 noise vectors "
                f"(z_dim {G.z_dim}): {_message(exc)}"
            ) from None
        if tuple(x.shape[1:]) != tuple(dataset.sample_shape):
            raise GanbenchError(
                f"Generator {spec.generator!r} makes samples of shape {tuple(x.shape[1:])}, but "
                f"dataset {spec.dataset!r} has samples of shape {tuple(dataset.sample_shape)}"
            )
        try:
            y = D(x)
        except Exception as exc:
            raise GanbenchError(
                f"Discriminator {spec.discriminator!r} cannot take generator "
                f"{spec.generator!r}'s output of shape {tuple(x.shape[1:])}: {_message(exc)}"
            ) from None
        if tuple(y.shape) != (2,):
            raise GanbenchError(
                f"Discriminator {spec.discriminator!r} must return one score per sample, shape "
                f"(batch,), but returned {tuple(y.shape)}"
            )
    return G, D


def _message(exc: BaseException) -> str:
    return first_line(exc) or type(exc).__name__


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def base_row(cell: Cell, spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """A cell's ``runs.csv`` row before it trains: its identity (names, providers, seed,
    hyperparameters, ``config_hash``, ``setup``), a new ``run_id`` and ``status=error``."""
    gen = registry.get_generator(spec.generator)
    disc = registry.get_discriminator(spec.discriminator)
    data = registry.get_dataset(spec.dataset)
    hp = cell.hp
    chash, setup = cell_hashes(cell, spec, device)
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
        "steps": spec.steps,
        "batch_size": spec.batch_size,
        "n_critic": hp.n_critic,
        "optimizer_g": hp.optimizer_g,
        "optimizer_d": hp.optimizer_d,
        "lr_g": hp.lr_g,
        "lr_d": hp.lr_d,
        "beta1": hp.beta1,
        "beta2": hp.beta2,
        "loss_params": json.dumps(dict(hp.extras), sort_keys=True),
        "precision": spec.precision,
        "ema_decay": spec.ema_decay,
        "reuse_fake": spec.reuse_fake,
        "device": str(device),
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


def fixed_noise(cell: Cell) -> dict[str, int]:
    """The seeds of a cell's fixed noise: its sample grid's (the same for every cell) and its
    evaluation's (apart from its training noise)."""
    return {"grid": GRID_SEED, "eval": EVAL_SEED_OFFSET + cell.seed}


def train_config(
    cell: Cell, spec: RunSpec, device: torch.device, curves: bool, description: str = ""
) -> TrainConfig:
    """The trainer's settings for ``cell`` (``curves``: with ``--eval-every`` curve points)."""
    return TrainConfig(
        steps=spec.steps,
        batch_size=spec.batch_size,
        seed=cell.seed,
        hp=cell.hp,
        device=device,
        precision=spec.precision,
        log_every=spec.log_every,
        progress=spec.progress,
        description=description or f"{cell.loss.name} seed {cell.seed}",
        checkpoint_every=spec.checkpoint_every,
        eval_every=spec.eval_every if curves else 0,
        compile=spec.compile,
        reuse_fake=bool(spec.reuse_fake),
    )


def new_models(cell: Cell, spec: RunSpec, row: dict[str, Any]) -> tuple[torch.nn.Module, ...]:
    """A cell's freshly initialised (G, D): every RNG seeded with the cell's seed first, so the
    same cell starts from the same weights however it is trained; ``row["init"]`` records the
    scheme."""
    _seed_everything(cell.seed)
    G = registry.get_generator(spec.generator).factory()
    D = registry.get_discriminator(spec.discriminator).factory()
    if spec.init is not None:
        init_weights(G, spec.init)
        init_weights(D, spec.init)
    row["init"] = spec.init or getattr(G, "init", "")
    return G, D


def curve_scorer(
    G: torch.nn.Module,
    curve_evaluator: Evaluator | None,
    eval_seed: int,
    device: torch.device,
    ema: AveragedModel | None = None,
) -> Callable[[int], dict[str, float]] | None:
    """The ``evaluate(step)`` of ``--eval-every``: ``curve_evaluator``'s numeric scores of G now,
    and of the EMA generator (``<metric>_ema``) where there is one."""
    if curve_evaluator is None:
        return None

    def evaluate(step: int) -> dict[str, float]:
        out = {}
        for model, suffix in generators(G, ema, device):
            scores = curve_evaluator.score(
                generate(model, curve_evaluator.n_samples, eval_seed, device)
            )
            names = scored_metrics(curve_evaluator, scores, suffix)
            out.update({k + suffix: scores[k] for k in names})
        return out

    return evaluate


def scored_metrics(evaluator: Evaluator, scores: dict[str, Any], suffix: str) -> list[str]:
    """The metric names of ``scores``; for the EMA generator (``suffix``) only its outcomes: how
    they were computed (``fid_samples``, ...) is G's."""
    names = metric_names(evaluator, scores)
    return [m for m in names if m not in NOT_METRICS] if suffix else names


def generators(
    G: torch.nn.Module, ema: AveragedModel | None, device: torch.device
) -> list[tuple[torch.nn.Module, str]]:
    """``(model, column suffix)`` of the generators a cell scores: G, and its EMA (``_ema``)."""
    found = [(G, "")]
    if ema is not None:
        found.append((ready_to_sample(ema, device), EMA_SUFFIX))
    return found


def record_result(
    row: dict[str, Any], result: TrainResult, curve_evaluator: Evaluator | None = None
) -> list[dict[str, Any]]:
    """Put a training result's columns into ``row``, with its time to quality and whether it
    was still improving where it has FID curve points (:mod:`ganbench.convergence`); return its
    curves.csv rows."""
    row.update(
        status=result.status,
        diverged_at=result.diverged_at,
        diverged_reason=result.diverged_reason,
        steps_done=result.steps_done,
        resumed_from_step=result.resumed_from,
        train_images_per_s=result.train_images_per_s,
        d_step_ms=result.d_step_ms,
        g_step_ms=result.g_step_ms,
        gflop_per_step=result.gflop_per_step,
        train_s=result.train_s,
        final_d_loss=result.final_d_loss,
        final_g_loss=result.final_g_loss,
    )
    if curve_evaluator is not None:
        floor = curve_evaluator.reference().get("fid")
        floor = float(floor) if isinstance(floor, int | float) else math.nan
        row.update(convergence_columns(result.curves, floor, ("", EMA_SUFFIX)))
    run_id = row["run_id"]
    return [{"run_id": run_id, "step": s, "metric": m, "value": v} for s, m, v in result.curves]


def score(
    G: torch.nn.Module,
    row: dict[str, Any],
    spec: RunSpec,
    dataset: Dataset,
    evaluator: Evaluator | None,
    device: torch.device,
    noise_seeds: dict[str, int],
    ema: AveragedModel | None = None,
) -> None:
    """A trained cell's sample grids (fixed noise) and, with an evaluator, its scores, into
    ``row``: for G, and for its EMA generator (``samples_ema_png``, ``<metric>_ema``)."""
    names = []
    taken = set(row)  # the cell's identity and training columns: no score may overwrite them
    for model, suffix in generators(G, ema, device):
        grid = spec.out / "samples" / f"{row['run_id']}{suffix.replace('_', '-')}.png"
        samples = generate(model, dataset.preview_samples, noise_seeds["grid"], device)
        try:  # a picture is not a result: a dataset plugin failing to draw one costs no cell
            dataset.save_samples(samples, grid)
        except Exception as exc:
            row[f"samples{suffix}_error"] = describe(exc)
            print(f"  no sample picture {grid}: {describe(exc)}", file=sys.stderr)
        if grid.exists():
            row[f"samples{suffix}_png"] = str(grid.relative_to(spec.out))
        if evaluator is not None:
            samples = generate(model, evaluator.n_samples, noise_seeds["eval"], device)
            scores = evaluator.score(samples)
            clash = sorted(set(scores) & taken)
            if clash:
                raise ValueError(
                    f"the evaluator's scores {clash} would overwrite the runs.csv columns of the "
                    "same names: rename them"
                )
            metrics = scored_metrics(evaluator, scores, suffix)
            if suffix:  # the EMA's outcomes; how they were computed is G's (fid_samples, ...)
                scores = {k + suffix: v for k, v in scores.items() if k in metrics}
            names += [m + suffix for m in metrics]
            row.update(scores)
    if evaluator is not None:
        row["metrics"] = " ".join(names)


def keep_generators(
    row: dict[str, Any],
    spec: RunSpec,
    G: torch.nn.Module,
    ema_G: torch.nn.Module | None,
    noise_seeds: dict[str, int],
    channels_last: bool,
    log: Callable[[str], None],
) -> None:
    """Save a scored cell's generators (:mod:`ganbench.generator_files`) unless the spec says not
    to; its row gets ``generator_file``. A failed write (a full disk) is logged and leaves the
    trained and scored cell as it is, without a file."""
    if not spec.keep_generators:
        return
    path = generator_files.path_for(spec.out, row["run_id"])
    try:
        generator_files.save(path, row, G, ema_G, noise_seeds, channels_last)
    except OSError as exc:
        log(f"  could not keep the generators in {path} ({describe(exc)}); the row is kept")
        return
    row["generator_file"] = str(path.relative_to(spec.out))


def run_cell(
    cell: Cell,
    spec: RunSpec,
    dataset: Dataset,
    evaluator: Evaluator | None,
    device: torch.device,
    log: Callable[[str], None],
    curve_evaluator: Evaluator | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train (or resume) and score one cell; return its runs.csv row and curves.csv rows.

    With ``curve_evaluator`` (``--eval-every``), the evaluator's numeric scores of
    ``curve_evaluator.n_samples`` samples are added to the curves every ``spec.eval_every``
    steps (e.g. ``fid``; fewer samples than the final score, so biased upwards: compare curve
    points with curve points).

    Never raises for a failing loss or model: the row gets ``status=error`` and the message.
    With ``spec.checkpoint_every`` > 0 the cell resumes from its checkpoint, if it has a usable
    one (unless ``spec.fresh``), and checkpoints as it trains (see :mod:`ganbench.checkpoints`).
    """
    config = cell_config(cell, spec, device)
    row = base_row(cell, spec, device)
    chash = row["config_hash"]
    curves: list[dict[str, Any]] = []
    start = time.perf_counter()

    # -- checkpoint: resume from it unless --fresh; a fresh start drops the old one -------------
    ckpt_path = checkpoints.path_for(spec.out, chash)
    resume = None
    if spec.checkpoint_every:
        if spec.fresh:
            ckpt_path.unlink(missing_ok=True)
        else:
            resume = checkpoints.load(ckpt_path, chash, log)
    noise_seeds = fixed_noise(cell)
    if resume is not None:
        noise_seeds = resume["noise"]  # the fixed sample/evaluation noise the cell began with
        log(f"  resuming from step {resume['trainer']['progress']['step']} ({ckpt_path})")

    def save_checkpoint(trainer_state: dict[str, Any]) -> None:
        checkpoint = {
            "format": checkpoints.CHECKPOINT_FORMAT,
            "config_hash": chash,
            "config": config,
            "ganbench_version": __version__,
            "noise": noise_seeds,
            "trainer": trainer_state,
        }
        try:
            checkpoints.save(ckpt_path, checkpoint)
        except (OSError, RuntimeError) as exc:  # a full disk: torch.save raises RuntimeError
            free = shutil.disk_usage(ckpt_path.parent).free if ckpt_path.parent.is_dir() else 0
            log(
                f"  checkpoint {ckpt_path} not written ({describe(exc)}; {free / 1e6:.0f} MB "
                "free there); training goes on, and an interrupted cell would start over"
            )

    def train_from(resume_state: dict[str, Any] | None):
        G, D = new_models(cell, spec, row)
        ema = ema_of(G, spec.ema_decay) if spec.ema_decay else None
        data_rng = torch.Generator().manual_seed(cell.seed)
        evaluate = curve_scorer(G, curve_evaluator, noise_seeds["eval"], device, ema)
        result = train(
            G,
            D,
            cell.loss.factory(),
            dataset.sampler(spec.batch_size, data_rng, device),
            train_config(cell, spec, device, curve_evaluator is not None),
            evaluate,
            data_rng=data_rng,
            resume=resume_state,
            checkpoint=save_checkpoint if spec.checkpoint_every else None,
            ema=ema,
        )
        return G, ema, result

    try:
        try:
            G, ema, result = train_from(resume["trainer"] if resume is not None else None)
        except ResumeError as exc:  # e.g. the model code changed under the same names
            log(f"  checkpoint {ckpt_path} does not fit ({exc}); starting over")
            G, ema, result = train_from(None)
        curves = record_result(row, result, curve_evaluator)
        if result.status == "ok":  # a diverged G has non-finite weights: no picture, no scores
            score(G, row, spec, dataset, evaluator, device, noise_seeds, ema)
            # score() readied the EMA generator to sample (its BatchNorm statistics)
            ema_G = ema.module if ema is not None else None
            keep_generators(row, spec, G, ema_G, noise_seeds, uses_channels_last(G), log)
    except Exception as exc:  # a failing plugin fails its own cell only
        row["status"] = "error"
        row["error"] = f"{type(exc).__name__}: {exc}"
        log(f"cell {cell.loss.name} seed {cell.seed} failed: {row['error']}")
        if os.environ.get("GANBENCH_DEBUG"):
            traceback.print_exc()
    row["wall_s"] = time.perf_counter() - start
    return stamp(row), curves


def run_pack(
    cells: list[Cell],
    spec: RunSpec,
    dataset: Dataset,
    evaluator: Evaluator | None,
    device: torch.device,
    log: Callable[[str], None],
    curve_evaluator: Evaluator | None = None,
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Train the seeds ``cells`` (one loss) as one packed computation (:mod:`ganbench.packing`)
    and score each; return each cell's runs.csv row and curves.csv rows, as :func:`run_cell`.

    Each cell starts from the weights, noise and data stream its unpacked run would have. No
    checkpoints are written while a pack trains (``--fresh`` still drops old ones). Raises
    :class:`PackError` if the loss or models cannot be trained packed (nothing is recorded):
    the caller trains the cells one at a time instead. A failure while scoring fails that cell.
    """
    start = time.perf_counter()
    rows = [base_row(cell, spec, device) for cell in cells]
    if spec.fresh:
        for row in rows:
            checkpoints.path_for(spec.out, row["config_hash"]).unlink(missing_ok=True)
    noise_seeds = [fixed_noise(cell) for cell in cells]
    try:
        Gs, Ds = zip(
            *(new_models(c, spec, r) for c, r in zip(cells, rows, strict=True)), strict=True
        )
        samplers = [
            dataset.sampler(spec.batch_size, torch.Generator().manual_seed(cell.seed), device)
            for cell in cells
        ]
        evaluates = [
            curve_scorer(G, curve_evaluator, seeds["eval"], device)
            for G, seeds in zip(Gs, noise_seeds, strict=True)
        ]
        results = train_packed(
            Gs,
            Ds,
            cells[0].loss.factory(),
            samplers,
            [cell.seed for cell in cells],
            train_config(
                cells[0],
                spec,
                device,
                curve_evaluator is not None,
                f"{cells[0].loss.name} seeds {','.join(str(c.seed) for c in cells)}",
            ),
            evaluates if curve_evaluator is not None else None,
        )
    except Exception as exc:
        raise PackError(describe(exc)) from exc
    train_wall = (time.perf_counter() - start) / len(cells)
    out = []
    for cell, row, G, result, seeds in zip(cells, rows, Gs, results, noise_seeds, strict=True):
        started = time.perf_counter()
        row["pack"] = len(cells)
        curves = record_result(row, result, curve_evaluator)
        try:
            if result.status == "ok":
                score(G, row, spec, dataset, evaluator, device, seeds)
                keep_generators(row, spec, G, None, seeds, False, log)  # packs train contiguous
        except Exception as exc:
            row["status"] = "error"
            row["error"] = f"{type(exc).__name__}: {exc}"
            log(f"cell {cell.loss.name} seed {cell.seed} failed: {row['error']}")
        row["wall_s"] = train_wall + time.perf_counter() - started
        out.append((stamp(row), curves))
    return out


class PackError(Exception):
    """A loss or model pair cannot be trained packed (e.g. a loss that is not ``vmap``-able)."""


@dataclass
class Prepared:
    """What a process needs to run the cells of one spec; built once per process (the driver,
    or a worker of :mod:`ganbench.launchers`)."""

    spec: RunSpec  # defaults filled
    device: torch.device  # where the cells train (in their config_hash)
    dataset: Dataset
    cells: list[Cell]
    evaluator: Evaluator | None
    curve_evaluator: Evaluator | None

    def cell(self, loss: str, seed: int) -> Cell:
        return next(c for c in self.cells if (c.loss.name, c.seed) == (loss, seed))


def prepare(spec: RunSpec, check: bool = True) -> Prepared:
    """Fill defaults, load the dataset, build the cells and evaluators.

    ``check`` (the driver): validate everything before any training, and make sure a GPU the
    cells train on is here. A worker passes False: the driver checked, and what is left to fail
    (a plugin missing on a Ray node, no GPU) fails its cells, not the sweep.
    """
    spec = with_defaults(spec)
    if check:
        validate(spec)
    device = cell_device(spec, check_available=not check or spec.launch.launcher != "ray")
    dataset: Dataset = registry.get_dataset(spec.dataset).factory()
    dataset.load(spec.data_dir)
    spec = dataclasses.replace(spec, data_id=str(getattr(dataset, "data_id", "") or ""))
    if check:
        if spec.batch_size > len(dataset):
            raise GanbenchError(
                f"--batch-size {spec.batch_size} is larger than dataset {spec.dataset!r} "
                f"({len(dataset)} samples)"
            )
        _dry_run(spec, dataset)
    G0 = registry.get_generator(spec.generator).factory()
    if check:
        check_loss_params(spec, {name: declared_extras(name, G0) for name in spec.losses})
    cells = [
        Cell(registry.get_loss(name), seed, checked_hyperparams(registry.get_loss(name), G0, spec))
        for name in spec.losses
        for seed in spec.seeds
    ]
    evaluator = curve_evaluator = None
    if spec.eval.fid_samples > 0:
        # the driver of a Ray sweep needs no GPU of its own: its evaluator (the real-data floor)
        # runs on the CPU when the cells' GPU is not here
        here = device if device.type == "cpu" or torch.cuda.is_available() else torch.device("cpu")
        evaluator = dataset.make_evaluator(dataclasses.replace(spec.eval, device=str(here)))
        if spec.eval_every > 0:
            curve_evaluator = dataset.make_evaluator(
                dataclasses.replace(
                    spec.eval,
                    device=str(here),
                    fid_samples=min(spec.eval_every_samples, spec.eval.fid_samples),
                    manifold_metrics=False,
                )
            )
    return Prepared(spec, device, dataset, cells, evaluator, curve_evaluator)


def execute_cell(
    prep: Prepared,
    cell: Cell,
    label: str,
    log: Callable[[str], None],
    launch_columns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one cell in this process, whichever launcher called: skip it if ``prep.spec.out``
    has it finished, else train (or resume) it and record its row; return a small status
    ``{"status", "run_id", "error"}`` (status ``skipped`` for a finished cell).

    ``launch_columns`` (informational, never hashed) are added to the row.
    """
    spec = prep.spec
    chash, _ = cell_hashes(cell, spec, prep.device)
    lock = R.cell_lock(spec.out, chash)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"{label}: being trained by another process on {spec.out} (cell {chash}); skipped")
        return {"status": "skipped", "run_id": "", "error": ""}
    try:
        return _execute_locked(prep, cell, chash, label, log, launch_columns)
    finally:
        lock.release()


def _execute_locked(
    prep: Prepared,
    cell: Cell,
    chash: str,
    label: str,
    log: Callable[[str], None],
    launch_columns: dict[str, Any] | None,
) -> dict[str, Any]:
    spec = prep.spec
    # Checked per cell, not once: another process on the same --out may have finished it.
    done = None if spec.fresh else R.finished_run(spec.out, chash)
    if done is not None:
        log(f"{label}: finished earlier (run {done}), skipped; --fresh reruns it")
        return {"status": "skipped", "run_id": done, "error": ""}
    log(f"{label} ({cell.hp.n_critic} critic steps per G step, {spec.steps} G steps, cell {chash})")
    row, curves = run_cell(
        cell, spec, prep.dataset, prep.evaluator, prep.device, log, prep.curve_evaluator
    )
    row.update(launch_columns or {}, pack=1, compile=spec.compile)
    if row["status"] == "diverged":
        log(f"  diverged at step {row['diverged_at']} (non-finite {row['diverged_reason']})")
    R.record_cell(spec.out, row, curves)
    return {"status": row["status"], "run_id": row["run_id"], "error": row["error"]}


def execute_pack(
    prep: Prepared,
    group: list[tuple[str, Cell]],
    log: Callable[[str], None],
    launch_columns: dict[str, Any] | None = None,
) -> None:
    """Train the ``(label, cell)`` pairs of ``group`` (one loss, unfinished seeds) as one pack
    (:func:`run_pack`) and record each cell's row; if the loss or models cannot be packed, train
    the cells one at a time with :func:`execute_cell` instead."""
    spec, cells = prep.spec, [cell for _, cell in group]
    name, seeds = cells[0].loss.name, ", ".join(str(c.seed) for c in cells)
    log(
        f"{name} seeds {seeds}, packed ({cells[0].hp.n_critic} critic steps per G step, "
        f"{spec.steps} G steps)"
    )
    try:
        outcomes = run_pack(
            cells, spec, prep.dataset, prep.evaluator, prep.device, log, prep.curve_evaluator
        )
    except PackError as exc:
        log(f"  {name} cannot be trained packed ({exc}); training its seeds one at a time")
        for label, cell in group:
            execute_cell(prep, cell, label, log, launch_columns)
        return
    for row, curves in outcomes:
        row.update(launch_columns or {}, compile=spec.compile)
        if row["status"] == "diverged":
            log(f"  seed {row['seed']} diverged at step {row['diverged_at']}")
        R.record_cell(spec.out, row, curves)


def reference_table(prep: Prepared) -> pd.DataFrame | None:
    """The real-data floor row of the summary, when the run evaluates."""
    if prep.evaluator is None:
        return None
    floor = prep.evaluator.reference()
    return pd.DataFrame(
        [
            {
                "loss": REFERENCE_LOSS,
                "dataset": prep.spec.dataset,
                "metrics": " ".join(metric_names(prep.evaluator, floor)),
                **floor,
            }
        ]
    )


def run(spec: RunSpec, log: Callable[[str], None] | None = None) -> Tables:
    """Run every (loss, seed) cell of ``spec``; rewrite summary.csv and comparisons.csv; return
    the rows of both tables that concern this run's setups (see :func:`rows_about`).

    Cells finished earlier in ``spec.out`` are skipped and interrupted ones resumed (see the
    module docstring), unless ``spec.fresh``. ``spec.launch`` picks where the cells run
    (:mod:`ganbench.launchers`); every launcher writes the same files.
    """
    from ganbench import launchers

    log = log or (lambda msg: print(msg, file=sys.stderr))
    prep = prepare(spec)
    base = pair_defaults(prep.spec.generator).get("default_steps", prep.dataset.default_steps)
    if spec.steps is None and spec.epochs is None and prep.spec.steps != base:
        log(
            f"{prep.spec.steps} generator steps for every cell (an objective of this run needs"
            f" them on {prep.spec.generator}, whose default is {base}; --steps N to change)"
        )
    if spec.precision == "auto":
        if prep.device.type == "cpu" and not cpu_has_native_bf16():
            why = "this CPU has no native bf16 (AVX-512 BF16 or AMX)"
        elif not validated_pair(prep.dataset, prep.spec.generator):
            why = f"bf16 is not validated on {prep.spec.generator} with {prep.spec.dataset}"
        else:
            why = f"{prep.spec.dataset}'s validated CPU precision is {prep.dataset.cpu_precision}"
        log(
            f"precision {prep.spec.precision} (--precision auto on {prep.device.type}: {why}; "
            "--precision fp32 or bf16 to choose)"
        )
    if prep.spec.keep_generators:
        log(generators_note(prep.spec))
    reference = reference_table(prep)
    setups = {cell_hashes(cell, prep.spec, prep.device)[1] for cell in prep.cells}
    launchers.run_cells(prep, log)
    with R.lock(prep.spec.out):
        tables = write_tables(prep.spec.out, reference)
        runs = latest_attempts(R.read_csv(prep.spec.out / R.RUNS))
    return dataclasses.replace(rows_about(tables, setups), failed=failed_cells(prep, runs))


def generators_note(spec: RunSpec) -> str:
    """The line that says how much disk each cell's kept generators take."""
    G = registry.get_generator(spec.generator).factory()
    n = 2 if spec.ema_decay else 1
    size = n * generator_files.state_bytes(G)
    what = "G and EMA-G" if n == 2 else "G"
    return (
        f"each cell keeps its {what} in {spec.out / generator_files.DIRECTORY}/: "
        f"{size / 1e6:.2f} MB per cell (--no-keep-generators to keep none)"
    )


def failed_cells(prep: Prepared, runs: pd.DataFrame) -> tuple[str, ...]:
    """``loss seed S`` of every cell of this run whose latest row in ``runs`` is an error."""
    if runs.empty or "config_hash" not in runs:
        return ()
    status = dict(zip(runs["config_hash"].astype(str), runs["status"], strict=True))
    return tuple(
        f"{cell.loss.name} seed {cell.seed}"
        for cell in prep.cells
        if status.get(cell_hashes(cell, prep.spec, prep.device)[0]) == "error"
    )


def rows_about(tables: Tables, setups: set[str]) -> Tables:
    """The rows of ``tables`` about ``setups``: their arms, the real-data floor, and every
    comparison with at least one of them on either side."""
    summary, comparisons = tables.summary, tables.comparisons
    if "setup" in summary:
        keep = summary["setup"].isin(setups) | (summary["loss"] == REFERENCE_LOSS)
        summary = summary[keep].reset_index(drop=True)
    keep = comparisons["setup_a"].isin(setups) | comparisons["setup_b"].isin(setups)
    return Tables(summary, comparisons[keep].reset_index(drop=True))
