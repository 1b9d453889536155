"""Bad input told in one line: the error of every file or option a user gives, pydantic's errors in words.

`InputError` means "a file or option the user gave is invalid"; its message is one line
naming the file (or option) and the field, e.g. `line.yaml: stations[2].failures.mttr:
must be > 0, got -5.0`. Each kind of file has its own subclass where it is read
(`twin.line.LineError`, `connectors.config.ConfigError`, ...), and the command line
catches them all as `InputError`.

`format_error` turns one pydantic error into (field path, message); a reader may pass
the location parts to skip (union tags) and a `describe` hook for errors only it knows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic import ValidationError

Describe = Callable[[Mapping[str, Any]], str | None]
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


class InputError(ValueError):
    """A file or option the user gave is invalid: the message is one line naming file and field."""


class FieldError(ValueError):
    """A cross-field error raised inside a validator that knows its own path below the model."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def format_location(loc: tuple[Any, ...], skip: Collection[str] = ()) -> str:
    """('stations', 2, 'failures', 'mttr') -> 'stations[2].failures.mttr'; `skip`: union tags to leave out."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in skip or str(part).startswith(("function-", "literal[")):
            continue
        else:
            part = repr(part) if "\n" in str(part) else part  # the message stays one line
            text += f".{part}" if text else str(part)
    return text


def format_error(
    error: Mapping[str, Any], skip: Collection[str] = (), describe: Describe | None = None
) -> tuple[str, str]:
    """One pydantic error as (field path, message in plain words).

    `describe(error)` may word an error the caller knows better (a message or None).
    """
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    message = str(error["msg"])
    if kind == "value_error" and isinstance(ctx.get("error"), FieldError):
        field_error = ctx["error"]
        return _join(format_location(loc, skip), field_error.path), field_error.message
    special = describe(error) if describe is not None else None
    if special is not None:
        message = special
    elif kind == "missing":
        message = "required field missing"
    elif kind == "extra_forbidden":
        message = "unknown key"
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        message = f"must be {_BOUNDS[kind]} {bound}, got {error.get('input')!r}"
    elif kind == "too_short":
        message = f"must have at least {ctx.get('min_length')} item(s)"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    else:
        message = message.replace("Input should be", "must be").replace("Input should have", "must have")
        if isinstance(error.get("input"), str | int | float):
            message += f", got {error['input']!r}"
    return format_location(loc, skip), message


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}.{path}" if not path.startswith("[") else prefix + path


def validation_message(
    source: str, error: ValidationError, skip: Collection[str] = (), describe: Describe | None = None
) -> str:
    """`source: field.path: message` for the first error of `error`."""
    path, message = format_error(error.errors(include_url=False)[0], skip, describe)
    return f"{source}: {path}: {message}" if path else f"{source}: {message}"
