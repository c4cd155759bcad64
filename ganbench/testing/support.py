"""What every check of the conformance kit builds on: turning a registered name or a factory
into objects, failing with a message that names the object, and a few tensor helpers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ganbench import registry
from ganbench.datasets import Dataset
from ganbench.losses import Loss

Spec = str | Callable[[], Any]  # a registered name or a zero-argument factory


def one_thread(check: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``check`` on one intra-op thread: its tensors are tiny, and a thread pool only adds
    overhead (on a busy machine, 100x)."""

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


def resolve(kind: str, spec: Spec) -> tuple[Callable[[], Any], str]:
    """A factory and the label that error messages start with."""
    if isinstance(spec, str):
        return registry.get(kind, spec).factory, f"{kind} {spec!r}"
    if isinstance(spec, nn.Module | Loss | Dataset) or not callable(spec):
        raise TypeError(
            f"pass a registered {kind} name or a zero-argument factory (e.g. the class), "
            f"not {spec!r}"
        )
    return spec, f"{kind} {getattr(spec, '__qualname__', repr(spec))}"


def fail(label: str, message: str) -> AssertionError:
    """The error a check raises: ``"<label>: <message>"``."""
    return AssertionError(f"{label}: {message}")


def build(factory: Callable[[], Any], label: str, cls: type, what: str) -> Any:
    """Two objects from ``factory``: checks the type and that each call builds a fresh one."""
    try:
        first, second = factory(), factory()
    except Exception as exc:
        raise fail(label, f"factory() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(first, cls):
        raise fail(label, f"factory() must return {what}, got {type(first).__name__}")
    if first is second:
        raise fail(label, "factory() must build a fresh object on every call, got the same one")
    if isinstance(first, nn.Module):
        shared = {id(p) for p in first.parameters()} & {id(p) for p in second.parameters()}
        if shared:
            raise fail(label, "two factory() calls share parameters; each must build fresh ones")
    return first


def call(label: str, method: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; an exception it raises becomes a :func:`fail` naming ``method``."""
    try:
        return fn(*args)
    except Exception as exc:
        raise fail(label, f"{method} raised {type(exc).__name__}: {exc}") from exc


def gradient_state(module: nn.Module) -> tuple[bool, str | None]:
    """(some parameter got a non-zero gradient, name of a parameter with a non-finite one)."""
    nonzero, bad = False, None
    for name, p in module.named_parameters():
        if p.grad is None:
            continue
        if not torch.isfinite(p.grad).all():
            bad = bad or name
        if p.grad.abs().sum() > 0:
            nonzero = True
    return nonzero, bad


def noise(G: nn.Module, batch_size: int, seed: int) -> Tensor:
    """A seeded batch of ``G``'s input noise, shape ``(batch_size, G.z_dim)``."""
    return torch.randn((batch_size, G.z_dim), generator=torch.Generator().manual_seed(seed))
