"""`fabbrica twin live CONFIG.yaml`: the live twin, a forecast of the shift every `every`.

The command reads the configuration (`twinloop.live_config`), then runs `twinloop.live.LiveTwin`
until SIGINT or SIGTERM, or for one tick with `--once` (for cron and tests).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fabbrica.errors import bad_input_exits
from fabbrica.twin_commands import twin_app
from foundation.errors import InputError

if TYPE_CHECKING:
    from twinloop.live import LiveTwin, Tick


@twin_app.command("live")
def live(
    config_file: Path = typer.Argument(
        ..., metavar="CONFIG.yaml", help="The live twin's configuration (see twinloop/live-sample.yaml)."
    ),
    once: bool = typer.Option(
        False,
        "--once",
        help="One tick, then exit: 0 when it wrote its points or no shift runs, 1 when skipped.",
    ),
    at: str | None = typer.Option(
        None,
        "--at",
        metavar="TIME",
        help="With --once: the tick's instant (ISO 8601), to replay a tick on recorded data.",
    ),
) -> None:
    """Forecast the shift from the line's state every `every` and write the forecasts to the sink."""
    from twinloop.history import parse_time
    from twinloop.live import LiveTwin
    from twinloop.live_config import read_live_config

    with bad_input_exits():
        if at is not None and not once:
            raise InputError("--at: only with --once")
        instant = parse_time(at, "--at")
        setup = read_live_config(config_file)
        twin = LiveTwin(setup)
    logger = logging.getLogger("twinloop.live")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # each tick says what it did, without -v
    if once:
        outcome = asyncio.run(_once(twin, instant))
        if outcome.status not in ("written", "idle"):
            raise typer.Exit(1)
        return
    asyncio.run(_forever(twin))


async def _once(twin: LiveTwin, at: datetime | None) -> Tick:
    try:
        return await twin.tick(at)
    finally:
        await twin.close()


async def _forever(twin: LiveTwin) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("twinloop.live").info(
        "live twin of %s: every %g s, %d shifts, forecasts to %s",
        twin.setup.line_tag, twin.config.every, len(twin.config.shifts), twin.setup.sink.type,
    )  # fmt: skip
    await twin.run(stop)
