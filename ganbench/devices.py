"""Where cells train and in which precision: ``--device`` and ``--precision auto``."""

from __future__ import annotations

import torch

from ganbench.datasets import Dataset
from ganbench.errors import GanbenchError
from ganbench.spec import RunSpec


def resolve_device(name: str, check_available: bool = True) -> torch.device:
    """``auto``, ``cpu`` or ``cuda[:N]`` as a device; ``check_available``: a CUDA name needs a GPU
    in this process (off where the cell runs elsewhere, e.g. on a Ray worker)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if check_available and not torch.cuda.is_available():
            raise GanbenchError(
                f"Device {name!r} requested but no CUDA GPU is available. Use: cpu, auto"
            )
        try:
            return torch.device(name)
        except RuntimeError:
            pass
    raise GanbenchError(f"Unknown device {name!r}. Available: auto, cpu, cuda")


def cell_device(spec: RunSpec, check_available: bool = True) -> torch.device:
    """The device the cells of ``spec`` train on (it is part of their ``config_hash``).

    Under Ray, ``auto`` means what the cell reserved: ``cuda`` with ``--gpus-per-cell`` > 0, else
    ``cpu`` (never a GPU Ray did not give the cell), so the driver and every worker agree.
    """
    name = spec.device
    if spec.launch.launcher == "ray" and name == "auto":
        name = "cuda" if spec.launch.gpus_per_cell > 0 else "cpu"
    return resolve_device(name, check_available)


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 autocast runs faster than fp32 (elsewhere it is emulated)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def auto_precision(
    dataset: Dataset, device: torch.device, generator: str | None = None
) -> tuple[str, str]:
    """``--precision auto``: ``(precision, why)``. The dataset's validated ``cpu_precision`` on a
    CPU with native bf16, for the pairs it was validated on (``cpu_precision_pairs``;
    ``generator`` None: the dataset's default pair); fp32 elsewhere (on a GPU, one cell of these
    small models is host-bound: bf16 measured no faster on an H200, docs/performance.md). One
    function decides both, so the log's reason is the choice's."""
    if device.type != "cpu":
        return "fp32", f"one cell on {device.type} is host-bound, bf16 measured no faster"
    if not cpu_has_native_bf16():
        return "fp32", "this CPU has no native bf16 (AVX-512 BF16 or AMX)"
    if not validated_pair(dataset, generator):
        pair = generator or dataset.default_model
        return "fp32", f"bf16 is not validated on {pair} with this dataset"
    return (
        dataset.cpu_precision,
        f"the dataset's validated CPU precision is {dataset.cpu_precision}",
    )


def validated_pair(dataset: Dataset, generator: str | None) -> bool:
    """Whether the dataset's ``cpu_precision`` was validated on ``generator``'s pair."""
    pairs = getattr(dataset, "cpu_precision_pairs", None)
    return pairs is None or (generator or dataset.default_model) in pairs
