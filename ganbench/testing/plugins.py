"""Plugin loading for a plugin's tests: :func:`plugins_loaded`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ganbench import plugins


@contextlib.contextmanager
def plugins_loaded(*distributions: str) -> Iterator[None]:
    """Load only the built-ins and the installed ``distributions`` inside the block.

    Sets ``GANBENCH_LOAD_PLUGINS`` and rebuilds the plugin manager, so other installed plugins
    cannot interfere with a plugin's tests; restores both afterwards.

    :raises AssertionError: if a named distribution is not installed or failed to load.
    """
    old = os.environ.get("GANBENCH_LOAD_PLUGINS")
    os.environ["GANBENCH_LOAD_PLUGINS"] = ",".join(distributions)
    plugins.reset()
    try:
        loaded = {info.distribution: info for info in plugins.plugin_infos()}
        for dist in distributions:
            if dist not in loaded:
                raise AssertionError(
                    f"plugin distribution {dist!r} is not installed (no entry point in group "
                    f"{plugins.ENTRY_POINT_GROUP!r}); install it, e.g. `pip install -e .`"
                )
            if loaded[dist].broken:
                raise AssertionError(f"plugin {dist} failed to load: {loaded[dist].error}")
        yield
    finally:
        if old is None:
            os.environ.pop("GANBENCH_LOAD_PLUGINS", None)
        else:
            os.environ["GANBENCH_LOAD_PLUGINS"] = old
        plugins.reset()
