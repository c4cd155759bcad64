"""Filling a :class:`~ganbench.spec.RunSpec`: the model pair, budget, batch size, precision, EMA
and curve spacing a run gets where the command line says nothing, and each loss's
hyperparameters (its paper's defaults, then the pair's per-loss ones, then the command line's)."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

import torch

from ganbench import registry
from ganbench.datasets import Dataset
from ganbench.devices import auto_precision, cell_device
from ganbench.errors import GanbenchError, describe, did_you_mean
from ganbench.losses import Hyperparams
from ganbench.models import PairDefaults, model_class, pair_defaults
from ganbench.spec import (
    CURVE_POINTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMA_DECAY,
    LaunchOptions,
    RunSpec,
)
from ganbench.validation import check_positive


def with_defaults(
    spec: RunSpec, dataset: Dataset | None = None, device: torch.device | None = None
) -> RunSpec:
    """Fill the model pair and step budget the dataset recommends where the user gave none.

    ``dataset`` (built, maybe loaded) and ``device`` (:func:`~ganbench.devices.cell_device`) are
    the plan's, built once; without them they are built here. Idempotent: a filled spec comes
    back unchanged (a worker fills the spec its driver filled).
    """
    if dataset is None:
        dataset = registry.get_dataset(spec.dataset).factory()
    spec = with_budget(spec, dataset)
    generator = spec.generator or dataset.default_model
    pair = generator_defaults(generator)
    batch_size = spec.batch_size
    if batch_size is None:
        batch_size = int(pair.batch_size or DEFAULT_BATCH_SIZE)
    steps = spec.steps
    if steps is not None and spec.epochs is not None:
        raise GanbenchError(
            f"Give the budget once: --steps {steps} or --epochs {spec.epochs}, not both"
        )
    if spec.epochs is not None:  # checked here: the filled spec holds steps instead
        check_positive("--epochs", spec.epochs)
    if steps is None and spec.epochs is not None and batch_size > 0:
        dataset.load(spec.data_dir)
        steps = max(1, round(spec.epochs * len(dataset) / batch_size))
    if steps is None:
        steps = default_steps(pair.default_steps or dataset.default_steps, pair, spec.losses)
    ema_decay = spec.ema_decay
    if ema_decay is None:
        default = DEFAULT_EMA_DECAY if pair.ema_decay is None else pair.ema_decay
        ema_decay = float(default)
    reuse_fake = spec.reuse_fake
    if reuse_fake is None:
        reuse_fake = bool(pair.reuse_fake)
    eval_every = spec.eval_every
    if eval_every is None:
        eval_every = auto_eval_every(steps, spec.log_every) if spec.eval.fid_samples else 0
    threads = spec.threads if spec.threads is not None else default_threads(spec.launch)
    defaults = chosen_defaults(spec, pair)
    step_unit = spec.step_unit
    if step_unit is None and defaults == "tuned" and pair.tuned_by:
        # the tuned settings were found at a budget counted in this unit (n_critic trades G
        # updates for D updates there): counting --steps otherwise would change their budget
        step_unit = pair.tuned_step_unit or None
    precision = spec.precision
    if precision == "auto":
        if device is None:
            device = cell_device(spec, check_available=False)
        precision = auto_precision(dataset, device, generator)[0]
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
        step_unit=step_unit or "generator",
        threads=threads,
        defaults=defaults,
    )


def chosen_defaults(spec: RunSpec, pair: PairDefaults) -> str:
    """Where ``spec``'s losses start (``--defaults``): as given, else ``tuned`` on a pair that a
    committed study tuned (the default MNIST pair: equally tuned objectives out of the box) and
    ``pair`` on any other (there the two are the same settings, and ``pair`` keeps the hashes)."""
    return spec.defaults or ("tuned" if pair.tuned_by else "pair")


def default_threads(launch: LaunchOptions) -> int:
    """A cell's torch threads where ``--threads`` is not given: ``--cpus-per-cell`` (rounded
    down), else 1 on Ray, cores / ``--jobs`` for a local pool, torch's default for one local
    cell. ``--jobs`` changes it, so cells of different ``--jobs`` are different cells."""
    if launch.cpus_per_cell is not None:
        return max(1, math.floor(launch.cpus_per_cell))
    if launch.launcher == "ray":
        return 1
    if launch.jobs > 1:
        return max(1, (os.cpu_count() or 1) // launch.jobs)
    return torch.get_num_threads()


def cell_threads(spec: RunSpec) -> int | None:
    """The torch threads a cell of ``spec`` trains and is scored with on the CPU: its pair's
    ``cpu_threads`` where the pair fixes one (tiny 2-D models), else ``spec.threads``."""
    return generator_defaults(spec.generator).cpu_threads or spec.threads


BUDGET_KEYS = ("generator", "steps", "epochs", "batch_size")


def named_budget(dataset: Dataset, name: str | None, dataset_name: str) -> dict[str, Any]:
    """The run options of the dataset's budget ``name`` (:attr:`Dataset.budgets`); ``{}`` for
    None or ``"default"``. An unknown name is one line naming the valid ones."""
    budgets = dict(getattr(dataset, "budgets", {}) or {})
    if name is None or name == "default":
        return {}
    if name not in budgets:
        valid = ", ".join(["default", *budgets])
        raise GanbenchError(
            f"Unknown --budget {name!r} for {dataset_name}. Available: {valid}."
            + did_you_mean(name, budgets)
        )
    preset = dict(budgets[name])
    unknown = sorted(set(preset) - set(BUDGET_KEYS))
    if unknown:  # a plugin's mistake, said once, plainly
        raise GanbenchError(
            f"{dataset_name}'s budget {name!r} sets {', '.join(unknown)}; a budget sets only "
            + ", ".join(BUDGET_KEYS)
        )
    return preset


def with_budget(spec: RunSpec, dataset: Dataset) -> RunSpec:
    """``spec`` with its named budget's options filled in where the command line gave none:
    the budget's model pair, step count (or epochs) and batch size. ``--steps`` or ``--epochs``
    replaces the budget's length as a whole; ``--generator`` its pair."""
    preset = named_budget(dataset, spec.budget, spec.dataset)
    fills: dict[str, Any] = {}
    if spec.generator is None and "generator" in preset:
        fills["generator"] = preset["generator"]
    if spec.steps is None and spec.epochs is None:
        for key in ("steps", "epochs"):
            if key in preset:
                fills[key] = preset[key]
    if spec.batch_size is None and "batch_size" in preset:
        fills["batch_size"] = preset["batch_size"]
    return dataclasses.replace(spec, **fills) if fills else spec


def auto_eval_every(steps: Any, log_every: Any) -> int:
    """Steps between :data:`~ganbench.spec.CURVE_POINTS` curve points, a multiple of
    ``log_every`` (so each point has its wall time and FLOPs logged at the same step); 0 for
    budgets it cannot split."""
    try:
        per = max(1, int(log_every)) * max(1, round(int(steps) / CURVE_POINTS / int(log_every)))
    except (TypeError, ValueError, ZeroDivisionError):
        return 0
    return per if 0 < per <= int(steps) else 0


def generator_defaults(generator: str) -> PairDefaults:
    """What generator ``generator``'s class recommends for its pair (read from the class)."""
    try:
        return pair_defaults(model_class(registry.get_generator(generator).factory))
    except Exception:  # unknown or broken generator: validation says so, one line
        return PairDefaults()


def default_steps(base_steps: int, pair: PairDefaults, losses: tuple[str, ...]) -> int:
    """The step budget of a run without ``--steps``: the pair's (else the dataset's), or more
    where the pair says (``loss_steps``) that one of the run's objectives needs more. Every cell
    of a run gets the same budget, so the objectives are compared on equal terms."""
    wanted = pair.loss_steps
    return max([int(base_steps), *(int(wanted[name]) for name in losses if name in wanted)])


# -- hyperparameters ------------------------------------------------------------------------------


HP_FIELDS = ("optimizer_g", "optimizer_d", "lr_g", "lr_d", "beta1", "beta2", "n_critic")


def hyperparams_for(
    loss: registry.Entry, generator: type | torch.nn.Module, spec: RunSpec
) -> Hyperparams:
    """The loss's paper defaults, then the model pair's defaults for it (and the tuned ones under
    ``--defaults tuned``), then the CLI's (:func:`sourced_hyperparams` says which value came from
    where)."""
    return sourced_hyperparams(loss, generator, spec)[0]


def tuned_source(pair: PairDefaults) -> str:
    """The ``hp_sources`` label of a value ``--defaults tuned`` took from ``pair``'s study."""
    return f"study {pair.tuned_by}"


def untuned(sources: Mapping[str, str], generator: str, spec: RunSpec) -> bool:
    """Whether a cell whose values came from ``sources`` (:func:`sourced_hyperparams`) runs
    untuned in a run that asked for tuned defaults: its pair has a tuning study, and none of its
    values came from that study or a search (a new plugin's loss, or one the study has not
    reached: it trains with the pair's defaults). A pair without a study singles out no loss."""
    pair = generator_defaults(generator)
    if not pair.tuned_by or chosen_defaults(spec, pair) != "tuned":
        return False
    return not any(s == "search" or s.startswith("study ") for s in sources.values())


def tune_command(loss: str, generator: str, spec: RunSpec) -> str:
    """The one-line note for an untuned loss: the command that tunes it on the study's terms."""
    study = generator_defaults(generator).tuned_by
    return (
        f"{loss}: not tuned by {study} on {generator}, so it trains with the pair's defaults; "
        f"tune it on the same terms (in a checkout of the repository): `ganbench search --config "
        f"{study}/study.toml --loss {loss} --baseline {study} --out {loss}-vs-study`"
    )


def sourced_hyperparams(
    loss: registry.Entry,
    generator: type | torch.nn.Module,
    spec: RunSpec,
    drawn: Mapping[str, Any] | None = None,
) -> tuple[Hyperparams, dict[str, str]]:
    """A loss's hyperparameters on a pair, and where each came from: ``loss`` (its paper's
    defaults), ``pair`` (the pair's ``loss_hyperparams``, :func:`pair_layers`; not under
    ``--defaults paper``), ``study <folder>`` (under ``--defaults tuned``: the best setting the
    pair's committed study found for this loss, :func:`tuned_source`), ``search`` (a draw of
    ``ganbench search``, ``drawn``) or ``command line`` (``spec.overrides``), each layer over
    the one before.

    ``--loss-param`` keys reach only the losses that declare them (in their defaults' extras):
    ``--loss wgan --loss minimax --loss-param clip=0.02`` changes WGAN's clip, and minimax, which
    has none, trains as it would without it (:func:`check_loss_params` rejects keys no loss of the
    run declares)."""
    hp = model_class(loss.factory).defaults
    sources = {key: "loss" for key in (*HP_FIELDS, *dict(hp.extras))}
    layers: list[tuple[Mapping[str, Any], str]] = []
    pair = pair_defaults(generator)
    defaults = chosen_defaults(spec, pair)
    if defaults != "paper":
        layers += [(values, "pair") for values in pair_layers(loss, generator)]
    if defaults == "tuned" and loss.name in pair.tuned_hyperparams:
        layers.append((pair.tuned_hyperparams[loss.name], tuned_source(pair)))
    layers += [(drawn or {}, "search"), (spec.overrides, "command line")]
    for values, source in layers:
        values = dict(values)
        extras = {k: v for k, v in dict(values.pop("extras", None) or {}).items() if k in hp.extras}
        hp = hp.replace(**values, extras=extras)
        sources.update({key: source for key in (*values, *extras)})
    return hp, sources


def pair_layers(loss: registry.Entry, generator: type | torch.nn.Module) -> list[dict[str, Any]]:
    """The entries of the pair's ``loss_hyperparams`` that apply to ``loss``, least specific
    first: ``"*"`` (every loss), ``"optimizer:<name>"`` (every loss whose default optimiser is
    ``<name>``: how a pair tunes plugin losses it has never heard of, on equal terms with the
    built-ins), then the loss's own name."""
    table = pair_defaults(generator).loss_hyperparams
    optimizer = model_class(loss.factory).defaults.optimizer_d
    keys = ("*", f"optimizer:{optimizer}", loss.name)
    return [dict(table[key]) for key in keys if key in table]


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
    loss: registry.Entry,
    generator: type | torch.nn.Module,
    spec: RunSpec,
    drawn: Mapping[str, Any] | None = None,
) -> tuple[Hyperparams, dict[str, str]]:
    """:func:`sourced_hyperparams`, as a one-line :class:`GanbenchError` naming the loss and its
    provider when the loss cannot be built or its values are invalid (before any training)."""
    where = f"Loss {loss.name!r} (from {loss.provider})"
    try:
        hp, sources = sourced_hyperparams(loss, generator, spec, drawn)
    except Exception as exc:
        raise GanbenchError(f"{where} cannot be built: {describe(exc)}") from None
    problems = hp.problems()
    if problems:
        raise GanbenchError(f"{where} has invalid hyperparameters: {'; '.join(problems)}")
    return hp, sources


def declared_extras(loss: registry.Entry) -> tuple[str, ...]:
    """The extras keys ``loss`` declares: its ``defaults.extras``' (what ``--loss-param`` and a
    pair's extras may set; :func:`sourced_hyperparams` drops any other)."""
    try:
        return tuple(dict(model_class(loss.factory).defaults.extras))
    except Exception:  # a broken loss: checked_hyperparams says so, in one line
        return ()
