"""The conformance kit: checks a plugin author calls from the plugin's own tests.

Each check builds fresh objects through the plugin's factory, exercises them the way ganbench's
trainer does, on tiny models and data (well under a second), and raises :class:`AssertionError`
with a message that names the object and says what is wrong. ganbench runs the same checks over
every registered loss, model and dataset in its own test suite. Example (a plugin's
``tests/test_my_loss.py``)::

    import pytest
    from ganbench.testing import check_loss, plugins_loaded

    @pytest.fixture(autouse=True)
    def only_this_plugin():
        with plugins_loaded("ganbench-my-loss"):  # built-ins + this distribution only
            yield

    def test_conforms():
        check_loss("my-loss")                          # on the kit's tiny model pair
        check_loss("my-loss", generator="dcgan-mnist")  # and on a registered pair

Every ``check_*`` function takes either a registered name (looked up with
:func:`ganbench.registry.get`, so it also proves the plugin is installed and registered) or a
zero-argument factory such as the class itself (no installation needed).

The kit by subject: :mod:`ganbench.testing.losses` (loss checks), :mod:`ganbench.testing.models`
(the tiny model pair and model checks), :mod:`ganbench.testing.datasets` (dataset checks),
:mod:`ganbench.testing.plugins` (plugin loading) and :mod:`ganbench.testing.support` (what every
check builds on). Import the checks from ``ganbench.testing`` itself.
"""

from __future__ import annotations

from ganbench.testing.datasets import check_dataset
from ganbench.testing.losses import check_loss, check_loss_steps, check_search_space
from ganbench.testing.models import (
    TinyDiscriminator,
    TinyGenerator,
    check_discriminator,
    check_generator,
    check_model_pair,
)
from ganbench.testing.plugins import plugins_loaded
from ganbench.testing.support import Spec

__all__ = [
    "Spec",
    "TinyDiscriminator",
    "TinyGenerator",
    "check_dataset",
    "check_discriminator",
    "check_generator",
    "check_loss",
    "check_loss_steps",
    "check_search_space",
    "check_model_pair",
    "plugins_loaded",
]
