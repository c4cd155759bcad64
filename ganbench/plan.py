"""The plan of a run: fill a :class:`~ganbench.spec.RunSpec`'s defaults, check it, resolve every
name once into registry entries, the device once, the dataset once, and build the cells and
evaluators. Everything after this (launchers, execute, trainer, scoring) gets the
:class:`Prepared` plan and looks nothing up again."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ganbench import registry
from ganbench.datasets import Dataset, Evaluator
from ganbench.defaults import (
    check_loss_params,
    checked_hyperparams,
    declared_extras,
    generator_defaults,
    with_defaults,
)
from ganbench.devices import auto_precision, cell_device
from ganbench.dry_run import dry_run
from ganbench.errors import GanbenchError
from ganbench.identity import cell_config, hashes_of
from ganbench.models import PairDefaults, model_class
from ganbench.registry import Entry
from ganbench.spec import Cell, RunSpec
from ganbench.validation import validate


@dataclass(frozen=True)
class Prepared:
    """What a process needs to run the cells of one spec; built once per process (the driver,
    or a worker of :mod:`ganbench.launchers`). Its cells carry their identity for its spec
    (:func:`identified`); another spec or other cells make another plan (:func:`replan`), never
    an edited one, so no cell keeps the identity of a spec it does not run under."""

    spec: RunSpec  # defaults filled
    device: torch.device  # where the cells train (in their config_hash)
    dataset: Dataset  # loaded
    cells: list[Cell]
    evaluator: Evaluator | None
    curve_evaluator: Evaluator | None
    pair: PairDefaults  # what the generator's class recommends for its pair, read once
    precision_reason: str = ""  # why --precision auto chose spec.precision ("": it was asked)
    generator_bytes: int = 0  # one generator's state, from the dry run (0 in a worker)


def prepare(spec: RunSpec, check: bool = True) -> Prepared:
    """Fill defaults, load the dataset, build the cells and evaluators.

    ``check`` (the driver): validate everything before any training, make sure a GPU the cells
    train on is here, resolve the cells. A worker passes False: the driver checked, and what is
    left to fail (a plugin missing on a Ray node, no GPU) fails its cells, not the sweep; it
    plans no cells (the driver's arrive pickled, with their identity).
    """
    device = cell_device(spec, check_available=not check or spec.launch.launcher != "ray")
    dataset: Dataset = registry.get_dataset(spec.dataset).factory()
    asked_precision = spec.precision
    spec = with_defaults(spec, dataset, device)
    if check:
        validate(spec, dataset)
    dataset.load(spec.data_dir)
    spec = dataclasses.replace(spec, data_id=str(getattr(dataset, "data_id", "") or ""))
    losses = {name: registry.get_loss(name) for name in spec.losses}  # each name looked up once
    cells: list[Cell] = []  # a worker's: the driver's cells reach it with their identity
    generator_bytes = 0
    if check:
        if spec.batch_size > len(dataset):
            raise GanbenchError(
                f"--batch-size {spec.batch_size} is larger than dataset {spec.dataset!r} "
                f"({len(dataset)} samples)"
            )
        # first: it names a plugin whose factory raises; it resolves each loss's
        # hyperparameters (loss, pair, command line), once
        dry = dry_run(spec, dataset, losses)
        hps, generator_bytes = dry.hyperparams, dry.generator_bytes
        check_loss_params(spec, {n: declared_extras(e) for n, e in losses.items()})
        cells = [Cell(losses[n], seed, *hps[n]) for n in spec.losses for seed in spec.seeds]
        cells = identified(cells, spec, device)
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
    pair = generator_defaults(spec.generator)
    why = auto_precision(dataset, device, spec.generator)[1] if asked_precision == "auto" else ""
    return Prepared(
        spec, device, dataset, cells, evaluator, curve_evaluator, pair, why, generator_bytes
    )


def identified(cells: Iterable[Cell], spec: RunSpec, device: torch.device) -> list[Cell]:
    """``cells`` with their identity under ``spec`` on ``device``: ``config`` (what decides
    their results), ``config_hash`` and ``setup`` (:mod:`ganbench.identity`). The one place
    where a cell's identity is worked out."""
    out = []
    for cell in cells:
        config = cell_config(cell, spec, device)
        chash, setup = hashes_of(config)
        out.append(dataclasses.replace(cell, config=config, config_hash=chash, setup=setup))
    return out


def replan(prep: Prepared, *, spec: RunSpec | None = None, cells: Iterable[Cell] | None = None):
    """``prep`` with another spec (e.g. a search rung's budget) and/or other cells, every cell
    identified under the spec it now runs under; the dataset and evaluators are kept."""
    spec = spec if spec is not None else prep.spec
    cells = list(cells) if cells is not None else prep.cells
    return dataclasses.replace(prep, spec=spec, cells=identified(cells, spec, prep.device))


def drawn_cells(
    prep: Prepared, seed: int, draws: Iterable[tuple[Entry, Mapping[str, Any], Mapping[str, Any]]]
) -> list[Cell]:
    """A search's cells at ``seed``, one per ``(loss entry, drawn values, tags)``: each loss's
    hyperparameters resolved with the draw (between the pair's and the command line's, which
    win), and identified under ``prep``'s spec."""
    generator = model_class(registry.get_generator(prep.spec.generator).factory)
    cells = []
    for entry, drawn, tags in draws:
        hp, sources = checked_hyperparams(entry, generator, prep.spec, drawn)
        cells.append(Cell(entry, seed, hp, sources, tags))
    return identified(cells, prep.spec, prep.device)
