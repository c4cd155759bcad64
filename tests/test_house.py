"""The layout's promises: no import circle inside ganbench, small modules, config hashes that
committed results resume with, and the public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import ganbench
from ganbench import registry
from ganbench.defaults import checked_hyperparams, with_defaults
from ganbench.identity import cell_hashes
from ganbench.models import model_class
from ganbench.spec import Cell, RunSpec

PACKAGE = Path(ganbench.__file__).parent
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """The ganbench modules ``path`` imports anywhere (function-level imports too), skipping
    ``if TYPE_CHECKING:`` blocks, which never run."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ganbench"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "ganbench":
                continue
            for alias in node.names:  # `from ganbench import registry` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found & set(MODULES)


def test_no_import_circle_inside_ganbench():
    graph = {name: imported_modules(path) - {name} for name, path in MODULES.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                circle = trail[trail.index(dep) :] + [dep] if dep in trail else [name, dep]
                pytest.fail(f"import circle: {' -> '.join(circle)}")
            if dep not in state:
                visit(dep, [*trail, dep])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_the_package_init_imports_nothing_eagerly():
    assert imported_modules(PACKAGE / "__init__.py") == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by responsibility"


def test_launchers_never_import_the_runner():
    assert "ganbench.runner" not in imported_modules(MODULES["ganbench.launchers"])
    assert "ganbench.runner" not in imported_modules(MODULES["ganbench.execute"])


def test_the_core_reaches_the_mnist_stack_only_through_plugins():
    core = [n for n in MODULES if not n.startswith("ganbench.default_plugins")]
    for name in core:
        mnist = {m for m in imported_modules(MODULES[name]) if ".mnist" in m}
        assert not mnist, f"{name} imports {mnist}"


def called_functions(path: Path) -> set[str]:
    """The names of the functions ``path`` calls (``f(...)`` and ``module.f(...)``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_a_cells_identity_is_worked_out_only_by_the_plan():
    """One resolved plan: ``ganbench.plan.identified`` gives each cell its config, hash and
    setup; every other module reads them from the cell (issue: one resolved plan)."""
    identity = {"cell_config", "cell_hashes", "hashes_of"}
    callers = {name for name, path in MODULES.items() if called_functions(path) & identity}
    assert callers <= {"ganbench.plan", "ganbench.identity"}, callers
    assert "ganbench.plan" in callers


def test_hyperparameters_are_resolved_only_by_the_plan():
    """Each loss's hyperparameters (paper, pair, search draw, command line) are resolved in the
    plan stage: ``plan`` (a search's draws through ``plan.drawn_cells``) and the dry run it
    calls, which checks each loss with the values it then hands the plan."""
    resolvers = {"checked_hyperparams", "sourced_hyperparams", "hyperparams_for"}
    callers = {name for name, path in MODULES.items() if called_functions(path) & resolvers}
    assert callers <= {"ganbench.plan", "ganbench.dry_run", "ganbench.defaults"}, callers


def test_the_pair_defaults_are_read_only_while_planning():
    """The pair's recommendations are read by the plan stage (plan, the defaults it applies,
    the identity it computes) and kept on the plan (``Prepared.pair``); the trainer's public
    ``train`` reads the thread cap itself, for callers without a plan."""
    readers = {"pair_defaults", "generator_defaults"}
    callers = {name for name, path in MODULES.items() if called_functions(path) & readers}
    assert callers <= {
        "ganbench.plan",
        "ganbench.defaults",
        "ganbench.identity",
        "ganbench.trainer",
    }, callers


LITE = {"generator": "dcgan-lite"}


def _hashes(loss: str, seed: int, **spec_fields) -> tuple[str, str]:
    spec = with_defaults(RunSpec(losses=(loss,), device="cpu", **spec_fields))
    entry = registry.get_loss(loss)
    generator = model_class(registry.get_generator(spec.generator).factory)
    cell = Cell(entry, seed, *checked_hyperparams(entry, generator, spec))
    return cell_hashes(cell, spec, torch.device("cpu"))


@pytest.mark.parametrize(
    "loss, seed, fields, expected",
    [
        # results/comparison-lite/runs.csv (scripts/comparison_lite.sh; fp32 on that CPU)
        # (the default pair then, named since the default is dcgan-lite-dense)
        ("minimax", 0, {"precision": "fp32", **LITE}, ("cea95d69ec80", "8ff930261cb6")),
        ("wgan", 0, {"precision": "fp32", **LITE}, ("c43e21d1e5bb", "48ff423663ff")),
        # `ganbench run --dataset ring8 --loss minimax --seeds 2 --steps 40`, before the split
        ("minimax", 0, {"dataset": "ring8", "steps": 40}, ("da5d277ec386", "a6cbc6c8515e")),
    ],
)
def test_config_hashes_are_the_ones_committed_results_carry(loss, seed, fields, expected):
    assert _hashes(loss, seed, **fields) == expected


def test_the_public_api():
    from ganbench import Dataset, Hyperparams, Loss, RunSpec, hookimpl, run
    from ganbench.datasets import Dataset as Dataset_
    from ganbench.hookspecs import hookimpl as hookimpl_
    from ganbench.losses import Hyperparams as Hyperparams_
    from ganbench.losses import Loss as Loss_
    from ganbench.runner import run as run_
    from ganbench.spec import RunSpec as RunSpec_

    assert (hookimpl, Loss, Hyperparams, Dataset, RunSpec, run) == (
        hookimpl_,
        Loss_,
        Hyperparams_,
        Dataset_,
        RunSpec_,
        run_,
    )
    assert set(ganbench.__all__) <= set(dir(ganbench))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ganbench.nope  # noqa: B018


def test_built_models_meet_the_protocols():
    from ganbench import Discriminator, Generator

    for name in registry.names("generator"):
        assert isinstance(registry.get_generator(name).factory(), Generator), name
    for name in registry.names("discriminator"):
        assert isinstance(registry.get_discriminator(name).factory(), Discriminator), name


def test_run_from_python_returns_the_tables_as_dataframes(tmp_path):
    import pandas as pd

    from ganbench import RunSpec, run

    spec = RunSpec(
        losses=("minimax", "wgan"), dataset="ring8", steps=20, out=tmp_path, progress=False
    )
    tables = run(spec, log=lambda _: None)
    assert isinstance(tables.summary, pd.DataFrame) and isinstance(tables.runs, pd.DataFrame)
    assert sorted(tables.runs["loss"]) == ["minimax", "wgan"]
    assert set(tables.runs["status"]) == {"ok"} and tables.failed == ()
    assert {"minimax", "wgan"} <= set(tables.summary["loss"])
    again = run(spec, log=lambda _: None)  # resumed: nothing trained, the same rows come back
    assert list(again.runs["run_id"]) == list(tables.runs["run_id"])
