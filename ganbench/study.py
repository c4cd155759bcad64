"""Study files: ``ganbench run --config study.toml`` (and ``search``).

A study file sets any option of its command by its long name, with dashes or underscores
(``loss = ["minimax", "wgan"]``, ``steps = 30``, ``dataset = "ring8"``, ``loss-param = {clip =
0.02}``). A flag given on the command line overrides the file. An unknown key or a value of the
wrong kind is one line naming it and the valid keys (exit 2), before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ganbench.arguments import command_parser
from ganbench.errors import GanbenchError, did_you_mean, first_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

NOT_IN_FILES = {"help", "config"}
# options that set the same thing: the command line giving any of a group drops the file's
# values for all of it (--lr on the command line beats lr-g in the file, --epochs beats steps)
OVERLAPPING = (
    {"lr", "lr_g", "lr_d"},
    {"optimizer", "optimizer_g", "optimizer_d"},
    {"steps", "epochs", "budget"},
    {"seed", "seeds"},
    {"launcher", "ray_address"},
)


def read_study(path: Path) -> dict[str, Any]:
    """The TOML table of ``path``; a missing or malformed file is one line."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise GanbenchError(f"Study file {str(path)!r} does not exist") from None
    except UnicodeDecodeError:
        raise GanbenchError(f"Study file {str(path)!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise GanbenchError(
            f"Study file {str(path)!r} is not valid TOML: {first_line(exc)}"
        ) from None


def with_study(command: str, args: argparse.Namespace, argv: list[str]) -> argparse.Namespace:
    """``args`` with the values of its ``--config`` file wherever ``argv`` (the command line
    after the command name) did not give the option itself."""
    path = Path(args.config)
    values = read_study(path)
    parser = command_parser(command)
    actions = {a.dest: a for a in parser._actions if a.dest not in NOT_IN_FILES}
    given = _given_on_command_line(command, argv)
    for group in OVERLAPPING:
        if given & group:
            given |= group
    merged = argparse.Namespace(**vars(args))
    for key, value in values.items():
        dest = key.replace("-", "_")
        if dest not in actions:
            valid = sorted(d.replace("_", "-") for d in actions)
            raise GanbenchError(
                f"Unknown key {key!r} in study file {str(path)!r}.{did_you_mean(key, valid)} "
                f"Valid keys: {', '.join(valid)}"
            )
        if dest in given:
            continue  # the command line wins
        try:
            setattr(merged, dest, _convert(actions[dest], value))
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise GanbenchError(
                f"Study file {str(path)!r}: {key} = {value!r}: {first_line(exc)}"
            ) from None
    return merged


def _given_on_command_line(command: str, argv: list[str]) -> set[str]:
    """The option names ``argv`` sets itself (parsed with every default suppressed)."""
    parser = command_parser(command)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _convert(action: argparse.Action, value: Any) -> Any:
    """A TOML value as the option's parsed value (its ``type``, list for repeatable options,
    ``choices`` checked)."""
    if isinstance(action, argparse._AppendAction):
        if isinstance(value, dict):  # loss-param = {clip = 0.02}
            value = [f"{k}={v}" for k, v in value.items()]
        items = value if isinstance(value, list) else [value]
        return [_one(action, item) for item in items]
    if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {type(value).__name__}")
        return value
    return _one(action, value)


def _one(action: argparse.Action, value: Any) -> Any:
    kind = action.type
    if isinstance(value, bool | dict | list):
        raise TypeError(f"expected a single value, got {type(value).__name__}")
    if kind is None and not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
    if kind is int and not (isinstance(value, int) or str(value).lstrip("-").isdigit()):
        raise TypeError(f"expected a whole number, got {value!r}")
    converted = kind(value if kind in (int, float) else str(value)) if kind else value
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"must be one of {', '.join(map(str, action.choices))}")
    return converted
