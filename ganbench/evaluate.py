"""``ganbench evaluate`` and ``ganbench sample``: score or export the saved generators of finished
cells (:mod:`ganbench.generator_files`) without retraining.

evaluate
    Regenerates each cell's evaluation samples from its fixed noise and scores them with the
    dataset's evaluator, for G and EMA-G. With the settings the cell was scored with (its row's
    ``backbone`` and ``fid_samples``, KID's subsets), the values go into the row's own columns,
    so an old row gains the metrics added since (KID, precision/recall, density/coverage) and its
    FID is reproduced exactly. With other settings they go into columns tagged with them,
    ``<metric>@<backbone>-<n>`` (e.g. ``fid@inception-10000``, ``fid_ema@inception-10000``), so
    every value says which backbone and how many samples it rests on. runs.csv is rewritten under
    the results lock, atomically, from a fresh read (no other row or column is lost), and
    summary.csv and comparisons.csv are rebuilt.

sample
    Writes N samples of one cell in the dataset's units (images in [0, 1], shape
    ``(N, C, H, W)``), from the cell's evaluation noise (so the first ``fid_samples`` are the
    ones it was scored on) or ``--seed``: an ``.npz`` holding one array ``samples``, or a folder
    of PNGs, for external evaluators (clean-fid, torch-fidelity).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganbench import generator_files, registry
from ganbench import results as R
from ganbench.datasets import Dataset, EvalOptions, Evaluator, unknown_backbone_error
from ganbench.devices import resolve_device
from ganbench.errors import GanbenchError, describe
from ganbench.files import atomic_write_with
from ganbench.scoring import scored_metrics
from ganbench.tables import REFERENCE_LOSS, Tables, latest_attempts, write_tables
from ganbench.trainer import generate
from ganbench.validation import days_warnings

# how a value was computed: compared with the row's to decide plain or tagged columns
SETTINGS = ("backbone", "fid_samples", "kid_subsets", "kid_subset_size")


@dataclass(frozen=True)
class EvaluateSpec:
    """What ``ganbench evaluate`` was asked to do; ``None``: each cell's own setting."""

    out: Path
    run_ids: tuple[str, ...] = ()  # () : every finished (ok) cell
    backbone: str | None = None
    fid_samples: int | None = None
    inception_weights: Path | None = None
    kid_subsets: int | None = None
    kid_subset_size: int | None = None
    device: str = "auto"
    data_dir: Path | None = None


@dataclass(frozen=True)
class Evaluated:
    tables: Tables
    scored: tuple[str, ...]  # run ids evaluated
    missing: tuple[str, ...]  # run ids with no saved generator
    failed: tuple[str, ...] = ()  # run ids whose generator could not be rebuilt or scored


def _runs(out: Path) -> pd.DataFrame:
    if not (out / R.RUNS).is_file():
        raise GanbenchError(f"No {R.RUNS} in {str(out)!r}: give the --out of a ganbench run")
    R.check_runs_format(out)
    return R.read_csv(out / R.RUNS)


def _pick(runs: pd.DataFrame, run_ids: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows to evaluate: ``run_ids`` (each must be an ok row), else every latest ok row."""
    if not run_ids:
        latest = latest_attempts(runs)
        return latest[latest["status"] == "ok"].to_dict("records")
    by_id = {str(r["run_id"]): r for r in runs.to_dict("records")}
    rows = []
    for run_id in run_ids:
        if run_id not in by_id:
            known = ", ".join(list(by_id)[-5:])
            raise GanbenchError(f"Unknown --run-id {run_id!r}. Latest runs: {known}")
        if by_id[run_id]["status"] != "ok":
            raise GanbenchError(
                f"Run {run_id!r} has status {by_id[run_id]['status']!r}: only ok runs have "
                "generators to score"
            )
        rows.append(by_id[run_id])
    return rows


def _recorded(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _options(spec: EvaluateSpec, row: dict[str, Any], device: torch.device) -> EvalOptions:
    default = EvalOptions()
    backbone = spec.backbone or (row.get("backbone") if _recorded(row.get("backbone")) else None)
    n = spec.fid_samples or (
        int(row["fid_samples"]) if _recorded(row.get("fid_samples")) else default.fid_samples
    )
    kid = {}
    for key in ("kid_subsets", "kid_subset_size"):
        given, recorded = getattr(spec, key), row.get(key)
        kid[key] = given or (int(recorded) if _recorded(recorded) else getattr(default, key))
    # a dataset scored by modes rescores on the samples its row counted (--mode-samples)
    modes = int(row["eval_samples"]) if _recorded(row.get("eval_samples")) else None
    return EvalOptions(
        backbone=backbone or default.backbone,
        fid_samples=n,
        mode_samples=modes,
        device=str(device),
        inception_weights=spec.inception_weights,
        **kid,
    )


def tag(scores: dict[str, Any], row: dict[str, Any]) -> str:
    """``""`` when ``scores`` were computed as ``row``'s were (its recorded settings), else the
    ``@<backbone>-<n>`` their columns are named with (``-kid<subsets>x<size>`` added when KID's
    settings differ from the row's)."""
    differs = [
        k
        for k in SETTINGS
        if k in scores and _recorded(row.get(k)) and str(scores[k]) != str(_as_int(row[k]))
    ]
    if not differs:
        return ""
    label = f"@{scores.get('backbone', 'eval')}-{scores.get('fid_samples', '')}"
    if {"kid_subsets", "kid_subset_size"} & set(differs):
        label += f"-kid{scores['kid_subsets']}x{scores['kid_subset_size']}"
    return label


def _as_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def score_record(
    record: dict[str, Any], evaluator: Evaluator, device: torch.device
) -> list[tuple[str, dict[str, Any], list[str]]]:
    """``(suffix, scores, metric names)`` of each saved generator, scored as the runner scores
    a cell (the same evaluation noise and sample count)."""
    out = []
    for G, suffix in generator_files.build(record, device):
        samples = generate(G, evaluator.n_samples, int(record["noise"]["eval"]), device)
        scores = evaluator.score(samples)
        out.append((suffix, scores, scored_metrics(evaluator, scores, suffix)))
    return out


def check_backbone_registered(name: str) -> None:
    """Fail before any work on a ``--backbone`` no registered dataset's evaluator accepts (the
    union of their :attr:`Dataset.backbones <ganbench.datasets.Dataset.backbones>`)."""
    known = sorted(
        {b for entry in registry.entries("dataset").values() for b in _backbones_of(entry.factory)}
    )
    if name not in known:
        raise unknown_backbone_error(name, known)


def _backbones_of(factory: Callable[[], Dataset]) -> tuple[str, ...]:
    backbones = getattr(factory, "backbones", ())  # a class attribute of the registered class
    return tuple(backbones) if isinstance(backbones, (tuple, list)) else ()


def evaluate(spec: EvaluateSpec, log: Callable[[str], None]) -> Evaluated:
    """Score the saved generators of ``spec.out``'s cells; update runs.csv and the tables."""
    if spec.fid_samples is not None and spec.fid_samples < 2:
        raise GanbenchError(f"--fid-samples must be at least 2, got {spec.fid_samples}")
    for name in ("kid_subsets", "kid_subset_size"):
        value = getattr(spec, name)
        if value is not None and value < 1:
            raise GanbenchError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if spec.backbone is not None:
        check_backbone_registered(spec.backbone)
    for line in days_warnings(0, spec.fid_samples or 0):
        log(line)
    device = resolve_device(spec.device)
    rows = _pick(_runs(spec.out), spec.run_ids)
    datasets: dict[str, Dataset] = {}
    evaluators: dict[tuple[str, EvalOptions], Evaluator | None] = {}
    updates: dict[str, dict[str, Any]] = {}
    references = []
    missing: list[str] = []
    failed: list[str] = []
    for i, row in enumerate(rows, 1):
        run_id = str(row["run_id"])
        try:
            record = generator_files.find(spec.out, row)
        except GanbenchError as exc:  # a damaged generator file fails its cell alone
            log(f"[{i}/{len(rows)}] {run_id}: failed: {exc}")
            failed.append(run_id)
            continue
        if record is None:
            log(f"[{i}/{len(rows)}] {run_id}: no saved generator (trained with "
                "--no-keep-generators, or its files were removed); skipped")  # fmt: skip
            missing.append(run_id)
            continue
        name = str(row["dataset"])
        if name not in datasets:
            datasets[name] = registry.get_dataset(name).factory()
            datasets[name].load(spec.data_dir)
        options = _options(spec, row, device)
        if (name, options) not in evaluators:
            evaluators[name, options] = datasets[name].make_evaluator(options)
        evaluator = evaluators[name, options]
        if evaluator is None:
            raise GanbenchError(f"Dataset {name!r} has no evaluator: nothing to score")
        values: dict[str, Any] = {}
        metrics: list[str] = []
        label = ""
        try:  # a cell whose generator cannot be rebuilt or scored fails alone
            scored = score_record(record, evaluator, device)
        except GanbenchError as exc:
            log(f"[{i}/{len(rows)}] {run_id}: failed: {exc}")
            failed.append(run_id)
            continue
        except Exception as exc:
            log(f"[{i}/{len(rows)}] {run_id}: failed: {describe(exc)}")
            failed.append(run_id)
            continue
        for suffix, scores, names in scored:
            if not suffix:
                label = tag(scores, row)
                if not label:  # how they were computed: the row's own columns
                    values.update({k: v for k, v in scores.items() if k not in names})
            values.update({f"{m}{suffix}{label}": scores[m] for m in names})
            metrics += [f"{m}{suffix}{label}" for m in names]
        updates[run_id] = {"values": values, "metrics": metrics}
        fid, was = values.get(f"fid{label}"), row.get(f"fid{label}")
        said = f"fid{label} {fid:.6g}" if isinstance(fid, float) else "scored"
        if isinstance(fid, float) and isinstance(was, float) and math.isfinite(was):
            said += f" (runs.csv had {was:.6g})"
        log(f"[{i}/{len(rows)}] {run_id}: {said}, from {record['source']}")
        if not label:
            references.append({"loss": REFERENCE_LOSS, "dataset": name, **evaluator.reference()})
    with R.lock(spec.out):
        R.check_runs_format(spec.out)
        runs = R.read_csv(spec.out / R.RUNS)  # fresh: rows another process wrote meanwhile stay
        runs = apply_updates(runs, updates)
        R.write_csv(spec.out / R.RUNS, runs)
        reference = pd.DataFrame(references).drop_duplicates() if references else None
        if reference is not None and "metrics" not in reference:
            reference.insert(2, "metrics", " ".join(_reference_metrics(evaluators, reference)))
        tables = write_tables(spec.out, reference)
    return Evaluated(tables, tuple(updates), tuple(missing), tuple(failed))


def _reference_metrics(evaluators: dict, reference: pd.DataFrame) -> list[str]:
    names: list[str] = []
    for evaluator in evaluators.values():
        if evaluator is not None:
            names += [m for m in getattr(evaluator, "metrics", ()) if m in reference]
    return list(dict.fromkeys(names))


def apply_updates(runs: pd.DataFrame, updates: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """``runs`` with each updated run's values set (new columns added, every other cell kept) and
    its ``metrics`` list extended by the metrics it gained."""
    runs = runs.copy()
    for run_id, update in updates.items():
        at = runs["run_id"].astype(str) == run_id
        for column, value in update["values"].items():
            if column not in runs:
                runs[column] = pd.Series([None] * len(runs), index=runs.index, dtype=object)
            try:
                runs.loc[at, column] = value
            except (TypeError, ValueError):  # e.g. a number into a column read as text
                runs[column] = runs[column].astype(object)
                runs.loc[at, column] = value
        if "metrics" in runs:
            for index in runs.index[at]:
                old = str(runs.at[index, "metrics"]) if _recorded(runs.at[index, "metrics"]) else ""
                names = list(dict.fromkeys(old.split() + update["metrics"]))
                runs.at[index, "metrics"] = " ".join(names)
    return runs.infer_objects()


# ---- sample ------------------------------------------------------------------------------------

FORMATS = ("npz", "png")


@dataclass(frozen=True)
class SampleSpec:
    out: Path
    run_id: str
    n: int
    to: Path
    format: str = "npz"
    ema: bool = False  # the EMA generator's samples instead of G's
    seed: int | None = None  # None: the cell's evaluation noise
    device: str = "auto"


def sample(spec: SampleSpec, log: Callable[[str], None]) -> Path:
    """Write ``spec.n`` samples of one cell to ``spec.to``; return the path written."""
    if spec.format not in FORMATS:
        raise GanbenchError(f"Unknown --format {spec.format!r}. Available: {', '.join(FORMATS)}")
    if spec.n < 1:
        raise GanbenchError(f"-n must be at least 1, got {spec.n}")
    if spec.to.exists():
        raise GanbenchError(
            f"--to {str(spec.to)!r} exists; choose a new path (nothing is overwritten)"
        )
    device = resolve_device(spec.device)
    (row,) = _pick(_runs(spec.out), (spec.run_id,))
    record = generator_files.find(spec.out, row)
    if record is None:
        raise GanbenchError(
            f"Run {spec.run_id!r} has no saved generator in {str(spec.out)!r} (trained with "
            "--no-keep-generators, or its files were removed)"
        )
    models = dict((suffix, G) for G, suffix in generator_files.build(record, device))
    suffix = "_ema" if spec.ema else ""
    if suffix not in models:
        raise GanbenchError(f"Run {spec.run_id!r} has no EMA generator (it trained without one)")
    G = models[suffix]
    seed = int(record["noise"]["eval"]) if spec.seed is None else spec.seed
    samples = generate(G, spec.n, seed, device)
    dataset = registry.get_dataset(str(row["dataset"])).factory()
    if tuple(samples.shape[1:]) != tuple(dataset.sample_shape):
        raise GanbenchError(
            f"Run {spec.run_id!r}'s generator makes shape {tuple(samples.shape[1:])}, not the "
            f"dataset's {tuple(dataset.sample_shape)}"
        )
    if spec.format == "npz":
        write_npz(spec.to, samples)
    else:
        if dataset.value_range is None or samples.ndim != 4:
            raise GanbenchError(
                f"--format png needs image samples; dataset {row['dataset']!r} has samples of "
                f"shape {tuple(dataset.sample_shape)}: use --format npz"
            )
        write_pngs(spec.to, samples)
    log(
        f"wrote {spec.n} samples of {spec.run_id}{' (EMA-G)' if spec.ema else ''}, seed {seed}, "
        f"shape {tuple(samples.shape)}, to {spec.to}"
    )
    return spec.to


def write_npz(path: Path, samples: torch.Tensor) -> None:
    """One array ``samples`` (float32, the dataset's units), written atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name
            np.savez(f, samples=samples.numpy().astype(np.float32))

    atomic_write_with(path, write)


def write_pngs(folder: Path, samples: torch.Tensor) -> None:
    """``000000.png``, ... (8-bit, grey or RGB) in a new folder, which appears whole or not at
    all (written in a temp folder beside it, then renamed)."""
    from PIL import Image

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        pixels = (samples.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        width = max(6, len(str(len(pixels) - 1)))
        for i, image in enumerate(pixels):  # (H, W) uint8: grey; (H, W, 3): RGB
            Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(
                tmp / f"{i:0{width}d}.png"
            )
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
