"""Turning bad input into one line on stderr and exit code 2; command-line options parsed like file fields."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from foundation.durations import parse_duration
from foundation.errors import InputError

EXIT_BAD_INPUT = 2


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def bad_input_exits() -> Iterator[None]:
    """Inside this block an InputError (a bad file or option) becomes one line on stderr and exit code 2."""
    try:
        yield
    except InputError as exc:
        raise fail(str(exc)) from None


def duration_option(name: str, value: str | None) -> float | None:
    """Parse a command-line duration (`90`, `5min`, `1w`), naming the option on error."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None
