"""Running a connector: every source and the pipeline in one asyncio loop until stopped.

    asyncio.run(run(read_config("connect.yaml")))

SIGINT and SIGTERM stop the sources, flush every pending point to the sink (within
`shutdown_timeout`; what does not make it stays in the spool for the next start) and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from connectors.config import LoadedConfig
from connectors.pipeline import Pipeline

log = logging.getLogger(__name__)


async def run(
    loaded: LoadedConfig,
    stop: asyncio.Event | None = None,
    duration: float | None = None,
    on_sources: Callable[[list[Any]], None] | None = None,
) -> Pipeline:
    """Run until `stop` is set, a signal arrives or `duration` seconds pass; return the pipeline.

    `on_sources` receives the source runners once they exist (an MQTT runner counts the messages
    it took in, `messages`): a caller in the same process can wait until they have all arrived.
    """
    from connectors.mqtt.source import MqttSourceRunner
    from connectors.opcua.source import OpcUaSourceRunner

    config = loaded.config
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, stop.set)
    pipeline = Pipeline(config, loaded.base)
    runners = [OpcUaSourceRunner(source, pipeline, loaded.base) for source in config.opcua]
    runners += [MqttSourceRunner(source, pipeline, loaded.base) for source in config.mqtt]  # type: ignore[misc]
    if on_sources is not None:
        on_sources(list(runners))
    sources_done = asyncio.Event()

    async def sources() -> None:
        try:
            await asyncio.gather(*(runner.run(stop) for runner in runners))
        finally:
            sources_done.set()

    timer = loop.call_later(duration, stop.set) if duration else None
    log.info("connector %s: %d source(s) into %s", config.name, len(runners), pipeline.sink.name)
    source_task = asyncio.create_task(sources(), name="sources")
    try:
        await pipeline.run(stop, sources_done)
    finally:
        if timer is not None:
            timer.cancel()
        stop.set()
        if not source_task.done():
            source_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await source_task
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(number)
    return pipeline
