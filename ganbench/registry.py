"""Lookup of registered losses, generators, discriminators and datasets.

The only module that calls the plugin hooks. Each kind maps public names to zero-argument
factories, remembering which plugin distribution provided each name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ganbench import plugins
from ganbench.errors import GanbenchError, describe, did_you_mean, first_line

KINDS: dict[str, str] = {
    "loss": "register_losses",
    "generator": "register_generators",
    "discriminator": "register_discriminators",
    "dataset": "register_datasets",
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[[], Any]
    provider: str  # distribution name, "ganbench" for built-ins
    provider_version: str
    plugin: str  # the plugin's registration name (module or entry point)


_cache: dict[tuple[int, str], dict[str, Entry]] = {}


def entries(kind: str) -> dict[str, Entry]:
    """All registered entries of one kind, by name (sorted).

    A plugin whose ``register_*`` hook raises (or calls ``register`` with a bad name or a
    non-callable factory) is marked broken and skipped, like one that fails to import. A name
    registered twice is a :class:`GanbenchError` naming both providers.
    """
    if kind not in KINDS:
        raise GanbenchError(f"Unknown kind {kind!r}. Available: {', '.join(KINDS)}")
    key = (plugins.generation(), kind)
    if key in _cache:
        return _cache[key]
    pm = plugins.get_plugin_manager()
    found: dict[str, Entry] = {}
    for impl in getattr(pm.hook, KINDS[kind]).get_hookimpls():
        mine: dict[str, Entry] = {}
        register = _registrar(kind, found, mine, plugins.provider_of(impl.plugin_name))
        try:
            impl.function(register=register)
        except GanbenchError:
            raise
        except Exception as exc:  # a broken plugin must not take the others down
            plugins.mark_broken(
                impl.plugin_name, f"{KINDS[kind]} raised {describe(exc, whole=True)}"
            )
            return entries(kind)  # again, without it
        found.update(mine)
    result = dict(sorted(found.items()))
    for stale in [k for k in _cache if k[0] != key[0]]:  # entries of older plugin sets
        del _cache[stale]
    _cache[key] = result
    return result


def _registrar(
    kind: str, found: dict[str, Entry], mine: dict[str, Entry], info: plugins.PluginInfo
) -> Callable[[str, Callable[[], Any]], None]:
    """The ``register(name, factory)`` callback one plugin's hook receives; it fills ``mine``."""

    def register(name: str, factory: Callable[[], Any]) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"register(name, factory): name must be a non-empty str, not {name!r}")
        if not callable(factory):
            raise TypeError(f"register({name!r}, factory): factory is not callable: {factory!r}")
        first = found.get(name) or mine.get(name)
        if first is not None:
            raise GanbenchError(
                f"{kind.capitalize()} {name!r} is registered twice: by {first.provider} "
                f"({first.plugin}) and by {info.distribution} ({info.name})"
            )
        mine[name] = Entry(kind, name, factory, info.distribution, info.version, info.name)

    return register


def names(kind: str) -> list[str]:
    return list(entries(kind))


def _normal(text: str) -> str:
    return text.lower().replace("_", "-").removeprefix("ganbench-")


def _broken_provider(name: str, broken: list[plugins.PluginInfo]) -> plugins.PluginInfo | None:
    """The broken plugin named like ``name`` (``wgan-gp``: ``ganbench-wgan-gp``), if any."""
    for info in broken:
        if _normal(name) in (_normal(info.distribution), _normal(info.name)):
            return info
    return None


def get(kind: str, name: str) -> Entry:
    """The entry registered under ``name``; a :class:`GanbenchError` with suggestions if none.

    If a plugin named like ``name`` failed to load, the error says so instead of "unknown".
    """
    known = entries(kind)
    if name in known:
        return known[name]
    broken = plugins.broken_plugins()
    culprit = _broken_provider(name, broken)
    if culprit is not None:
        raise GanbenchError(
            f"{kind.capitalize()} {name!r} is not available because plugin "
            f"{culprit.distribution} failed to load: {first_line(culprit.error)} "
            "(see `ganbench plugins`)"
        )
    message = f"Unknown {kind} {name!r}.{did_you_mean(name, known)}"
    message += f" Available: {', '.join(known) or '(none)'}"
    if broken:
        message += ". Plugins that failed to load (one may provide it): " + "; ".join(
            f"{b.distribution} ({first_line(b.error)})" for b in broken
        )
    raise GanbenchError(message)


def get_loss(name: str) -> Entry:
    return get("loss", name)


def get_generator(name: str) -> Entry:
    return get("generator", name)


def get_discriminator(name: str) -> Entry:
    return get("discriminator", name)


def get_dataset(name: str) -> Entry:
    return get("dataset", name)
