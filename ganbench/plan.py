"""The plan of a run: fill a :class:`~ganbench.spec.RunSpec`'s defaults, check it, resolve every
name once into registry entries, the device once, the dataset once, and build the cells and
evaluators. Everything after this (launchers, execute, trainer, scoring) gets the
:class:`Prepared` plan and looks nothing up again."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ganbench import registry
from ganbench.datasets import Dataset, Evaluator
from ganbench.defaults import check_loss_params, checked_hyperparams, declared_extras, with_defaults
from ganbench.devices import cell_device
from ganbench.dry_run import dry_run
from ganbench.errors import GanbenchError
from ganbench.models import model_class
from ganbench.spec import Cell, RunSpec
from ganbench.validation import validate


@dataclass
class Prepared:
    """What a process needs to run the cells of one spec; built once per process (the driver,
    or a worker of :mod:`ganbench.launchers`)."""

    spec: RunSpec  # defaults filled
    device: torch.device  # where the cells train (in their config_hash)
    dataset: Dataset  # loaded
    cells: list[Cell]
    evaluator: Evaluator | None
    curve_evaluator: Evaluator | None


def prepare(spec: RunSpec, check: bool = True) -> Prepared:
    """Fill defaults, load the dataset, build the cells and evaluators.

    ``check`` (the driver): validate everything before any training, and make sure a GPU the
    cells train on is here. A worker passes False: the driver checked, and what is left to fail
    (a plugin missing on a Ray node, no GPU) fails its cells, not the sweep.
    """
    device = cell_device(spec, check_available=not check or spec.launch.launcher != "ray")
    dataset: Dataset = registry.get_dataset(spec.dataset).factory()
    spec = with_defaults(spec, dataset, device)
    if check:
        validate(spec, dataset)
    dataset.load(spec.data_dir)
    spec = dataclasses.replace(spec, data_id=str(getattr(dataset, "data_id", "") or ""))
    losses = {name: registry.get_loss(name) for name in spec.losses}  # each name looked up once
    if check:
        if spec.batch_size > len(dataset):
            raise GanbenchError(
                f"--batch-size {spec.batch_size} is larger than dataset {spec.dataset!r} "
                f"({len(dataset)} samples)"
            )
        dry_run(spec, dataset, losses)  # first: it names a plugin whose factory raises
    generator = model_class(registry.get_generator(spec.generator).factory)
    if check:
        check_loss_params(spec, {n: declared_extras(e) for n, e in losses.items()})
    hps = {name: checked_hyperparams(entry, generator, spec) for name, entry in losses.items()}
    cells = [Cell(losses[name], seed, *hps[name]) for name in spec.losses for seed in spec.seeds]
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
