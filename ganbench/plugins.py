"""The plugin manager: built-in plugins and installed distributions, loaded lazily, the same way.

Nothing is loaded at import time. The first call of :func:`get_plugin_manager` registers the
built-ins (:data:`DEFAULT_PLUGINS`) and the entry points of group ``"ganbench"``, filtered by the
environment variable ``GANBENCH_LOAD_PLUGINS`` (read at that moment):

- unset: load every installed plugin distribution;
- empty string: load none (built-ins only);
- ``"ganbench-lsgan,ganbench-hinge"``: load only those distributions.

A plugin that fails to import (or fails ``check_pending``, or raises inside a ``register_*``
hook) is skipped and remembered in :func:`broken_plugins`; everything else keeps working.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
from dataclasses import dataclass

import pluggy

from ganbench import __version__, hookspecs
from ganbench.errors import describe

DEFAULT_PLUGINS: tuple[str, ...] = (
    "ganbench.default_plugins.losses",
    "ganbench.default_plugins.dcgan_mnist",
    "ganbench.default_plugins.dcgan_lite",
    "ganbench.default_plugins.mnist.plugin",
    "ganbench.default_plugins.toy2d",
    "ganbench.default_plugins.stacked_mnist",
)

ENTRY_POINT_GROUP = "ganbench"


@dataclass(frozen=True)
class PluginInfo:
    """One plugin as ``ganbench plugins`` shows it."""

    name: str  # the plugin's registration name (a module name or an entry-point name)
    distribution: str  # who provides it: "ganbench" for built-ins, else the distribution name
    version: str
    error: str = ""  # non-empty when the plugin failed to load

    @property
    def broken(self) -> bool:
        return bool(self.error)


_pm: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
_generation = 0  # bumped whenever the set of working plugins changes (registry cache key)


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ganbench")
    pm.add_hookspecs(hookspecs)
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    """Register one plugin; on any failure record it as broken and leave the manager as it was."""
    global _generation
    _generation += 1
    try:
        pm.register(plugin, name=info.name)
        pm.check_pending()
    except Exception as exc:  # a broken plugin must not take the others down
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        error = describe(exc, whole=True)
        _infos[info.name] = PluginInfo(info.name, info.distribution, info.version, error)
        print(f"ganbench: plugin {info.distribution} failed to load: {error}", file=sys.stderr)
        return
    _infos[info.name] = info


def _wanted_distributions() -> set[str] | None:
    """None means "all"; otherwise the set of distribution names to load."""
    raw = os.environ.get("GANBENCH_LOAD_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Build the plugin manager: built-ins first, then installed entry points."""
    global _pm, _generation
    _generation += 1
    _infos.clear()
    pm = _new_manager()
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        _register(pm, module, PluginInfo(module_name, "ganbench", __version__))

    wanted = _wanted_distributions()
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ep.name
        version = ep.dist.version if ep.dist is not None else "?"
        if wanted is not None and dist not in wanted:
            continue
        info = PluginInfo(ep.name, dist, version)
        try:
            plugin = ep.load()
        except Exception as exc:
            error = describe(exc, whole=True)
            _infos[ep.name] = PluginInfo(ep.name, dist, version, error)
            print(f"ganbench: plugin {dist} failed to load: {error}", file=sys.stderr)
            continue
        _register(pm, plugin, info)
    _pm = pm
    return pm


def add_plugin(plugin: object, name: str, distribution: str = "(in-process)") -> None:
    """Register an in-process plugin object (scripts, notebooks, tests) next to the loaded ones."""
    _register(get_plugin_manager(), plugin, PluginInfo(name, distribution, "-"))


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    return _pm if _pm is not None else load_plugins()


def plugin_infos() -> list[PluginInfo]:
    """Every plugin seen by the last load, broken ones included."""
    get_plugin_manager()
    return list(_infos.values())


def broken_plugins() -> list[PluginInfo]:
    """The plugins that failed to load or to register, with their errors."""
    return [info for info in plugin_infos() if info.broken]


def mark_broken(plugin_name: str, error: str) -> None:
    """Record that a loaded plugin failed later (its ``register_*`` hook raised).

    The plugin is unregistered, so none of its hooks is called again in this process.
    """
    global _generation
    pm = get_plugin_manager()
    info = _infos[plugin_name]
    _infos[plugin_name] = PluginInfo(info.name, info.distribution, info.version, error)
    plugin = pm.get_plugin(plugin_name)
    if plugin is not None:
        pm.unregister(plugin)
    _generation += 1
    print(f"ganbench: plugin {info.distribution} failed to load: {error}", file=sys.stderr)


def generation() -> int:
    """A number that changes whenever plugins are loaded, added or marked broken."""
    get_plugin_manager()
    return _generation


def provider_of(plugin_name: str) -> PluginInfo:
    get_plugin_manager()
    return _infos[plugin_name]


def reset() -> None:
    """Forget the loaded plugins (tests; a changed ``GANBENCH_LOAD_PLUGINS``)."""
    global _pm, _generation
    _pm = None
    _infos.clear()
    _generation += 1
