"""Lookup of registered losses, generators, discriminators and datasets.

The only module that calls the plugin hooks. Each kind maps public names to zero-argument
factories, remembering which plugin distribution provided each name.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ganbench import plugins
from ganbench.errors import GanbenchError

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


_cache: dict[tuple[int, int, str], dict[str, Entry]] = {}


def entries(kind: str) -> dict[str, Entry]:
    """All registered entries of one kind, by name (sorted)."""
    if kind not in KINDS:
        raise GanbenchError(f"Unknown kind {kind!r}. Available: {', '.join(KINDS)}")
    pm = plugins.get_plugin_manager()
    key = (id(pm), len(pm.get_plugins()), kind)  # a plugin added later invalidates
    if key in _cache:
        return _cache[key]
    found: dict[str, Entry] = {}
    caller = getattr(pm.hook, KINDS[kind])
    for impl in caller.get_hookimpls():
        info = plugins.provider_of(impl.plugin_name)

        def register(name: str, factory: Callable[[], Any], _info=info, _plugin=impl.plugin_name):
            if name in found:
                first = found[name]
                raise GanbenchError(
                    f"{kind.capitalize()} {name!r} is registered twice: by {first.provider} "
                    f"({first.plugin}) and by {_info.distribution} ({_plugin})"
                )
            found[name] = Entry(kind, name, factory, _info.distribution, _info.version, _plugin)

        impl.function(register=register)
    result = dict(sorted(found.items()))
    _cache[key] = result
    return result


def names(kind: str) -> list[str]:
    return list(entries(kind))


def get(kind: str, name: str) -> Entry:
    """The entry registered under ``name``; a :class:`GanbenchError` with suggestions if none."""
    known = entries(kind)
    if name in known:
        return known[name]
    message = f"Unknown {kind} {name!r}."
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        message += f" Did you mean {close[0]!r}?"
    message += f" Available: {', '.join(known) or '(none)'}"
    broken = plugins.broken_plugins()
    if broken:
        message += ". Broken plugins (failed to load): " + "; ".join(
            f"{b.distribution} ({b.error})" for b in broken
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
