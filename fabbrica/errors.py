"""Turning bad input into one line on stderr and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from twin.line import LineError

EXIT_BAD_INPUT = 2


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def bad_input_exits() -> Iterator[None]:
    """Inside this block a LineError becomes one line on stderr and exit code 2."""
    try:
        yield
    except LineError as exc:
        raise fail(str(exc)) from None
