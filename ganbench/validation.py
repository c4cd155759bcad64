"""Every check of a filled :class:`~ganbench.spec.RunSpec` that needs no data: names, numbers,
choices, the launcher, the output directory. A mistake is one :class:`GanbenchError` line,
raised before any training."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import math
import os
from pathlib import Path

from ganbench import plugins, registry
from ganbench import results as R
from ganbench.datasets import Dataset
from ganbench.devices import cell_device
from ganbench.errors import EnvironmentFailure, GanbenchError
from ganbench.losses import OPTIMIZERS
from ganbench.models import INIT_SCHEMES
from ganbench.spec import DEFAULTS, LAUNCHERS, MAX_SEED, STEP_UNITS, LaunchOptions, RunSpec
from ganbench.trainer import COMPILE_MODES, PRECISIONS

RAY_MISSING = '--launcher ray needs Ray: pip install "ganbench[ray]"'
WRITE_PROBE_BYTES = 1 << 20


def check_positive(name: str, value: float) -> None:
    if not (value > 0) or (isinstance(value, float) and not math.isfinite(value)):
        raise GanbenchError(f"{name} must be a positive number, got {value!r}")


def validate(spec: RunSpec, dataset: Dataset | None = None) -> None:
    """Every check that needs no data. ``spec`` has its defaults filled
    (:func:`ganbench.defaults.with_defaults`); ``dataset``: the plan's dataset object (else one
    is built here)."""
    if not spec.losses:
        raise GanbenchError(
            f"No loss given. Use --loss NAME. Available: {', '.join(registry.names('loss'))}"
        )
    for name in spec.losses:
        registry.get_loss(name)
    registry.get_generator(spec.generator)
    registry.get_discriminator(spec.discriminator)
    if dataset is None:
        dataset = registry.get_dataset(spec.dataset).factory()
    if spec.data_dir is not None and not getattr(dataset, "reads_data_dir", True):
        raise GanbenchError(
            f"--data-dir {str(spec.data_dir)!r} means nothing to dataset {spec.dataset!r}, which "
            "reads no files (it is sampled on the fly): leave --data-dir out"
        )
    if spec.eval.mode_samples is not None:
        if getattr(dataset, "mode_samples", None) is None:
            raise GanbenchError(
                f"--mode-samples {spec.eval.mode_samples} means nothing to dataset "
                f"{spec.dataset!r}, which is not scored by modes: leave it out"
            )
        check_positive("--mode-samples", spec.eval.mode_samples)
    check_positive("--steps", spec.steps)
    if spec.step_unit not in STEP_UNITS:
        raise GanbenchError(
            f"Unknown --step-unit {spec.step_unit!r}. Available: {', '.join(STEP_UNITS)}"
        )
    if spec.defaults not in DEFAULTS:
        raise GanbenchError(
            f"Unknown --defaults {spec.defaults!r}. Available: {', '.join(DEFAULTS)}"
        )
    threads = spec.threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise GanbenchError(f"--threads must be a whole number of at least 1, got {threads!r}")
    if not (math.isfinite(spec.ema_decay) and 0 <= spec.ema_decay < 1):
        raise GanbenchError(f"--ema-decay must be in [0, 1) (0: no EMA), got {spec.ema_decay}")
    check_positive("--batch-size", spec.batch_size)
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
            check_positive(f"--{key.replace('_', '-')}", spec.overrides[key])
    for key in ("beta1", "beta2"):
        if key in spec.overrides and not 0 <= spec.overrides[key] < 1:
            raise GanbenchError(f"--{key} must be a number in [0, 1), got {spec.overrides[key]}")
    check_positive("--log-every", spec.log_every)
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
    validate_launch(spec.launch)
    if spec.compile and spec.compile not in COMPILE_MODES:
        raise GanbenchError(
            f"Unknown compile mode {spec.compile!r}. Available: {', '.join(COMPILE_MODES)}"
        )
    if spec.launch.launcher == "ray" or spec.launch.jobs > 1:
        check_workers_can_build(spec)
    cell_device(spec, check_available=spec.launch.launcher != "ray")  # Ray: the worker checks
    check_writable(spec.out)
    R.check_results_files(spec.out)


def validate_launch(launch: LaunchOptions) -> None:
    if launch.launcher not in LAUNCHERS:
        raise GanbenchError(
            f"Unknown launcher {launch.launcher!r}. Available: {', '.join(LAUNCHERS)}"
        )
    if isinstance(launch.jobs, bool) or not isinstance(launch.jobs, int) or launch.jobs < 1:
        raise GanbenchError(f"--jobs must be a whole number of at least 1, got {launch.jobs!r}")
    if launch.cpus_per_cell is not None:
        check_positive("--cpus-per-cell", launch.cpus_per_cell)
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
        require_ray()


def require_ray() -> None:
    """Raise the one-line install hint unless Ray can be imported (without importing it)."""
    if importlib.util.find_spec("ray") is None:
        raise GanbenchError(RAY_MISSING)


def check_workers_can_build(spec: RunSpec) -> None:
    """Worker processes rebuild the registry from the built-in and installed plugins: refuse
    (before any training) a sweep that uses a plugin registered in this process only."""
    installed = set(plugins.DEFAULT_PLUGINS) | {
        ep.name for ep in md.entry_points(group=plugins.ENTRY_POINT_GROUP)
    }
    used = [registry.get_loss(name) for name in spec.losses] + [
        registry.get_generator(spec.generator),
        registry.get_discriminator(spec.discriminator),
        registry.get_dataset(spec.dataset),
    ]
    for entry in used:
        if entry.plugin not in installed:
            raise GanbenchError(
                f"{entry.kind} {entry.name!r} comes from plugin {entry.plugin!r}, registered in "
                "this process only, which worker processes (--jobs N, --launcher ray) cannot "
                "see; install it as a plugin distribution (docs/plugins.md) or use --jobs 1"
            )


def check_writable(out: Path) -> None:
    """``--out`` can take this run's files, checked without creating it (a refused command
    leaves nothing behind): a 1 MiB probe file (a full disk fails) in ``out``, or where ``out``
    does not exist yet in its nearest existing folder; and its ``runs.csv`` and ``curves.csv``,
    where present, open for appending (an immutable or read-only table fails here, before any
    training, not after it)."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise GanbenchError(f"Output directory {str(out)!r} is not writable: Not a directory")
    try:
        probe = existing / f".write-test-{os.getpid()}"
        try:  # not empty: a full disk still takes a 0-byte file
            probe.write_bytes(b"\0" * WRITE_PROBE_BYTES)
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise EnvironmentFailure(
            f"Output directory {str(out)!r} is not writable: {exc.strerror}"
        ) from None
    for name in (R.RUNS, R.CURVES):
        path = out / name
        if path.is_file():
            try:
                with path.open("a"):
                    pass
            except OSError as exc:
                raise EnvironmentFailure(
                    f"{path} cannot be written ({exc.strerror}); nothing was trained: make it "
                    "writable, or use another --out"
                ) from None


DAYS_STEPS = 1_000_000  # generator steps in all: the MNIST default trains 2400 in ~3 min here
DAYS_SAMPLES = 10_000_000  # samples scored per cell: 10,000 take ~10 s here


def days_warnings(total_steps: int, samples: int) -> list[str]:
    """A plain warning for a budget or sample count that would take days (2 CPU cores)."""
    out = []
    if total_steps > DAYS_STEPS:
        out.append(
            f"warning: {total_steps:,} generator steps in all; the default MNIST cell trains "
            "2,400 in about 3 minutes on 2 CPU cores, so this run could take days"
        )
    if samples > DAYS_SAMPLES:
        out.append(
            f"warning: {samples:,} samples scored per cell; 10,000 take about 10 s on 2 CPU "
            "cores, so scoring alone could take days"
        )
    return out
