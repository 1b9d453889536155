"""Serving a line: the model, its clock, its PLCs and sensors wired together for one run.

    >>> record = asyncio.run(serve(load_line("line.yaml"), HardwareConfig(speed=60), duration=10))
    >>> record["stations"]["mill"]["parts_produced"]

`serve` starts the OPC UA servers and the MQTT client, runs the clock until the
duration has passed or SIGINT/SIGTERM arrives, publishes the last values, waits for
the broker's acknowledgements, and writes the truth file, also when it stops on a
signal or an error.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulations.hardware.clock import ScaledClock
from simulations.hardware.config import HardwareConfig
from simulations.hardware.plc import VirtualPlcs
from simulations.hardware.runtime import LineRuntime
from simulations.hardware.sensors import SensorPublisher
from simulations.hardware.truth import truth_record, write_truth
from twin.line import Line

logger = logging.getLogger(__name__)


@dataclass
class ServedLine:
    """A line being served: what `on_ready` receives once every server listens."""

    runtime: LineRuntime
    clock: ScaledClock
    plcs: VirtualPlcs | None
    sensors: SensorPublisher | None
    stop: asyncio.Event

    @property
    def endpoints(self) -> list[str]:
        return [] if self.plcs is None else list(self.plcs.endpoints)

    def truth(self) -> dict[str, Any]:
        return truth_record(
            self.runtime,
            self.clock,
            opcua=None if self.plcs is None else self._opcua(),
            mqtt=None if self.sensors is None else self.sensors.summary(),
            readings=None if self.sensors is None else self.sensors.readings,
        )

    def _opcua(self) -> dict[str, Any]:
        assert self.plcs is not None
        config = self.plcs.config
        return {
            "endpoints": self.endpoints,
            "namespace_uri": config.namespace_uri,
            "security_policies": list(config.security.policies),
            "writes": self.plcs.writes,
        }


async def serve(
    line: Line,
    config: HardwareConfig,
    *,
    seed: int | None = None,
    duration: float | None = None,
    truth: Path | None = None,
    on_ready: Callable[[ServedLine], None] | None = None,
    on_finished: Callable[[], Awaitable[None]] | None = None,
    handle_signals: bool = True,
) -> dict[str, Any]:
    """Serve `line` for `duration` wall seconds (None: until stopped) and return its truth.

    `on_finished` is awaited once the line has stopped and its truth is written, while the PLCs
    still answer: a client in the same process can take its last values and let go first.
    """
    runtime = LineRuntime(line, config, seed=line.seed if seed is None else seed)
    clock = ScaledClock(runtime.timebase, config.speed, tick=config.tick, lag_warning=config.lag_warning)
    plcs = VirtualPlcs(runtime, config.opcua, clock) if config.opcua.enabled else None
    sensors = SensorPublisher(runtime, config.mqtt, clock) if config.mqtt.enabled else None
    stop = asyncio.Event()
    served = ServedLine(runtime, clock, plcs, sensors, stop)
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if handle_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, _stopper(stop, signum))
                handled.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
                break

    async def publish() -> None:
        if plcs is not None:
            await plcs.publish()
        if sensors is not None:
            sensors.publish()

    started = time.time()
    frozen = False
    record: dict[str, Any] | None = None
    try:
        if plcs is not None:
            await plcs.start()
        if sensors is not None:
            sensors.start()
            await sensors.wait_connected(config.mqtt.connect_timeout)
        # the OPC UA address space is hundreds of thousands of long-lived objects: keep them out of
        # the garbage collector's full passes, which would otherwise stall the clock for a moment
        gc.collect()
        gc.freeze()
        frozen = True
        clock.restart()
        if plcs is not None:
            await plcs.restamp()
        started = clock.start_epoch
        if on_ready is not None:
            on_ready(served)
        await clock.run(stop, publish, until=duration)
        await publish()
    finally:
        try:
            if sensors is not None:
                await sensors.close()
        finally:
            record = served.truth()
            record["wall_s"] = round(time.time() - started, 3)
            if truth is not None:
                write_truth(truth, record)
                logger.info("truth written to %s", truth)
            try:
                if on_finished is not None:
                    await on_finished()
            finally:
                if plcs is not None:
                    if plcs.servers and config.opcua.linger > 0:
                        await asyncio.sleep(config.opcua.linger)
                    await plcs.stop()
            for signum in handled:
                loop.remove_signal_handler(signum)
            if frozen:
                gc.unfreeze()
    return record


def _stopper(stop: asyncio.Event, signum: signal.Signals) -> Callable[[], None]:
    def handler() -> None:
        if not stop.is_set():
            logger.warning("%s received: stopping", signum.name)
        stop.set()

    return handler
