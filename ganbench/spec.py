"""What a run is asked to do: :class:`RunSpec` (and its :class:`LaunchOptions`), and the
:class:`Cell`, one (loss, seed) of it. Plain frozen types; :mod:`ganbench.plan` fills and checks
them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.arguments import DEFAULT_OUT, DEFAULTS  # noqa: F401 (DEFAULTS: spec's vocabulary)
from ganbench.datasets import EvalOptions
from ganbench.losses import Hyperparams
from ganbench.registry import Entry

LAUNCHERS = ("local", "ray")
DEFAULT_BATCH_SIZE = 128
DEFAULT_EMA_DECAY = 0.999
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
CURVE_POINTS = 8  # FID curve points per cell without --eval-every
STEP_UNITS = ("generator", "discriminator")  # what --steps counts (RunSpec.step_unit)
# a cell's torch thread count is part of its config_hash except where it is this one: what every
# committed CPU cell trained with (2-core machines, one cell at a time), so their hashes stay
UNHASHED_THREADS = 2
GRID_SEED = 1234  # the fixed noise of every sample grid, so grids compare across cells
EVAL_SEED_OFFSET = 1_000_000  # evaluation noise is seeded apart from training noise


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
    # a named training setup of the dataset (Dataset.budgets, e.g. "long"): fills the pair and
    # budget the command line leaves unset; None or "default": the dataset's default setup
    budget: str | None = None
    epochs: float | None = None  # a budget in passes over the data instead of --steps
    # what ``steps`` counts: "generator" updates (each after n_critic D updates), or
    # "discriminator" updates (Lucic et al. 2018: G updates every n_critic of them, so n_critic
    # trades G updates for D updates at equal compute); None: "generator"
    step_unit: str | None = None
    batch_size: int | None = None  # None: the pair's batch_size, else 128
    device: str = "auto"
    precision: str = "auto"  # fp32, bf16, or auto (see ganbench.devices.auto_precision)
    out: Path = Path(DEFAULT_OUT)
    data_dir: Path | None = None
    init: str | None = None
    # where each loss's hyperparameters start, one of DEFAULTS; filled where not given: "tuned"
    # on a pair a committed study tuned, else "pair" (ganbench.defaults.chosen_defaults)
    defaults: str | None = None
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
    compile: str = ""  # torch.compile mode for the models ("": eager)
    ema_decay: float | None = None  # EMA generator's decay; 0: none; None: the pair's, else 0.999
    reuse_fake: bool | None = None  # the G step reuses the D step's fake; None: the pair's choice
    keep_generators: bool = True  # keep each finished cell's G (and EMA-G) in OUT/generators/
    # keep a finished cell's final checkpoint (models, optimisers: ~93 MB on the MNIST default);
    # off: removed once its row is written (its generators rescore it; resume needs only
    # unfinished cells' checkpoints). A halving search keeps its rungs' for promotion
    keep_checkpoints: bool = False
    # intra-op torch threads a cell trains and is scored with on the CPU (part of its identity:
    # GAN training turns another reduction order into another run); None: cpus-per-cell, else
    # cores / jobs for a local pool, 1 on Ray, torch's default for one local cell
    threads: int | None = None
    data_id: str = ""  # the loaded data's identity (Dataset.data_id), filled in by plan.prepare

    def generator_steps(self, n_critic: int) -> int:
        """The generator updates a cell with ``n_critic`` D steps per G step trains: ``steps``,
        or ``steps // n_critic`` when ``steps`` counts discriminator updates."""
        return _in_generator_steps(self.steps, n_critic, self.step_unit)

    def generator_eval_every(self, n_critic: int) -> int:
        """``eval_every`` in generator steps for a cell with ``n_critic`` (0: no curve points)."""
        if not self.eval_every:
            return 0
        return _in_generator_steps(self.eval_every, n_critic, self.step_unit)


def _in_generator_steps(count: int, n_critic: int, unit: str | None) -> int:
    if unit == "discriminator":
        return max(1, int(count) // max(1, int(n_critic)))
    return count


@dataclass(frozen=True)
class Cell:
    """One (loss, seed) of a run, with the hyperparameters it trains with.

    ``sources`` says where each hyperparameter came from (``loss``, ``pair``, ``search``,
    ``command line``); ``tags`` are informational row columns (a search's ``trial`` and
    ``search_phase``). Neither is part of the cell's ``config_hash``: the values are.

    ``config`` (everything that decides its results), ``config_hash`` and ``setup`` (the hash
    without the seed) are its identity, filled in by the plan (:func:`ganbench.plan.identified`)
    for the spec it runs under, once; every consumer reads them from here.
    """

    loss: Entry
    seed: int
    hp: Hyperparams
    sources: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    setup: str = ""
