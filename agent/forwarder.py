"""The forwarder: sends the outbox to the broker, one message at a time, in sequence order.

While a session is connected, ``Forwarder.drain`` takes the oldest queued message, publishes it
with QoS 1, waits for the PUBACK and then calls ``Outbox.delivered``, which deletes the row and
writes its audit row in one transaction. A message in flight when the connection drops stays
queued and is sent again on the next connection. The aggregator drops that repeat by its message
id.

A PUBACK with an MQTT 5 failure reason code (``PublishRejected``, for example when the broker's
ACL does not let this member write the topic) is logged at ERROR with the topic and the reason.
The message is then dropped from the queue and counted in ``rejected_messages``, so one message
the broker will never take cannot hold back every later one. It gets no audit row, because the
audit log records what the broker accepted. MQTT 3.1.1 has no such reason codes: there, Mosquitto
acknowledges a message its ACL denies and drops it silently.

The queue is read again at least every ``poll_seconds``, so messages that another process
(``kooperant agent withdraw``) queued are sent without a signal from it.

The messages found queued when a connection begins are the backlog of an outage, and
``agent.replay_log`` logs how sending them goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from agent.audit import payload_sha256
from agent.errors import AuditLogError
from agent.outbox import Outbox, QueuedMessage
from agent.replay_log import BacklogReplay
from agent.waiting import wait_any
from kooperant.mqtt import MqttSession, PublishRejected

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class Forwarder:
    """Sends the messages of ``outbox`` over a connected ``MqttSession``."""

    def __init__(
        self,
        outbox: Outbox,
        clock: Callable[[], datetime],
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.outbox = outbox
        self._clock = clock
        self._poll_seconds = poll_seconds
        self.wakeup = asyncio.Event()
        """Set it after queuing a message, so the forwarder need not wait for its next poll."""
        self.published_messages = 0
        """Messages the broker acknowledged."""
        self.rejected_messages = 0
        """Messages the broker rejected with a failure reason code, dropped from the queue."""
        self.file_failures = 0
        """Failed reads of the queue and failed records of a delivered message."""
        self._failing = False

    async def drain(self, session: MqttSession, stop: asyncio.Event) -> None:
        """Send queued messages until ``stop`` is set; waits for new ones when the queue is empty.

        Raises the session's ``MqttError`` (such as ``ConnectionLost``) other than
        ``PublishRejected``; the message in flight then stays queued.
        """
        replay = self._start_replay()
        try:
            await self._send_queue(session, stop, replay)
        finally:
            if replay is not None and not replay.finished:
                replay.interrupt(self._clock(), self._queued_count())

    async def _send_queue(
        self, session: MqttSession, stop: asyncio.Event, replay: BacklogReplay | None
    ) -> None:
        while not stop.is_set():
            self.wakeup.clear()
            message = self._oldest()
            if message is None:
                # A queue that cannot be read may still hold the backlog, so the replay goes on.
                if replay is not None and not self._failing:
                    replay.finish(self._clock())
                    replay = None
                await wait_any([stop, self.wakeup], max_seconds=self._poll_seconds)
                continue
            try:
                await session.publish(message.topic, message.payload, qos=1, retain=message.retain)
            except PublishRejected as error:
                self._rejected(message, error)
            else:
                self.published_messages += 1
                logger.debug("Published %d bytes on %s", len(message.payload), message.topic)
                await self._record_delivery(message, stop)
            if replay is not None:
                self._count_replayed(replay)

    def _start_replay(self) -> BacklogReplay | None:
        """Return the replay of the messages queued now, or None when there are none."""
        try:
            backlog = self.outbox.state()
        except AuditLogError:
            # The next read of the queue in _oldest logs the failure. This backlog goes unlogged.
            return None
        if backlog.queued_messages == 0:
            return None
        return BacklogReplay(backlog, self._clock())

    def _count_replayed(self, replay: BacklogReplay) -> None:
        now = self._clock()
        if replay.message_sent(now):
            queued = self._queued_count()
            if queued is not None:
                replay.log_progress(now, queued)

    def _queued_count(self) -> int | None:
        try:
            return self.outbox.state().queued_messages
        except AuditLogError:
            return None

    def _oldest(self) -> QueuedMessage | None:
        try:
            message = self.outbox.oldest()
        except AuditLogError as error:
            self._file_failed("Cannot read the outbox, retrying", error)
            return None
        self._file_works()
        return message

    async def _record_delivery(self, message: QueuedMessage, stop: asyncio.Event) -> None:
        """Move ``message`` from the queue to the audit log, retrying until it works or stop.

        After a stop the row stays queued: the next run sends it again as a duplicate, which is
        better than a delivered message without its audit row.
        """
        while True:
            try:
                self.outbox.delivered(message, self._clock())
            except AuditLogError as error:
                self._file_failed(
                    f"Cannot record the delivered message on {message.topic} "
                    f"(sha256 {payload_sha256(message.payload)}), retrying",
                    error,
                )
                if stop.is_set():
                    return
                await wait_any([stop], max_seconds=self._poll_seconds)
                continue
            self._file_works()
            return

    def _rejected(self, message: QueuedMessage, error: PublishRejected) -> None:
        self.rejected_messages += 1
        logger.error(
            "Broker rejected the message on %s (%s); it is dropped from the outbox, %d rejected "
            "so far. Check the broker's ACL for this member",
            message.topic,
            error.reason,
            self.rejected_messages,
        )
        try:
            self.outbox.discard(message)
        except AuditLogError as discard_error:
            # The row is tried again later; the broker rejects it again.
            self._file_failed("Cannot drop the rejected message from the outbox", discard_error)

    def _file_failed(self, action: str, error: AuditLogError) -> None:
        self.file_failures += 1
        if not self._failing:
            self._failing = True
            logger.error("%s: %s", action, error)

    def _file_works(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("The outbox works again after %d failures", self.file_failures)
