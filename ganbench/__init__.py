"""ganbench: a plugin-based benchmark harness for GAN objectives.

The public API, for plugins and notebooks::

    from ganbench import hookimpl, Loss, Hyperparams, Dataset, RunSpec, run

    tables = run(RunSpec(losses=("wgan", "minimax"), steps=300))
    tables.summary  # pandas DataFrames: the summary and the pairwise comparisons

- :data:`hookimpl` marks a plugin's ``register_*`` hooks (:mod:`ganbench.hookspecs`);
- :class:`Loss` and :class:`Hyperparams`: a GAN objective and its training hyperparameters;
- :class:`Generator` and :class:`Discriminator`: the model contract (Protocols);
- :class:`Dataset`, :class:`Evaluator`, :class:`EvalOptions`: a training dataset and how its
  samples are scored;
- :class:`RunSpec` (with :class:`LaunchOptions`) and :func:`run`: what ``ganbench run`` does.

The names load on first use, so ``import ganbench`` stays light (no torch) and plugins that
import the package while it loads them see no import cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "hookimpl": "ganbench.hookspecs",
    "Loss": "ganbench.losses",
    "Hyperparams": "ganbench.losses",
    "Generator": "ganbench.models",
    "Discriminator": "ganbench.models",
    "Dataset": "ganbench.datasets",
    "Evaluator": "ganbench.datasets",
    "EvalOptions": "ganbench.datasets",
    "RunSpec": "ganbench.spec",
    "LaunchOptions": "ganbench.spec",
    "run": "ganbench.runner",
}

__all__ = [
    "__version__",
    "hookimpl",
    "Loss",
    "Hyperparams",
    "Generator",
    "Discriminator",
    "Dataset",
    "Evaluator",
    "EvalOptions",
    "RunSpec",
    "LaunchOptions",
    "run",
]

if TYPE_CHECKING:
    from ganbench.datasets import Dataset, EvalOptions, Evaluator
    from ganbench.hookspecs import hookimpl
    from ganbench.losses import Hyperparams, Loss
    from ganbench.models import Discriminator, Generator
    from ganbench.runner import run
    from ganbench.spec import LaunchOptions, RunSpec


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # once: later lookups skip this function
        return value
    raise AttributeError(f"module 'ganbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
