"""The OPC UA source: watch PLC variables and turn every value change into a point.

One session per endpoint: connect, resolve the configured nodes (a bad or unknown node is
reported and skipped; the others keep flowing), create one subscription with a monitored
item per variable (or poll them), and hand values to the pipeline. When the server goes away,
or the subscription stays silent past `stale_after` (no data and no keep-alive), the session
ends and the shared reconnect loop starts it again with backoff: nodes are resolved anew and
the subscription re-created, since a restarted PLC may renumber both.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import DataChangeNotif

from connectors.common.backoff import Backoff, keep_running, sleep_or_stop
from connectors.common.points import BadPoint, FieldValue, Point, check_time, datetime_ns, field_value
from connectors.common.ratelog import RateLimitedLog
from connectors.opcua.backfill import Checkpoint, backfill
from connectors.opcua.client import Target, make_client, resolve, secure
from connectors.opcua.config import OpcUaSource
from connectors.pipeline import Pipeline

log = logging.getLogger(__name__)


class SessionLost(Exception):
    pass


def opcua_value(value: Any) -> FieldValue:
    """An OPC UA variant value as a field value (enumerations as their number)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, ua.LocalizedText):
        value = value.Text or ""
    elif isinstance(value, datetime):
        return datetime_ns(value)
    elif isinstance(value, bytes):
        raise BadPoint("byte strings are not stored")
    return field_value(value)


class OpcUaSourceRunner:
    """Runs one OPC UA source against one pipeline."""

    def __init__(self, config: OpcUaSource, pipeline: Pipeline, base: Path | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.base = base  # relative certificate paths start here (the config file's folder)
        self.name = f"opcua {config.label}"
        self.targets: dict[ua.NodeId, Target] = {}
        self.skipped: list[str] = []
        self.values = 0
        self.backfilled = 0
        self._warn = RateLimitedLog(log)
        # newest source time per variable; what reached the spool is checkpointed for backfill
        self.last_seen: dict[str, int] = {}
        # variables whose history since their checkpoint is not read yet (or could not be): their
        # checkpoint stays, or the values between it and the subscription's first would be skipped
        self.unfilled: set[str] = set()
        self.checkpoint = Checkpoint(
            pipeline.spool.path, "|".join([config.endpoint, config.measurement, *config.nodes])
        )

    async def run(self, stop: asyncio.Event) -> None:
        warning = self.config.security_warning()
        if warning is not None:
            log.warning("%s", warning)
        backoff = Backoff(initial=0.5, maximum=self.config.reconnect_max)
        await keep_running(
            self.name,
            lambda: self._session(stop),
            backoff,
            stop,
            on_reconnect=self.pipeline.health.count_reconnect,
        )

    # -- one session ----------------------------------------------------------------------------

    async def _session(self, stop: asyncio.Event) -> None:
        client = make_client(self.config)
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        since = dict(self.checkpoint.stamps)  # before any value of this session arrives
        await secure(client, self.config, self.base)
        await client.connect(auto_reconnect=False)
        try:
            targets, problems = await resolve(client, self.config)
            for problem in problems:
                log.warning("%s: skipping node %s", self.name, problem)
            self.targets = {target.node.nodeid: target for target in targets}
            self.skipped = problems
            if self.config.mode == "subscribe":
                await self._subscribe(client, stop, lost, since)
            else:
                await self._poll(client, stop, lost)
        finally:
            self._checkpoint()  # stored with the pipeline's last commit
            try:
                await asyncio.wait_for(client.disconnect(), timeout=2.0)
            except Exception as exc:
                log.debug("%s: disconnect: %s", self.name, exc)

    def _connected(self) -> None:
        """Say so once the values flow: subscribed (or about to poll)."""
        log.info("%s: connected, %d variables", self.name, len(self.targets))

    async def _subscribe(
        self, client: Client, stop: asyncio.Event, lost: asyncio.Event, since: dict[str, int]
    ) -> None:
        config = self.config
        publishing = config.publishing_interval or max(config.sampling_interval, 0.05)
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = publishing * 1000
        keepalive = (config.stale_after / 3) if config.stale_after else 10.0
        params.RequestedMaxKeepAliveCount = max(1, int(keepalive / publishing))
        params.RequestedLifetimeCount = params.RequestedMaxKeepAliveCount * 3
        params.MaxNotificationsPerPublish = 0
        params.PublishingEnabled = True
        params.Priority = 0
        backfilling = config.backfill and config.timestamp == "source"
        self.unfilled = {target.key for target in self.targets.values()} if backfilling else set()
        subscription = await client.create_subscription(params, _Handler(self))
        requests = [self._item_request(subscription, target.node) for target in self.targets.values()]
        results = await subscription.create_monitored_items(requests) if requests else []
        for target, result in zip(list(self.targets.values()), results, strict=True):
            if isinstance(result, ua.StatusCode):
                log.warning(
                    "%s: skipping node %s (%s): %s",
                    self.name,
                    "/".join(target.path),
                    target.node,
                    result.name,
                )
                self.skipped.append(f"{target.node}: {result.name}")
                del self.targets[target.node.nodeid]
        self._connected()
        if backfilling:
            await self._backfill(since)
        started = time.monotonic()
        while not stop.is_set():
            self._checkpoint()
            if await _wait_any(stop, lost, 1.0):
                break
            if client.state.value in ("disconnected", "disconnecting"):
                lost.set()
            if lost.is_set():
                raise SessionLost("connection lost")
            if config.stale_after:
                last = subscription.last_publish_at or started
                if time.monotonic() - last > config.stale_after:
                    raise SessionLost(f"subscription silent for {config.stale_after:g}s; reconnecting")

    async def _backfill(self, since: dict[str, int]) -> None:
        began = time.monotonic()
        filled = await backfill(
            list(self.targets.values()),
            since,
            datetime.now(UTC),
            timedelta(seconds=self.config.backfill_max),
            self.take,
            origin=self.checkpoint.origin,
        )
        self.unfilled = set(filled.failed)  # read again from their checkpoint after a reconnect
        self.backfilled += filled.values
        log.info(
            "%s: backfilled %d values of %d variables from the server's history in %.1fs",
            self.name,
            filled.values,
            filled.read,
            time.monotonic() - began,
        )
        if filled.refused:
            log.info(
                "%s: %d variables have no history on the server (live values only)", self.name, filled.refused
            )
        if filled.failed:
            log.warning(
                "%s: the history of %d variables could not be read; again after the next reconnect",
                self.name,
                len(filled.failed),
            )

    def _checkpoint(self) -> None:
        """Once the values taken so far are in the spool, remember their times for a backfill
        (not for variables whose history since their checkpoint is still to be read)."""
        stamps = {key: stamp for key, stamp in self.last_seen.items() if key not in self.unfilled}
        if stamps:
            self.pipeline.submit([], ack=partial(self.checkpoint.durable, stamps))

    def _item_request(self, subscription: Any, node: Node) -> ua.MonitoredItemCreateRequest:
        config = self.config
        subscription._client_handle += 1
        parameters = ua.MonitoringParameters()
        parameters.ClientHandle = subscription._client_handle
        parameters.SamplingInterval = config.sampling_interval * 1000
        parameters.QueueSize = config.queue_size
        parameters.DiscardOldest = True
        if config.deadband is not None:
            dcf = ua.DataChangeFilter()
            dcf.Trigger = ua.DataChangeTrigger.StatusValue
            dcf.DeadbandType = 1 if config.deadband.type == "absolute" else 2
            dcf.DeadbandValue = config.deadband.value
            parameters.Filter = dcf
        read = ua.ReadValueId()
        read.NodeId = node.nodeid
        read.AttributeId = ua.AttributeIds.Value
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = read
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = parameters
        return request

    async def _poll(self, client: Client, stop: asyncio.Event, lost: asyncio.Event) -> None:
        self._connected()
        targets = list(self.targets.values())
        request = ua.ReadParameters(
            NodesToRead=[
                ua.ReadValueId(NodeId=target.node.nodeid, AttributeId=ua.AttributeIds.Value)
                for target in targets
            ],
            # the default, Source, would leave `timestamp: server` without a server timestamp
            TimestampsToReturn=ua.TimestampsToReturn.Both,
        )
        while not stop.is_set():
            if lost.is_set():
                raise SessionLost("connection lost")
            started = time.monotonic()
            values = await client.uaclient.read(request) if targets else []
            for target, data_value in zip(targets, values, strict=True):
                self.take(target, data_value)
            remaining = self.config.poll_interval - (time.monotonic() - started)
            if await sleep_or_stop(max(0.0, remaining), stop):
                break

    # -- values -> points ---------------------------------------------------------------------

    def take(self, target: Target, data_value: ua.DataValue) -> None:
        self.values += 1
        status = data_value.StatusCode
        variant = data_value.Value
        if variant is None or variant.Value is None:
            if status is not None and not status.is_good():
                self._warn.warning(
                    str(target.node), "%s: %s is %s", self.name, "/".join(target.path), status.name
                )
            return
        try:
            value = opcua_value(variant.Value)
            point = Point(
                self.config.measurement, dict(target.tags), {target.field: value}, self._time(data_value)
            )
        except BadPoint as exc:
            self.pipeline.reject(f"{self.name} {'/'.join(target.path)}: {exc}")
            return
        if status is not None and not status.is_good():
            point.tags["quality"] = status.name
        self.pipeline.submit([point])
        key = target.key
        if point.time_ns > self.last_seen.get(key, 0):
            self.last_seen[key] = point.time_ns

    def _time(self, data_value: ua.DataValue) -> int:
        choice = self.config.timestamp
        stamp = None
        if choice == "source":
            stamp = data_value.SourceTimestamp or data_value.ServerTimestamp
        elif choice == "server":
            stamp = data_value.ServerTimestamp or data_value.SourceTimestamp
        if stamp is None:
            return time.time_ns()
        return check_time(datetime_ns(stamp))


class _Handler:
    def __init__(self, runner: OpcUaSourceRunner) -> None:
        self.runner = runner

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        target = self.runner.targets.get(node.nodeid)
        if target is not None:
            self.runner.take(target, data.monitored_item.Value)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        log.info("%s: subscription status %s", self.runner.name, status.Status)


async def _wait_any(first: asyncio.Event, second: asyncio.Event, timeout: float) -> bool:
    """Wait until either event is set or `timeout` passes; True if `first` is set."""
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return first.is_set()
